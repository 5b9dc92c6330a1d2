"""Simulator environments (``config/sim/<env>.yaml``): the vocabulary, the class priors (size, shape parts,
colours), the ground layout and the label filter, plus the raw ``domains:`` mapping."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from sim2sg_core.config import at, load_yaml_mapping
from sim2sg_core.scene_graph import PREDICATES, Vocabulary
from sim2sg_core.sim.config_base import (
    CONVERTERS,
    DECALS,
    RGB,
    SHAPES,
    Range,
    SimConfigError,
    available_environments,
    parse,
    sim_config_dir,
)

# ----------------------------------------------------------------------------------------------
# Environment (geometry and vocabulary)


@dataclass(frozen=True)
class PartSpec:
    """One primitive of a class shape, in fractions of the object's (height, width, length).

    ``y`` is the [bottom, top] height fraction; ``w``/``l`` the width/length fractions (diameters
    for round shapes); ``top`` the top/bottom diameter ratio of a frustum (a cone has 0); ``dx``
    shifts the part along the length axis; ``colour`` is ``body`` (class palette) or a named part
    colour of the class; ``shade`` multiplies the colour.

    Street-look shapes (used only by domains that override a class's parts): ``cabin`` is a
    cuboid whose top face is ``top`` times as long, ``top_w`` times as wide and shifted by
    ``top_dx`` along the length (sloped windscreen / rear window); ``wheel`` is an upright
    ``sides``-gon disc (diameter ``y`` range × ``l``) in the plane across the width at ``dz``,
    facing outwards (away from the centre plane; ``dz`` = ±0.5 is a side of the object);
    ``panel`` is a rectangle (``w`` × ``y``) across the length at ``dx``, facing outwards
    (``dx`` = ±0.5 is the front/back). ``dz`` shifts any part across the width; ``caps: false``
    leaves out a prism's top and bottom faces.
    """

    shape: str = "cuboid"
    y: Range = (0.0, 1.0)
    w: float = 1.0
    l: float = 1.0  # noqa: E741 - the length fraction, named like the YAML part key ``l`` (next to ``w``)
    top: float = 1.0
    dx: float = 0.0
    sides: int = 12
    colour: str = "body"
    shade: float = 1.0
    dz: float = 0.0
    top_w: float = 1.0
    top_dx: float = 0.0
    caps: bool = True


@dataclass(frozen=True)
class ClassPrior:
    """Geometry and default colours of one class."""

    name: str
    size: tuple[float, float, float]  # height, width, length (m)
    parts: tuple[PartSpec, ...]
    palette: tuple[RGB, ...]
    part_colours: dict[str, RGB] = field(default_factory=dict)
    size_jitter: float = 0.05


@dataclass(frozen=True)
class GroundZone:
    """A rectangle on the ground plane (level frame x/z, metres) painted with a named colour.

    ``dash`` = [on, off] metres paints only dashes along z (lane markings).
    """

    colour: str
    x: Range = (-math.inf, math.inf)
    z: Range = (-math.inf, math.inf)
    dash: Optional[Range] = None


@dataclass(frozen=True)
class LabelFilter:
    """Which rendered objects become labels (documented minimum visibility)."""

    min_box_height: float = 12.0
    min_box_width: float = 4.0
    min_visible_pixels: int = 40
    max_occlusion: float = 0.9


@dataclass(frozen=True)
class EnvironmentConfig:
    name: str
    vocab: Vocabulary
    classes: dict  # class name -> ClassPrior, in vocabulary order
    image_size: tuple[int, int]  # (width, height)
    hfov_deg: float
    ground_colour: str = "ground"
    zones: tuple[GroundZone, ...] = ()
    sky: bool = True
    max_ground_distance: float = 250.0
    labels: LabelFilter = LabelFilter()
    domains: dict = field(default_factory=dict, repr=False)  # raw domain dicts (merged lazily)
    source_path: str = ""

    def prior(self, class_name: str) -> ClassPrior:
        try:
            return self.classes[class_name]
        except KeyError:
            raise SimConfigError(
                f"environment {self.name!r} has no class {class_name!r}; known: {list(self.classes)}"
            ) from None


def parse_part(d, where: str) -> PartSpec:
    if isinstance(d, PartSpec):  # already parsed (shape variants are built from parsed parts)
        return d
    part = parse(PartSpec, d, where)
    if part.shape not in SHAPES:
        raise SimConfigError(f"{where}.shape: unknown shape {part.shape!r}; known: {list(SHAPES)}")
    if part.sides < 3:
        raise SimConfigError(f"{where}.sides: need at least 3 sides, got {part.sides}")
    if part.shape in ("cabin",) + DECALS:  # (the older shapes keep their historical leniency)
        if part.y[1] <= part.y[0]:
            raise SimConfigError(f"{where}.y: need bottom < top, got {list(part.y)}")
        if min(part.w, part.l, part.top, part.top_w) < 0:
            raise SimConfigError(f"{where}: w, l, top and top_w must be >= 0")
    return part


@dataclass(frozen=True)
class _GroundSection:
    """``ground:`` of an environment file."""

    colour: str = "ground"
    zones: tuple[GroundZone, ...] = ()
    max_distance: float = 250.0


@dataclass(frozen=True)
class _EnvironmentFile:
    """The layout of ``config/sim/<env>.yaml`` (what :class:`EnvironmentConfig` is made from)."""

    classes: dict  # class name -> ClassPrior (the "classes" converter names each prior)
    domains: dict[str, Optional[dict]]  # raw domain mappings, merged and parsed by load_domain
    name: str = ""
    subject_classes: tuple[str, ...] = ()
    predicates: tuple[str, ...] = tuple(PREDICATES)
    image_size: tuple[int, int] = (640, 192)
    hfov_deg: float = 80.0
    ground: _GroundSection = _GroundSection()
    sky: bool = True
    labels: LabelFilter = LabelFilter()


def _parse_class(name: str, d: dict, where: str) -> ClassPrior:
    if isinstance(d, dict) and "name" in d:
        raise SimConfigError(f"{at(where, 'name')}: a class is named by its key under 'classes'")
    prior = parse(ClassPrior, {**d, "name": name} if isinstance(d, dict) else d, where)
    if not all(v > 0 for v in prior.size):
        raise SimConfigError(f"{at(where, 'size')}: expected [height, width, length] > 0, got {list(prior.size)}")
    if not prior.parts:
        raise SimConfigError(f"{at(where, 'parts')}: at least one part is needed")
    if not prior.palette:
        raise SimConfigError(f"{at(where, 'palette')}: at least one colour is needed")
    for i, p in enumerate(prior.parts):
        if p.colour != "body" and p.colour not in prior.part_colours:
            raise SimConfigError(
                f"{where}.parts[{i}].colour: {p.colour!r} is neither 'body' nor a key of "
                f"part_colours {sorted(prior.part_colours)}"
            )
    return prior


def _parse_classes(v, where: str) -> dict:
    if not isinstance(v, dict):
        raise SimConfigError(f"{where}: expected a non-empty mapping of class name → prior, got {v!r}")
    return {n: _parse_class(n, c, at(where, n)) for n, c in v.items()}


def _read_yaml(path: Path) -> dict:
    if not Path(path).is_file():
        raise SimConfigError(
            f"simulator config {path} does not exist; available environments: {available_environments()}"
        )
    return load_yaml_mapping(
        path, what="simulator config", error=SimConfigError, mapping_hint="must hold a mapping at the top level"
    )


def _resolve_env_path(name_or_path: Union[str, os.PathLike]) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    return sim_config_dir() / f"{name_or_path}.yaml"


_ENV_CACHE: dict = {}


def load_environment(name_or_path: Union[str, os.PathLike, EnvironmentConfig]) -> EnvironmentConfig:
    """Read ``config/sim/<name>.yaml`` (or a path) into an :class:`EnvironmentConfig` (cached)."""
    if isinstance(name_or_path, EnvironmentConfig):
        return name_or_path
    path = _resolve_env_path(name_or_path)
    key = str(path.resolve())
    mtime = path.stat().st_mtime if path.exists() else None
    hit = _ENV_CACHE.get(key)
    if hit is not None and hit[0] == mtime:
        return hit[1]
    where = str(path)
    f = parse(_EnvironmentFile, _read_yaml(path), where, classes=_parse_classes)
    if not f.classes:
        raise SimConfigError(f"{at(where, 'classes')}: expected a non-empty mapping of class name → prior")
    try:
        vocab = Vocabulary(classes=tuple(f.classes), predicates=f.predicates, subject_classes=f.subject_classes)
    except ValueError as e:
        raise SimConfigError(f"{where}: {e}") from None
    if min(f.image_size) < 16:
        raise SimConfigError(
            f"{at(where, 'image_size')}: expected [width, height] (each >= 16), got {list(f.image_size)}"
        )
    if not f.domains:
        raise SimConfigError(f"{at(where, 'domains')}: expected a non-empty mapping of domain name → settings")
    env = EnvironmentConfig(
        name=f.name or path.stem,
        vocab=vocab,
        classes=f.classes,
        image_size=f.image_size,
        hfov_deg=f.hfov_deg,
        ground_colour=f.ground.colour,
        zones=f.ground.zones,
        sky=f.sky,
        max_ground_distance=f.ground.max_distance,
        labels=f.labels,
        domains=f.domains,
        source_path=str(path),
    )
    _ENV_CACHE[key] = (mtime, env)
    return env


CONVERTERS[PartSpec] = parse_part
