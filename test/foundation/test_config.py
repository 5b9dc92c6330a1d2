"""The one config system (sim2sg_core/config.py): typed dataclasses from YAML, errors with file + key path."""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Union

import numpy as np
import pytest
import yaml

from sim2sg_core.adapt.config import (
    AdaptConfigError,
    adapt_config_from_dict,
    config_to_dict,
    load_adapt_config,
    load_bench_profile,
)
from sim2sg_core.config import ConfigError, at, config_dir, convert, deep_merge, from_dict, load_yaml_mapping
from sim2sg_core.sim.domains import (
    SimConfigError,
    available_environments,
    content_to_dict,
    domain_names,
    load_domain,
    load_environment,
    parse_content,
)
from sim2sg_core.train.config import config_from_dict, load_config

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"


# ----------------------------------------------------------------------------------------------- from_dict


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Inner:
    rounds: int = 2
    rate: float = 0.5
    on: bool = True


@dataclass
class Outer:
    name: str
    inner: Inner = field(default_factory=Inner)
    maybe: Optional[Inner] = None
    height: Optional[float] = None
    size: tuple[int, int] = (1, 2)
    widths: tuple[float, ...] = ()
    tags: list[str] = field(default_factory=list)
    table: dict[str, tuple[int, ...]] = field(default_factory=dict)
    raw: dict = field(default_factory=dict)
    mode: Literal["fast", "slow"] = "fast"
    colour: Colour = Colour.RED
    freeze: Union[int, Literal["all"]] = 0


def _err(fn, *args, **kw) -> str:
    with pytest.raises(ConfigError) as e:
        fn(*args, **kw)
    return str(e.value)


def test_values_are_converted_to_the_annotated_types():
    o = from_dict(
        Outer,
        {
            "name": "a",
            "inner": {"rate": 2},
            "maybe": {"rounds": 5},
            "height": 3,
            "size": [3, 4],
            "widths": [1, 2.5],
            "tags": ("x",),
            "table": {"k": [1, 2]},
            "raw": {"any": [1]},
            "mode": "slow",
            "colour": "blue",
            "freeze": "all",
        },
        "f.yaml",
    )
    assert o.inner == Inner(rate=2.0) and isinstance(o.inner.rate, float)  # int accepted for float
    assert o.maybe == Inner(rounds=5) and o.height == 3.0 and isinstance(o.height, float)
    assert o.size == (3, 4) and o.widths == (1.0, 2.5) and o.tags == ["x"] and o.table == {"k": (1, 2)}
    assert o.raw == {"any": [1]} and o.mode == "slow" and o.colour is Colour.BLUE and o.freeze == "all"
    assert from_dict(Outer, {"name": "b", "inner": None, "maybe": None}).inner == Inner()  # empty section
    assert from_dict(Outer, {"name": "b", "freeze": 3}).freeze == 3
    # PyYAML reads 1e-3 (no dot) as a string; where a float is expected it is the number
    assert from_dict(Inner, yaml.safe_load("rate: 1e-3")).rate == 0.001
    i = from_dict(Inner, {"rounds": np.int64(3), "rate": np.float32(0.5)})  # numpy numbers are numbers
    assert (i.rounds, i.rate) == (3, 0.5) and type(i.rounds) is int and type(i.rate) is float


@pytest.mark.parametrize(
    "data, message",
    [
        ({"inner": {"rounds": "two"}}, "f.yaml: inner.rounds: expected int, got 'two'"),
        ({"inner": {"rounds": True}}, "f.yaml: inner.rounds: expected int, got True"),  # bool is no int
        ({"inner": {"rounds": 2.0}}, "f.yaml: inner.rounds: expected int, got 2.0"),
        ({"inner": {"rate": False}}, "f.yaml: inner.rate: expected float, got False"),
        ({"inner": {"on": 1}}, "f.yaml: inner.on: expected true or false, got 1"),
        ({"inner": {"on": "yes please"}}, "f.yaml: inner.on: expected true or false, got 'yes please'"),
        ({"name": 3}, "f.yaml: name: expected str, got 3"),
        ({"maybe": {"rate": "x"}}, "f.yaml: maybe.rate: expected float, got 'x'"),
        ({"height": "tall"}, "f.yaml: height: expected float or null, got 'tall'"),
        ({"size": [1, 2, 3]}, "f.yaml: size: expected a list of 2 (int, int), got [1, 2, 3]"),
        ({"widths": [1, "w"]}, "f.yaml: widths[1]: expected float, got 'w'"),
        ({"tags": "x"}, "f.yaml: tags: expected a list of str, got 'x'"),
        ({"table": {"k": [1, "z"]}}, "f.yaml: table.k[1]: expected int, got 'z'"),
        ({"raw": [1]}, "f.yaml: raw: expected a mapping, got [1]"),
        ({"mode": "medium"}, "f.yaml: mode: expected one of 'fast', 'slow', got 'medium'"),
        ({"colour": "green"}, "f.yaml: colour: expected one of 'red', 'blue', got 'green'"),
        ({"freeze": "most"}, "f.yaml: freeze: expected int or 'all', got 'most'"),
        ({"inner": 4}, "f.yaml: inner: expected a mapping of Inner keys, got 4"),
        ({"inner": {"roundz": 1}}, "f.yaml: inner: unknown field(s) ['roundz']; known: ['on', 'rate', 'rounds']"),
    ],
)
def test_type_errors_name_the_source_and_the_full_key_path(data, message):
    assert _err(from_dict, Outer, {"name": "n", **data}, "f.yaml") == message


