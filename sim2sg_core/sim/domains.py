"""Environment and domain configuration: YAML under ``config/sim/`` → plain dataclasses.

An environment file (``config/sim/<env>.yaml``) holds the vocabulary, the class priors (size,
shape parts, colours), the ground layout and the label filter, plus a ``domains:`` mapping. Each
domain has ``content`` (the named distributions the generator samples from and label alignment
re-fits) and ``appearance`` (how the scene is drawn). A domain may ``inherit`` another and
override only what differs; dictionaries are merged recursively. Adding an environment needs no
code: write a new YAML file. The dataclasses are built by the one config system
(:func:`sim2sg_core.config.from_dict`: typed fields, unknown keys rejected, file + key path in errors);
the converters in :data:`_CONVERTERS` add the YAML shorthands (scalar ranges, RGB triples, scalar
Gaussians) and the per-type checks.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Union


from sim2sg_core.config import ConfigError, at, convert, deep_merge, from_dict, load_yaml_mapping
from sim2sg_core.config import config_dir as package_config_dir
from sim2sg_core.scene_graph import PREDICATES, Vocabulary

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


def _rgb(value, where: str) -> RGB:
    if not (
        isinstance(value, (list, tuple))
        and len(value) == 3
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise SimConfigError(f"{where}: expected an RGB triple like [120, 130, 140], got {value!r}")
    r, g, b = (int(max(0, min(255, round(v)))) for v in value)
    return r, g, b


def _range(value, where: str) -> Range:
    """A scalar ``a`` means [a, a]; a pair ``[lo, hi]`` is a uniform range."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), float(value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        lo, hi = (convert(v, float, at(where, i), error=SimConfigError) for i, v in enumerate(value))
        if hi < lo:
            raise SimConfigError(f"{where}: range [{lo}, {hi}] has hi < lo")
        return lo, hi
    raise SimConfigError(f"{where}: expected a number or [lo, hi], got {value!r}")


def _parse(cls, d, where: str, **field_converters):
    """``cls`` from the mapping ``d`` through the one config system, with the simulator's converters."""
    return from_dict(cls, d, where, converters={**_CONVERTERS, **field_converters}, error=SimConfigError)


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


def _parse_part(d, where: str) -> PartSpec:
    if isinstance(d, PartSpec):  # already parsed (shape variants are built from parsed parts)
        return d
    part = _parse(PartSpec, d, where)
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
    prior = _parse(ClassPrior, {**d, "name": name} if isinstance(d, dict) else d, where)
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
    f = _parse(_EnvironmentFile, _read_yaml(path), where, classes=_parse_classes)
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
    g = _parse(Gaussian, v, where)
    if g.std < 0 or g.min > g.max:
        raise SimConfigError(f"{where}: need std >= 0 and min <= max, got {g}")
    return g


def _lateral(v, where) -> Lateral:
    lat = _parse(Lateral, v, where)
    if not lat.modes:
        raise SimConfigError(f"{where}.modes: at least one mode is needed")
    if lat.weights and len(lat.weights) != len(lat.modes):
        raise SimConfigError(f"{where}.weights: {len(lat.weights)} weights for {len(lat.modes)} modes")
    if lat.stds and len(lat.stds) != len(lat.modes):
        raise SimConfigError(f"{where}.stds: {len(lat.stds)} standard deviations for {len(lat.modes)} modes")
    return lat


def _sizes(v, where) -> SizeMixture:
    sm = _parse(SizeMixture, v, where)
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
    content = _parse(ContentConfig, d, where)
    return replace(content, classes={n: content.classes[n] for n in env.classes})  # vocabulary order


# ----------------------------------------------------------------------------------------------
# Appearance: how a scene is drawn


