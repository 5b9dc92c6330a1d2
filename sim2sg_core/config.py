"""The one configuration system: YAML file → typed, checked dataclasses.

Every config of the package (simulator environments and domains, the model/training config, the
adaptation config and bench profiles) is a plain dataclass built by :func:`from_dict`, which

- checks each value against the field's annotation, recursively: ``bool`` / ``int`` / ``float`` /
  ``str`` (an ``int`` is accepted where a ``float`` is expected and becomes a ``float``; a ``bool`` is
  never a number), ``Optional[...]`` / ``Union[...]``, ``Literal[...]``, enums, ``tuple[X, ...]``,
  ``tuple[X, Y]``, ``list[X]``, ``dict[K, V]`` and nested dataclasses (a YAML list becomes a tuple where
  the field is a tuple); ``Any`` / bare ``dict`` / bare ``tuple`` elements are not checked;
- rejects unknown keys and reports missing required ones;
- names the source (file, ``--set`` override, checkpoint) and the full key path in every error:
  ``config/adapt/default.yaml: adapt.label_alignment.rounds: expected int, got 'two'``;
- applies per-field or per-type converters for the shorthand forms a YAML file may use (a scalar
  ``a`` for the range ``[a, a]``, RGB triples clamped to 0..255, ...).

It is also the one home of the helpers every config reader needs: :func:`load_yaml_mapping` (the
YAML reader), :func:`deep_merge` (domain inheritance, ``--set`` overrides, bench profiles) and
:func:`config_dir` / :func:`config_path` (the config locator, ``$SIM2SG_CONFIG_DIR``; defined in
:mod:`sim2sg_core.paths`, re-exported here).
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import numbers
import os
import re
import types
import typing
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Union

import yaml

from sim2sg_core.paths import config_dir, config_path

__all__ = ["ConfigError", "at", "config_dir", "config_path", "convert", "deep_merge", "from_dict", "load_yaml_mapping"]

PathLike = Union[str, os.PathLike]
#: ``converter(value, where) -> value`` for one field (by name) or every field of one type.
Converter = Callable[[Any, str], Any]


class ConfigError(ValueError):
    """A config value, file or key that cannot become the config dataclasses (source and key in the message).

    The simulator's :class:`~sim2sg_core.sim.domains.SimConfigError` and adaptation's
    :class:`~sim2sg_core.adapt.config.AdaptConfigError` are subclasses."""


def at(where: str, key: Union[str, int]) -> str:
    """The location of ``key`` inside ``where``.

    A bare source (``config/adapt/default.yaml``, ``--set override``) is followed by ``": "`` and the key
    path; inside a key path keys are joined with ``.`` and list indices as ``[i]``."""
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if ": " in where else f"{where}: {key}"


# --------------------------------------------------------------------------------------------------
# YAML, merge, locator


def load_yaml_mapping(
    path: PathLike,
    *,
    what: str = "config file",
    error: type[Exception] = ConfigError,
    mapping_hint: str = "the top level must be a mapping",
) -> dict:
    """Read a YAML file whose top level is a mapping; any problem raises ``error`` naming the file.

    One place for the checks every config reader needs: missing file, invalid YAML, wrong top level.
    An empty file reads as ``{}``.
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise error(f"{what} {path}: {mapping_hint}")
    return data


def deep_merge(base: Optional[dict], over: Optional[dict], *, replace_keys: Iterable[str] = ()) -> dict:
    """``over`` on top of ``base``, recursively for nested mappings; a new dict (inputs untouched).

    Keys in ``replace_keys`` take ``over``'s value whole instead of merging into ``base``'s (e.g. a bench
    profile's ``model:`` section is a complete model, not a patch)."""
    out = copy.deepcopy(base or {})
    replace = set(replace_keys)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k not in replace:
            out[k] = deep_merge(out[k], v, replace_keys=replace)
        else:
            out[k] = copy.deepcopy(v)
    return out


# --------------------------------------------------------------------------------------------------
# Typed dataclass building

#: PyYAML (YAML 1.1) reads ``1e-3`` (no dot) as a string; where a float is expected it is the number.
_FLOAT_EXPONENT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


class _Mismatch(Exception):
    """Internal: ``value`` does not have the expected type (turned into the caller's error with a path)."""

    def __init__(self, where: str, expected: str, value: Any):
        super().__init__(where)
        self.where, self.expected, self.value = where, expected, value

    def message(self) -> str:
        return f"{self.where}: expected {self.expected}, got {_show(self.value)}"


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)) and len(repr(value)) > 60:
        return f"a list of {len(value)}"
    return repr(value)


@lru_cache(maxsize=None)
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _type_name(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is type(None):
        return "null"
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin in (tuple, list):
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_type_name(args[0])}"
        if origin is tuple and args:
            return f"a list of {len(args)} ({', '.join(_type_name(a) for a in args)})"
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if origin is dict or tp is dict:
        return "a mapping"
    if tp is tuple or tp is list:
        return "a list"
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return f"a mapping ({tp.__name__})"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return " or ".join(repr(m.value) for m in tp)
    return getattr(tp, "__name__", str(tp))


def _converter_for(tp, converters: Mapping) -> Optional[Converter]:
    try:
        return converters.get(tp)
    except TypeError:  # an unhashable annotation
        return None


