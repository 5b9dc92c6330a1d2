"""A domain's content: the named distributions the scene generator samples from and label alignment re-fits
(counts, depth, lateral mixture, scale, yaw, sizes, camera pose)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Optional

from sim2sg_core.sim.config_base import CONVERTERS, SimConfigError, parse
from sim2sg_core.sim.environment import EnvironmentConfig

# ----------------------------------------------------------------------------------------------
# Content: the named distributions that generate scenes (and that label alignment re-fits)


@dataclass(frozen=True)
class Gaussian:
    """Normal(mean, std) truncated to [min, max]."""

    mean: float
    std: float = 0.0
    min: float = -math.inf
    max: float = math.inf


@dataclass(frozen=True)
class Lateral:
    """Mixture of normals for the lateral (x) position: lanes, sidewalks, verges."""

    modes: tuple[float, ...]
    weights: tuple[float, ...] = ()
    std: float = 0.5
    #: optional per-mode standard deviations (e.g. parked cars tight to the kerb); empty = ``std``
    stds: tuple[float, ...] = ()


@dataclass(frozen=True)
class SizeMixture:
    """Base sizes ``[h, w, l]`` (m) of a class's sub-types (sedan, hatchback, SUV, van) with weights;
    replaces the class prior's size (``scale`` and the prior's ``size_jitter`` still apply)."""

    modes: tuple[tuple[float, float, float], ...]
    weights: tuple[float, ...] = ()


@dataclass(frozen=True)
class ClassContent:
    """Per-class content distributions.

    count_mean: Poisson mean of objects per image; depth: forward distance z (m); lateral: x (m);
    scale: multiplier on the class prior size; yaw: KITTI rotation_y (rad), flipped by pi with
    probability ``yaw_flip``. Optional (street domains): ``sizes`` (a :class:`SizeMixture` of base
    sizes) and ``flip_left_of`` (objects placed left of this x, m, are turned by pi: right-hand
    traffic, the oncoming lane and the left parking row face the camera) and ``max_count`` (a cap
    on the Poisson count).
    """

    count_mean: float
    depth: Gaussian
    lateral: Lateral
    scale: Gaussian = Gaussian(1.0, 0.05, 0.5, 2.0)
    yaw: Gaussian = Gaussian(0.0, 0.1)
    yaw_flip: float = 0.0
    sizes: Optional[SizeMixture] = None
    flip_left_of: Optional[float] = None
    max_count: Optional[int] = None  # cap on the Poisson count per image


@dataclass(frozen=True)
class CameraContent:
    height: Gaussian
    pitch: Gaussian

    @property
    def mean_pose(self) -> tuple[float, float]:
        """(height m, pitch rad) of the rig's mean mounting pose."""
        return float(self.height.mean), float(self.pitch.mean)

    def with_mean_pose(self, height_m: float, pitch: float) -> "CameraContent":
        """The same jitter around another mean pose: the means move to (``height_m``, ``pitch``) and
        finite truncation bounds move with them, so the spread (DR jitter) is kept."""

        def shift(g: Gaussian, mean: float) -> Gaussian:
            d = float(mean) - g.mean
            return Gaussian(
                float(mean),
                g.std,
                g.min + d if math.isfinite(g.min) else g.min,
                g.max + d if math.isfinite(g.max) else g.max,
            )

        return CameraContent(height=shift(self.height, height_m), pitch=shift(self.pitch, pitch))


@dataclass(frozen=True)
class ContentConfig:
    camera: CameraContent
    classes: dict[str, ClassContent]  # class name -> ClassContent, in vocabulary order
    max_objects: int = 12
    min_separation: float = 0.3  # metres of free ground between object footprints

    def with_camera_pose(self, height_m: float, pitch: float) -> "ContentConfig":
        """This content with the camera's mean mounting pose replaced (see CameraContent.with_mean_pose)."""
        return replace(self, camera=self.camera.with_mean_pose(height_m, pitch))


def _gaussian(v, where) -> Gaussian:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return Gaussian(float(v), 0.0)
    g = parse(Gaussian, v, where)
    if g.std < 0 or g.min > g.max:
        raise SimConfigError(f"{where}: need std >= 0 and min <= max, got {g}")
    return g


def _lateral(v, where) -> Lateral:
    lat = parse(Lateral, v, where)
    if not lat.modes:
        raise SimConfigError(f"{where}.modes: at least one mode is needed")
    if lat.weights and len(lat.weights) != len(lat.modes):
        raise SimConfigError(f"{where}.weights: {len(lat.weights)} weights for {len(lat.modes)} modes")
    if lat.stds and len(lat.stds) != len(lat.modes):
        raise SimConfigError(f"{where}.stds: {len(lat.stds)} standard deviations for {len(lat.modes)} modes")
    return lat


def _sizes(v, where) -> SizeMixture:
    sm = parse(SizeMixture, v, where)
    if not sm.modes or any(min(m) <= 0 for m in sm.modes):
        raise SimConfigError(f"{where}.modes: expected a list of [height, width, length] > 0, got {v!r}")
    if sm.weights and (len(sm.weights) != len(sm.modes) or min(sm.weights) < 0 or sum(sm.weights) <= 0):
        raise SimConfigError(f"{where}.weights: need {len(sm.modes)} weights >= 0 (not all 0), got {list(sm.weights)}")
    return sm


def parse_content(d: dict, env: EnvironmentConfig, where: str) -> ContentConfig:
    classes_raw = d.get("classes") if isinstance(d, dict) else None
    if isinstance(classes_raw, dict):
        unknown = set(classes_raw) - set(env.classes)
        if unknown:
            raise SimConfigError(f"{where}.classes: unknown class(es) {sorted(unknown)}; known: {list(env.classes)}")
        for name in env.classes:
            if name not in classes_raw:
                raise SimConfigError(f"{where}.classes: class {name!r} has no content distribution")
    content = parse(ContentConfig, d, where)
    return replace(content, classes={n: content.classes[n] for n in env.classes})  # vocabulary order


def content_to_dict(content: ContentConfig) -> dict:
    """Plain dict (YAML-ready) of a content config, e.g. to save a re-fitted prior."""

    def g(x: Gaussian) -> dict:
        return {"mean": x.mean, "std": x.std, "min": x.min, "max": x.max}

    def cls(c: ClassContent) -> dict:
        d: dict[str, Any] = {
            "count_mean": c.count_mean,
            "depth": g(c.depth),
            "lateral": {"modes": list(c.lateral.modes), "weights": list(c.lateral.weights), "std": c.lateral.std},
            "scale": g(c.scale),
            "yaw": g(c.yaw),
            "yaw_flip": c.yaw_flip,
        }
        if c.lateral.stds:
            d["lateral"]["stds"] = list(c.lateral.stds)
        if c.sizes is not None:
            d["sizes"] = {"modes": [list(m) for m in c.sizes.modes], "weights": list(c.sizes.weights)}
        if c.flip_left_of is not None:
            d["flip_left_of"] = c.flip_left_of
        if c.max_count is not None:
            d["max_count"] = c.max_count
        return d

    return {
        "camera": {"height": g(content.camera.height), "pitch": g(content.camera.pitch)},
        "max_objects": content.max_objects,
        "min_separation": content.min_separation,
        "classes": {n: cls(c) for n, c in content.classes.items()},
    }


CONVERTERS.update({Gaussian: _gaussian, Lateral: _lateral, SizeMixture: _sizes})