@dataclass(frozen=True)
class AppearanceConfig:
    """Rendering appearance; every ``[lo, hi]`` range is drawn uniformly per image.

    colours: named background colours (``sky_top``, ``sky_horizon``, the ground colour and zone
    colours). palettes / part_colours override the class defaults. ``random_colours`` draws every
    colour at random (domain randomisation). Lighting is a directional sun (azimuth, elevation in
    degrees) with ambient + diffuse terms; ``shadows`` darkens the ground under objects.
    ``fade_distance`` fades ground and objects towards ``fade_colour`` with distance (haze).
    The sensor stage applies texture (multiplicative noise pattern), vignetting, colour cast
    (per-channel gain), exposure gain and gamma, blur, Gaussian noise and JPEG compression.
    """

    colours: dict[str, RGB] = field(default_factory=dict)
    palettes: dict[str, tuple[RGB, ...]] = field(default_factory=dict)
    part_colours: dict[str, dict[str, RGB]] = field(default_factory=dict)
    random_colours: bool = False
    colour_jitter: float = 0.0  # per-image jitter of background colours (RGB units)
    object_colour_jitter: float = 0.0  # per-object jitter (RGB units)
    sun_azimuth: Range = (-40.0, -40.0)
    sun_elevation: Range = (50.0, 50.0)
    ambient: Range = (0.55, 0.55)
    diffuse: Range = (0.45, 0.45)
    shadows: Range = (0.0, 0.0)  # darkening strength in [0, 1]
    fade_distance: Range = (150.0, 150.0)
    fade_colour: str = "sky_horizon"
    texture: Range = (0.0, 0.0)
    texture_scale: float = 6.0
    vignette: float = 0.0
    colour_cast: tuple[float, float, float] = (1.0, 1.0, 1.0)  # per-channel gains [r, g, b]
    cast_jitter: float = 0.0
    exposure: Range = (1.0, 1.0)
    gamma: Range = (1.0, 1.0)
    blur_sigma: Range = (0.0, 0.0)
    noise_std: Range = (0.0, 0.0)
    jpeg_quality: Optional[Range] = None
    specular: float = 0.0  # highlight strength (metallic look)
    jpeg_probability: float = 1.0  # share of images that get the JPEG round trip (when jpeg_quality)
    # --- street look: every option below is off by default, so only domains that set them change ---
    #: per-class shape overrides: class -> tuple of :class:`ShapeVariant` (first match by size wins)
    class_parts: dict = field(default_factory=dict)
    #: per-class palette weights (aligned with the palette in use): weighted body-colour choice
    palette_weights: dict[str, tuple[float, ...]] = field(default_factory=dict)
    ground: Optional["GroundLayout"] = None  # ground colour + zones replacing the environment's
    facades: Optional["FacadeConfig"] = None  # building facades along both sides (background)
    region_texture: dict[str, Range] = field(default_factory=dict)  # layout colour / 'facade' / 'sky' -> range
    class_texture: dict[str, Range] = field(default_factory=dict)  # class -> texture strength range on its pixels
    hue_shift: Range = (0.0, 0.0)  # degrees, whole image
    saturation: Range = (1.0, 1.0)  # multiplier, whole image
    hood: Optional["HoodConfig"] = None  # the ego vehicle's bonnet at the bottom of the image
    #: weighted alternative looks ((weight, AppearanceConfig), ...); each image uses one
    variants: tuple = ()


@dataclass(frozen=True)
class ShapeVariant:
    """A class shape (parts) used for objects whose size is inside the given ranges (m)."""

    parts: tuple[PartSpec, ...]
    min_height: float = 0.0
    max_height: float = math.inf
    min_length: float = 0.0
    max_length: float = math.inf

    def matches(self, size) -> bool:
        h, _, length = size
        return self.min_height <= h < self.max_height and self.min_length <= length < self.max_length


@dataclass(frozen=True)
class GroundLayout:
    """A domain's own ground: default colour and zones (same format as the environment's)."""

    colour: str
    zones: tuple[GroundZone, ...] = ()