def _convert(value: Any, tp, where: str, converters: Mapping, error: type[Exception]) -> Any:
    """``value`` as type ``tp`` (see the module docstring); raises _Mismatch or ``error``."""
    conv = _converter_for(tp, converters)
    if conv is not None:
        return _call(conv, value, where, error)
    if tp is Any or tp is object:
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        first: Optional[_Mismatch] = None
        for alt in args:
            if alt is type(None):
                continue
            try:
                return _convert(value, alt, where, converters, error)
            except _Mismatch as e:
                # a deeper mismatch inside a container/dataclass is the more useful message
                if first is None or (e.where != where and first.where == where):
                    first = e
        if first is not None and first.where != where:
            raise first
        raise _Mismatch(where, _type_name(tp), value)
    if origin is typing.Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise _Mismatch(where, "one of " + ", ".join(repr(a) for a in args), value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch(where, "true or false", value)
    if tp is int:  # numbers.Integral: numpy integers too (re-fitted content in a resume state)
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        raise _Mismatch(where, "int", value)
    if tp is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT_EXPONENT.match(value.strip()):
            return float(value)
        raise _Mismatch(where, "float", value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch(where, "str", value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if isinstance(value, tp):
            return value
        try:
            return tp(value)
        except ValueError:
            raise _Mismatch(where, "one of " + ", ".join(repr(m.value) for m in tp), value) from None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return from_dict(tp, value, where, converters=converters, error=error)
    if origin is tuple or tp is tuple:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch(where, _type_name(tp), value)
        if not args:
            return tuple(value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], at(where, i), converters, error) for i, v in enumerate(value))
        if len(value) != len(args):
            raise _Mismatch(where, _type_name(tp), value)
        return tuple(_convert(v, a, at(where, i), converters, error) for i, (v, a) in enumerate(zip(value, args)))
    if origin is list or tp is list:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch(where, _type_name(tp), value)
        if not args:
            return list(value)
        return [_convert(v, args[0], at(where, i), converters, error) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise _Mismatch(where, "a mapping", value)
        if not args:
            return value
        kt, vt = args
        return {
            _convert(k, kt, where, converters, error): _convert(v, vt, at(where, str(k)), converters, error)
            for k, v in value.items()
        }
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _Mismatch(where, _type_name(tp), value)
    return value  # an annotation this module does not interpret: unchecked


def _call(conv: Converter, value: Any, where: str, error: type[Exception]) -> Any:
    try:
        return conv(value, where)
    except (ConfigError, error, _Mismatch):
        raise
    except (TypeError, ValueError) as e:
        raise error(f"{where}: {e}") from None


def convert(value: Any, tp, where: str, *, converters: Optional[Mapping] = None, error: type[Exception] = ConfigError):
    """One value checked / converted against type ``tp`` (same rules as a dataclass field in
    :func:`from_dict`); a mismatch raises ``error`` naming ``where``."""
    try:
        return _convert(value, tp, where, converters or {}, error)
    except _Mismatch as e:
        raise error(e.message()) from None


def from_dict(
    cls,
    data: Optional[Mapping],
    where: str = "config",
    *,
    converters: Optional[Mapping] = None,
    error: type[Exception] = ConfigError,
):
    """Build dataclass ``cls`` from the mapping ``data``, checking every value against its field's type.

    ``where`` names the source and, after ``": "``, the key path of ``data`` in it (``"cfg.yaml"``,
    ``"cfg.yaml: adapt"``); every error message starts with the full path of the offending key.
    ``data`` None means an empty mapping (a YAML section whose keys are all commented out).

    ``converters`` maps a field name (this level only) or a type (any field of that type, at any
    depth, also inside Optional / tuples / dicts) to ``converter(value, where) -> value``; its result is
    used as is. A converter's ``TypeError`` / ``ValueError`` becomes ``error`` naming the key.
    ``error`` is the exception class raised (a subclass of ValueError, e.g. the caller's own).
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"from_dict needs a dataclass, got {cls!r}")
    converters = converters or {}
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise error(f"{where}: expected a mapping of {cls.__name__} keys, got {_show(data)}")
    flds = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in flds]
    if unknown:
        raise error(f"{where}: unknown field(s) {sorted(map(str, unknown))}; known: {sorted(flds)}")
    missing = [
        n
        for n, f in flds.items()
        if n not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise error(f"{where}: missing required field(s) {missing}")
    hints = _hints(cls)
    by_type = {k: v for k, v in converters.items() if not isinstance(k, str)}  # these apply at every depth
    kwargs = {}
    for name, value in data.items():
        w = at(where, name)
        conv = converters.get(name)
        if conv is not None:
            kwargs[name] = _call(conv, value, w, error)
            continue
        tp = hints.get(name, Any)
        try:
            if value is None and dataclasses.is_dataclass(tp) and tp not in by_type:
                kwargs[name] = from_dict(tp, None, w, converters=by_type, error=error)
            else:
                kwargs[name] = _convert(value, tp, w, by_type, error)
        except _Mismatch as e:
            raise error(e.message()) from None
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:  # a __post_init__ check
        if isinstance(e, ConfigError) or isinstance(e, error):
            raise
        raise error(f"{where}: {e}") from None