def test_unknown_and_missing_keys():
    assert _err(from_dict, Outer, {"name": "n", "nmae": 1, "extra": 2}, "f.yaml").startswith(
        "f.yaml: unknown field(s) ['extra', 'nmae']"
    )
    assert _err(from_dict, Outer, {}, "f.yaml") == "f.yaml: missing required field(s) ['name']"
    assert _err(from_dict, Outer, [1], "f.yaml").startswith("f.yaml: expected a mapping of Outer keys")


def test_where_inside_a_file_continues_the_key_path():
    assert at("cfg.yaml", "adapt") == "cfg.yaml: adapt"
    assert at("cfg.yaml: adapt", "rounds") == "cfg.yaml: adapt.rounds"
    assert at("cfg.yaml: adapt.modes", 2) == "cfg.yaml: adapt.modes[2]"
    assert (
        _err(from_dict, Inner, {"rounds": "x"}, "cfg.yaml: adapt.label_alignment")
        == "cfg.yaml: adapt.label_alignment.rounds: expected int, got 'x'"
    )


def test_converters_by_field_name_and_by_type():
    def pair(v, where):  # the simulator's shorthand: a scalar a means (a, a)
        if isinstance(v, (int, float)):
            return (float(v), float(v))
        if float(v[1]) < float(v[0]):
            raise ValueError("hi < lo")
        return (float(v[0]), float(v[1]))

    @dataclass
    class Ranges:
        a: tuple[float, float] = (0.0, 0.0)
        b: Optional[tuple[float, float]] = None
        many: tuple[tuple[float, float], ...] = ()
        inner: Inner = field(default_factory=Inner)
        label: str = ""

    conv = {tuple[float, float]: pair, "label": lambda v, w: str(v).upper()}
    r = from_dict(Ranges, {"a": 2, "b": [1, 3], "many": [4, [5, 6]], "label": 7}, "r.yaml", converters=conv)
    assert r.a == (2.0, 2.0) and r.b == (1.0, 3.0) and r.many == ((4.0, 4.0), (5.0, 6.0)) and r.label == "7"
    assert from_dict(Ranges, {"b": None}, converters=conv).b is None  # Optional before the converter
    # a converter's ValueError names the key; field-name converters do not leak into nested dataclasses
    assert _err(from_dict, Ranges, {"many": [[1, 2], [3, 1]]}, "r.yaml", converters=conv) == "r.yaml: many[1]: hi < lo"
    with pytest.raises(ConfigError, match=r"r\.yaml: inner\.rounds: expected int"):
        from_dict(Ranges, {"inner": {"rounds": "7"}}, "r.yaml", converters={**conv, "rounds": lambda v, w: 7})


def test_the_callers_error_class_is_raised():
    class MyError(ConfigError):
        pass

    with pytest.raises(MyError, match="x: rounds: expected int"):
        from_dict(Inner, {"rounds": "1"}, "x", error=MyError)
    assert issubclass(SimConfigError, ConfigError) and issubclass(AdaptConfigError, ConfigError)
    with pytest.raises(ConfigError, match=r"here: expected int, got '3'"):
        convert("3", int, "here")


def test_the_shared_helpers_live_here():
    assert deep_merge({"a": {"b": 1, "c": 2}, "m": {"x": 1}}, {"a": {"b": 3}, "m": {"y": 2}}, replace_keys=("m",)) == {
        "a": {"b": 3, "c": 2},
        "m": {"y": 2},
    }
    assert (config_dir() / "sim" / "drive.yaml").is_file()
    assert load_yaml_mapping(CONFIG / "adapt" / "default.yaml")["adapt"]["rounds"] == 4