@dataclass(frozen=True)
class FacadeConfig:
    """Rows of building facades along the street (unlabelled background, drawn behind all objects).

    Per image and side (with ``probability``) buildings follow each other along z from ``start``
    to ``max_distance``: frontage ``length``, ``height``, a facade plane at x drawn from ``left`` /
    ``right`` (plus ``setback`` jitter per building), a gap (cross street, lot) after a building
    with probability ``gap``. Windows: a grid of ``floor_height`` × ``window_spacing`` cells with
    windows ``window_width`` × ``window_height`` of a cell (fractions), on a building with
    probability ``windows``; a ground-floor shopfront band with probability ``shopfront``.
    ``skyline`` (height range, m) adds distant blocks and tree lines at ``skyline_distance``;
    ``shadows`` lets the buildings cast sun shadows onto the street (off for overcast looks).
    Every ``[lo, hi]`` is drawn uniformly (per image, side or building).
    """

    left: Optional[Range] = (-12.0, -10.0)
    right: Optional[Range] = (8.0, 10.0)
    probability: float = 1.0
    start: Range = (0.0, 8.0)
    max_distance: float = 160.0
    length: Range = (8.0, 30.0)
    height: Range = (6.0, 24.0)
    setback: float = 0.6
    depth: float = 14.0
    gap: float = 0.15
    gap_width: Range = (4.0, 14.0)
    floor_height: Range = (3.0, 3.8)
    window_spacing: Range = (2.2, 3.4)
    window_width: Range = (0.4, 0.65)
    window_height: Range = (0.4, 0.6)
    windows: float = 0.9
    shopfront: float = 0.35
    colours: tuple[RGB, ...] = ((160, 95, 75), (200, 185, 160), (165, 163, 158), (215, 212, 205), (120, 95, 80))
    window_colours: tuple[RGB, ...] = ((55, 65, 75), (80, 95, 110), (40, 45, 50))
    colour_jitter: float = 12.0
    #: distant blocks / tree lines along the horizon: height range (m); None = no skyline
    skyline: Optional[Range] = None
    skyline_distance: Range = (200.0, 400.0)
    #: buildings cast sun shadows onto the street (with the appearance's ``shadows`` strength)
    shadows: bool = True


@dataclass(frozen=True)
class HoodConfig:
    """The ego vehicle's bonnet across the bottom of the image (occludes; never labelled)."""

    probability: float = 0.0
    height: Range = (0.05, 0.12)  # fraction of the image height at the centre
    curve: Range = (0.3, 0.8)  # how much lower the corners are (fraction of height)
    colours: tuple[RGB, ...] = ((215, 215, 215), (30, 30, 33), (140, 142, 146), (100, 20, 25), (30, 45, 90))


def _colours(v, where) -> tuple:
    if not isinstance(v, (list, tuple)) or not v:
        raise SimConfigError(f"{where}: expected a non-empty list of RGB triples, got {v!r}")
    return tuple(_rgb(c, at(where, i)) for i, c in enumerate(v))


def _parse_facades(v, where) -> FacadeConfig:
    return _parse(FacadeConfig, v, where, colours=_colours, window_colours=_colours)


def _parse_hood(v, where) -> HoodConfig:
    return _parse(HoodConfig, v, where, colours=_colours)


#: The YAML shorthands and per-type checks, applied wherever a field has one of these types.
_CONVERTERS = {
    Range: _range,
    RGB: _rgb,
    PartSpec: _parse_part,
    Gaussian: _gaussian,
    Lateral: _lateral,
    SizeMixture: _sizes,
    FacadeConfig: _parse_facades,
    HoodConfig: _parse_hood,
}


