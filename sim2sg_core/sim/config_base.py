"""What every simulator config module shares: the value types of the YAML (RGB, ranges), the shape names, the
error, the config folder, and ``parse`` with the one registry of YAML shorthands (:data:`CONVERTERS`: each
config module registers the converters of its own types)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from sim2sg_core.config import ConfigError, at, convert, from_dict
from sim2sg_core.config import config_dir as package_config_dir

RGB = tuple[int, int, int]
#: ``[lo, hi]`` drawn uniformly; a scalar ``a`` in YAML means ``[a, a]``.
Range = tuple[float, float]
SHAPES = ("cuboid", "cylinder", "cone", "frustum", "sphere", "roof", "cabin", "wheel", "panel")
#: one-sided flat shapes ("decals"): drawn only from the side they face, after the parts they sit on
DECALS = ("wheel", "panel")


class SimConfigError(ConfigError):
    """A simulator YAML file that is missing a field or has a bad value."""


# ----------------------------------------------------------------------------------------------
# Locating config files


def sim_config_dir() -> Path:
    """Directory of the simulator YAML files: ``sim/`` under the one package config directory
    (:func:`sim2sg_core.paths.config_dir`, which ``$SIM2SG_CONFIG_DIR`` moves)."""
    return package_config_dir() / "sim"


def available_environments() -> list[str]:
    d = sim_config_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


# ----------------------------------------------------------------------------------------------
# Small parsing helpers


def parse_rgb(value, where: str) -> RGB:
    if not (
        isinstance(value, (list, tuple))
        and len(value) == 3
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise SimConfigError(f"{where}: expected an RGB triple like [120, 130, 140], got {value!r}")
    r, g, b = (int(max(0, min(255, round(v)))) for v in value)
    return r, g, b


def parse_range(value, where: str) -> Range:
    """A scalar ``a`` means [a, a]; a pair ``[lo, hi]`` is a uniform range."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), float(value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        lo, hi = (convert(v, float, at(where, i), error=SimConfigError) for i, v in enumerate(value))
        if hi < lo:
            raise SimConfigError(f"{where}: range [{lo}, {hi}] has hi < lo")
        return lo, hi
    raise SimConfigError(f"{where}: expected a number or [lo, hi], got {value!r}")


def parse(cls, d, where: str, **field_converters):
    """``cls`` from the mapping ``d`` through the one config system, with the simulator's converters."""
    return from_dict(cls, d, where, converters={**CONVERTERS, **field_converters}, error=SimConfigError)


#: The YAML shorthands and per-type checks, applied wherever a field has one of these types (scalar ranges, RGB
#: triples, scalar Gaussians, ...); the environment, content and appearance modules add their types' entries.
CONVERTERS: dict[object, Callable] = {Range: parse_range, RGB: parse_rgb}