def test_one_builder_one_merge_one_yaml_reader():
    """The issue's criterion: no second dataclass builder / deep merge / YAML reader grows back."""
    src = {str(p.relative_to(REPO)): p.read_text() for p in (REPO / "sim2sg_core").rglob("*.py")}

    def defs(pattern):
        return [f"{p}: {m.group(0)}" for p, text in src.items() for m in re.finditer(pattern, text)]

    assert defs(r"def (_build|_fill|_deep_merge|_merge)\(") == []
    assert defs(r"def \w*deep_merge\(") == ["sim2sg_core/config.py: def deep_merge("]
    assert defs(r"def \w*load_yaml\w*\(") == ["sim2sg_core/config.py: def load_yaml_mapping("]


# ------------------------------------------------------------------------------------- the package's configs


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_adapt_file_errors_name_the_file_and_the_key_path(tmp_path):
    data = load_yaml_mapping(CONFIG / "adapt" / "default.yaml")
    data["adapt"]["label_alignment"]["samples_per_round"] = "two"
    bad = _write(tmp_path / "adapt.yaml", data)
    with pytest.raises(AdaptConfigError) as e:
        load_adapt_config(bad)
    assert str(e.value) == f"{bad}: adapt.label_alignment.samples_per_round: expected int, got 'two'"
    data["adapt"]["label_alignment"]["samples_per_round"] = 10
    data["adapt"]["prediction_alignment"]["wieght"] = 0.2
    with pytest.raises(AdaptConfigError, match=rf"{bad}: adapt\.prediction_alignment: unknown field\(s\) \['wieght'\]"):
        load_adapt_config(_write(bad, data))


def test_set_overrides_are_blamed_not_the_file():
    default = config_dir() / "adapt" / "default.yaml"
    with pytest.raises(AdaptConfigError) as e:
        load_adapt_config(overrides={"label_alignment": {"rounds": 2}})
    assert str(e.value).startswith(f"--set override (over {default}): label_alignment: unknown field(s) ['rounds']")
    with pytest.raises(AdaptConfigError) as e:
        load_adapt_config(overrides={"camera_height": "high"})
    assert str(e.value) == f"--set override (over {default}): camera_height: expected float or null, got 'high'"
    with pytest.raises(AdaptConfigError) as e:
        load_bench_profile("quick", {"adapt": {"rounds": "many"}})
    assert str(e.value).startswith("--set override (over ") and "bench_quick.yaml): adapt.rounds: expected int" in str(
        e.value
    )
    assert load_adapt_config(overrides={"lr": "1e-4"}).lr == 1e-4  # `--set lr=1e-4` is the number


def test_train_config_errors_and_checkpoint_round_trip(tmp_path):
    bad = _write(tmp_path / "m.yaml", {"model": {"input_width": "wide"}})
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(bad))}: model\.input_width: expected int, got 'wide'$"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"train\.amp: expected true or false, got 1"):
        config_from_dict({"train": {"amp": 1}}, "x.yaml")
    with pytest.raises(ConfigError, match=r"x\.yaml: model\.encoder_freeze: expected int or 'all'"):
        config_from_dict({"model": {"encoder_freeze": "half"}}, "x.yaml")
    assert config_from_dict({"model": {"encoder_freeze": "all"}}).model.encoder_freeze == "all"
    for path in sorted((CONFIG / "model").glob("*.yaml")):  # a checkpoint stores to_dict(): tuples
        cfg = load_config(path)
        assert config_from_dict(cfg.to_dict(), f"checkpoint of {path.name}") == cfg


def test_sim_type_errors_name_the_file_and_the_key_path(tmp_path):
    data = load_yaml_mapping(CONFIG / "sim" / "drive.yaml")
    data["hfov_deg"] = "wide"
    bad = _write(tmp_path / "drive_bad.yaml", data)
    with pytest.raises(SimConfigError, match=rf"^{re.escape(str(bad))}: hfov_deg: expected float, got 'wide'$"):
        load_environment(bad)
    data = load_yaml_mapping(CONFIG / "sim" / "drive.yaml")
    data["classes"]["car"]["parts"][0]["sides"] = 6.5
    bad = _write(tmp_path / "drive_bad2.yaml", data)
    with pytest.raises(SimConfigError, match=rf"{re.escape(str(bad))}: classes\.car\.parts\[0\]\.sides: expected int"):
        load_environment(bad)
    data = load_yaml_mapping(CONFIG / "sim" / "drive.yaml")
    data["domains"]["source"]["content"]["max_objects"] = "many"
    data["domains"]["source"]["appearance"]["random_colours"] = "no"
    env = load_environment(_write(tmp_path / "drive_bad3.yaml", data))
    with pytest.raises(SimConfigError, match=r"domains\.source\.content\.max_objects: expected int, got 'many'"):
        load_domain(env, "source")
    assert env.domains["target"]["inherit"] == "source"  # an inherited bad value is named where it is used
    with pytest.raises(SimConfigError, match=r"domains\.target\.content\.max_objects: expected int"):
        load_domain(env, "target")
    with pytest.raises(SimConfigError, match=r"domains\.source\.appearance\.random_colours: expected true or false"):
        load_domain(
            load_environment(
                _write(
                    tmp_path / "drive_bad4.yaml",
                    {
                        **data,
                        "domains": {
                            **data["domains"],
                            "source": {
                                **data["domains"]["source"],
                                "content": load_yaml_mapping(CONFIG / "sim" / "drive.yaml")["domains"]["source"][
                                    "content"
                                ],
                            },
                        },
                    },
                )
            ),
            "source",
        )