def _parse_class_parts(v, env: EnvironmentConfig, where: str) -> dict:
    """``{class: [part, ...]}`` or ``{class: [{parts: [...], min_height: .., max_length: ..}, ...]}``."""
    if not isinstance(v, dict):
        raise SimConfigError(f"{where}: expected a mapping of class name -> parts, got {type(v).__name__}")
    out = {}
    for cls, spec in v.items():
        w = f"{where}.{cls}"
        if cls not in env.classes:
            raise SimConfigError(f"{w}: unknown class {cls!r}; known: {list(env.classes)}")
        if not isinstance(spec, (list, tuple)) or not spec:
            raise SimConfigError(
                f"{w}: expected a non-empty list of parts (or of {{parts: [...]}} shape variants), got {spec!r}"
            )
        is_variant = [isinstance(p, dict) and "parts" in p for p in spec]
        if any(is_variant) and not all(is_variant):
            raise SimConfigError(f"{w}: mixes parts and {{parts: [...]}} shape variants; use one form")
        raw = spec if all(is_variant) else [{"parts": spec}]
        variants = []
        for i, vd in enumerate(raw):
            wv = f"{w}[{i}]" if all(is_variant) else w
            parts_raw = vd.get("parts")
            if not isinstance(parts_raw, (list, tuple)) or not parts_raw:
                raise SimConfigError(f"{wv}.parts: expected a non-empty list of parts, got {parts_raw!r}")
            parts = tuple(
                _parse_part(p, f"{wv}.parts[{j}]" if all(is_variant) else f"{wv}[{j}]") for j, p in enumerate(parts_raw)
            )
            rest = {k: x for k, x in vd.items() if k != "parts"}
            variants.append(_parse(ShapeVariant, {**rest, "parts": parts}, wv))
        out[cls] = tuple(variants)
    return out


def parse_appearance(d: dict, env: EnvironmentConfig, where: str) -> AppearanceConfig:
    if isinstance(d, dict) and "variants" in d:
        return _parse_variants(d, env, where)
    app = _parse(AppearanceConfig, d, where, class_parts=lambda v, w: _parse_class_parts(v, env, w))
    for k in list(app.palettes) + list(app.part_colours):
        if k not in env.classes:
            raise SimConfigError(f"{where}: palette/part colours for unknown class {k!r}")
    ground_colour, zones = (app.ground.colour, app.ground.zones) if app.ground else (env.ground_colour, env.zones)
    needed = {ground_colour, *(z.colour for z in zones), app.fade_colour}
    if env.sky:
        needed |= {"sky_top", "sky_horizon"}
    missing = needed - set(app.colours)
    if missing:
        raise SimConfigError(f"{where}.colours: missing colour(s) {sorted(missing)}")
    _check_street_options(app, env, where, needed)
    return app


def _check_street_options(app: AppearanceConfig, env: EnvironmentConfig, where: str, layout_colours: set) -> None:
    if app.ground is not None and len(app.ground.zones) > 6:
        raise SimConfigError(f"{where}.ground.zones: at most 6 zones are supported, got {len(app.ground.zones)}")
    for cls, variants in app.class_parts.items():
        known = set(env.prior(cls).part_colours) | set(app.part_colours.get(cls, {}))
        form = len(variants) > 1 or any(
            v.min_height > 0 or v.max_height < math.inf or v.min_length > 0 or v.max_length < math.inf for v in variants
        )
        for i, v in enumerate(variants):
            for j, p in enumerate(v.parts):
                if p.colour != "body" and p.colour not in known:
                    loc = f"{where}.class_parts.{cls}[{i}].parts[{j}]" if form else f"{where}.class_parts.{cls}[{j}]"
                    raise SimConfigError(
                        f"{loc}.colour: {p.colour!r} is neither 'body' nor a part colour of "
                        f"{cls!r} (class part_colours or appearance part_colours.{cls}: "
                        f"{sorted(known)})"
                    )
    for cls, ws in app.palette_weights.items():
        if cls not in env.classes:
            raise SimConfigError(f"{where}.palette_weights: unknown class {cls!r}; known: {list(env.classes)}")
        n = len(app.palettes.get(cls) or env.prior(cls).palette)
        if len(ws) != n or min(ws) < 0 or sum(ws) <= 0:
            raise SimConfigError(
                f"{where}.palette_weights.{cls}: need {n} weights >= 0 (one per palette colour, "
                f"not all 0), got {list(ws)}"
            )
    for cls in app.class_texture:
        if cls not in env.classes:
            raise SimConfigError(f"{where}.class_texture: unknown class {cls!r}; known: {list(env.classes)}")
    allowed = (layout_colours - {app.fade_colour}) | {"sky", "facade"}
    for name in app.region_texture:
        if name not in allowed:
            raise SimConfigError(
                f"{where}.region_texture: {name!r} is not a ground/zone colour, 'sky' or "
                f"'facade'; known: {sorted(allowed)}"
            )


def _parse_variants(d: dict, env: EnvironmentConfig, where: str) -> AppearanceConfig:
    """``variants: [{weight: w, <appearance overrides>}, ...]``: each image uses one variant, the
    base appearance deep-merged with the variant's overrides."""
    raw = d["variants"]
    if not isinstance(raw, (list, tuple)) or not raw:
        raise SimConfigError(f"{where}.variants: expected a non-empty list of appearance overrides")
    base_d = {k: v for k, v in d.items() if k != "variants"}
    base = parse_appearance(base_d, env, where)
    out = []
    for i, vd in enumerate(raw):
        w = f"{where}.variants[{i}]"
        if not isinstance(vd, dict):
            raise SimConfigError(f"{w}: expected a mapping")
        if "variants" in vd:
            raise SimConfigError(f"{w}: variants cannot be nested")
        weight = float(vd.get("weight", 1.0))
        if weight < 0:
            raise SimConfigError(f"{w}.weight: must be >= 0, got {weight}")
        over = {k: v for k, v in vd.items() if k != "weight"}
        va = parse_appearance(deep_merge(base_d, over), env, w)
        if "class_parts" not in over:  # share the parsed shapes (and so the renderer's templates)
            va = replace(va, class_parts=base.class_parts)
        out.append((weight, va))
    if sum(w for w, _ in out) <= 0:
        raise SimConfigError(f"{where}.variants: the weights sum to 0")
    return replace(base, variants=tuple(out))


@dataclass(frozen=True)
class DomainConfig:
    env: str
    name: str
    content: ContentConfig
    appearance: AppearanceConfig


def domain_names(env: Union[str, EnvironmentConfig]) -> list[str]:
    return list(load_environment(env).domains)


def _merged_domain_dict(env: EnvironmentConfig, name: str, seen=()) -> dict:
    if name not in env.domains:
        raise SimConfigError(
            f"{env.source_path}: environment {env.name!r} has no domain {name!r}; known: {list(env.domains)}"
        )
    if name in seen:
        raise SimConfigError(f"{env.source_path}: domain inheritance cycle {list(seen) + [name]}")
    d = env.domains[name] or {}
    parent = d.get("inherit")
    base = _merged_domain_dict(env, parent, seen + (name,)) if parent else {}
    own = {k: v for k, v in d.items() if k != "inherit"}
    return deep_merge(base, own)


def load_domain(env: Union[str, EnvironmentConfig], domain: str) -> DomainConfig:
    """Domain ``domain`` of environment ``env`` (inheritance resolved) as a :class:`DomainConfig`."""
    envc = load_environment(env)
    d = _merged_domain_dict(envc, domain)
    where = f"{envc.source_path}: domains.{domain}"
    unknown = set(d) - {"content", "appearance"}
    if unknown:
        raise SimConfigError(f"{where}: unknown field(s) {sorted(unknown)}")
    if "content" not in d or "appearance" not in d:
        raise SimConfigError(f"{where}: needs both 'content' and 'appearance'")
    return DomainConfig(
        env=envc.name,
        name=domain,
        content=parse_content(d["content"], envc, f"{where}.content"),
        appearance=parse_appearance(d["appearance"], envc, f"{where}.appearance"),
    )


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


__all__ = [
    "DECALS",
    "AppearanceConfig",
    "CameraContent",
    "ClassContent",
    "ClassPrior",
    "ContentConfig",
    "DomainConfig",
    "EnvironmentConfig",
    "FacadeConfig",
    "Gaussian",
    "GroundLayout",
    "GroundZone",
    "HoodConfig",
    "LabelFilter",
    "Lateral",
    "PartSpec",
    "ShapeVariant",
    "SimConfigError",
    "SizeMixture",
    "available_environments",
    "sim_config_dir",
    "content_to_dict",
    "domain_names",
    "load_domain",
    "load_environment",
]