def test_sim_converters_keep_the_yaml_shorthands(tmp_path):
    data = load_yaml_mapping(CONFIG / "sim" / "clevr.yaml")
    app = data["domains"]["source"]["appearance"]
    app["ambient"] = 0.6  # scalar range -> [a, a]
    app["colours"]["sky_horizon"] = [300, -5, 10.4]  # RGB triples clamped and rounded
    data["domains"]["source"]["content"]["camera"]["height"] = 1.7  # scalar Gaussian -> N(1.7, 0)
    env = load_environment(_write(tmp_path / "clevr_short.yaml", data))
    dom = load_domain(env, "source")
    assert dom.appearance.ambient == (0.6, 0.6)
    assert dom.appearance.colours["sky_horizon"] == (255, 0, 10)
    assert (dom.content.camera.height.mean, dom.content.camera.height.std) == (1.7, 0.0)
    assert list(dom.content.classes) == list(env.classes)  # vocabulary order
    app["ambient"] = [0.7, 0.2]
    env = load_environment(_write(tmp_path / "clevr_bad.yaml", data))
    with pytest.raises(SimConfigError, match=r"domains\.source\.appearance\.ambient: range \[0\.7, 0\.2\] has hi < lo"):
        load_domain(env, "source")


# --------------------------------------------------------------------------- every shipped YAML loads


@pytest.mark.parametrize("env", ["drive", "clevr", "dining"])
def test_every_shipped_environment_and_domain_loads(env):
    assert env in available_environments()
    e = load_environment(env)
    assert e.source_path.endswith(f"{env}.yaml") and all(isinstance(v, int) for v in e.image_size)
    assert isinstance(e.hfov_deg, float) and isinstance(e.labels.min_visible_pixels, int)
    for name in domain_names(env):
        d = load_domain(env, name)
        assert d.name == name and list(d.content.classes) == list(e.classes)
        assert all(isinstance(v, tuple) and len(v) == 3 for v in d.appearance.colours.values())
        # adaptation's resume state stores content_to_dict(content) and parses it back
        assert parse_content(content_to_dict(d.content), e, "resume state") == d.content


@pytest.mark.parametrize("path", sorted(p.name for p in (CONFIG / "adapt").glob("*.yaml")))
def test_every_shipped_adapt_file_loads(path):
    if path.startswith("bench_"):
        prof = load_bench_profile(path[len("bench_") : -len(".yaml")])
        assert prof.name == path[len("bench_") : -len(".yaml")] and prof.adapt.rounds >= 1
        cfg = prof.adapt
    else:
        cfg = load_adapt_config(CONFIG / "adapt" / path)
    # the resume state / checkpoint stores config_to_dict(); it reads back to the same config
    assert adapt_config_from_dict(config_to_dict(cfg), "resume state") == cfg


@pytest.mark.parametrize("path", sorted(p.name for p in (CONFIG / "model").glob("*.yaml")))
def test_every_shipped_model_file_loads(path):
    cfg = load_config(CONFIG / "model" / path)
    assert isinstance(cfg.model.mean, tuple) and all(isinstance(v, float) for v in cfg.model.mean)
    assert isinstance(cfg.train.minutes, float) and math.isfinite(cfg.train.minutes)


@pytest.mark.parametrize("path", ["perception.yaml", "adaptation.yaml"])
def test_shipped_ros_params_have_the_declared_types(path):
    from sim2sg_ros.params import TABLES, read_params_yaml, spec_map, validate

    nodes = [n for n in load_yaml_mapping(CONFIG / path) if n in TABLES]
    assert nodes
    for node in nodes:
        specs = spec_map(TABLES[node])
        for name, value in read_params_yaml(CONFIG / path, node).items():
            assert name in specs, f"{path}: {node}.{name}: not a parameter of {node}"
            default = specs[name].default
            if not isinstance(default, list):
                convert(value, type(default), f"{path}: {node}.{name}")
            assert validate(specs[name], value) is None
