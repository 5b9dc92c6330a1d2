"""Environment and domain configuration: YAML under ``config/sim/`` → plain dataclasses.

An environment file (``config/sim/<env>.yaml``) holds the vocabulary, the class priors (size,
shape parts, colours), the ground layout and the label filter, plus a ``domains:`` mapping. Each
domain has ``content`` (the named distributions the generator samples from and label alignment
re-fits) and ``appearance`` (how the scene is drawn). A domain may ``inherit`` another and
override only what differs; dictionaries are merged recursively. Adding an environment needs no
code: write a new YAML file.
"""
from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional, Union

import yaml

from sim2sg_core.scene_graph import PREDICATES, Vocabulary

RGB = tuple[int, int, int]
SHAPES = ("cuboid", "cylinder", "cone", "frustum", "sphere", "roof")


class SimConfigError(ValueError):
    """A simulator YAML file that is missing a field or has a bad value."""


# ----------------------------------------------------------------------------------------------
# Locating config files

def config_dir() -> Path:
    """Directory of the simulator YAML files.

    ``$SIM2SG_SIM_CONFIG_DIR`` wins; otherwise the source tree's ``config/sim``; otherwise the
    installed ROS share directory (``share/sim2sg_ros/config/sim``).
    """
    env = os.environ.get("SIM2SG_SIM_CONFIG_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parents[2] / "config" / "sim"
    if here.is_dir():
        return here
    try:  # installed as a ROS package
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory("sim2sg_ros")) / "config" / "sim"
    except Exception:  # noqa: BLE001 - fall back to the source layout for a clear error later
        return here


def available_environments() -> list[str]:
    d = config_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


# ----------------------------------------------------------------------------------------------
# Small parsing helpers

def _rgb(value, where: str) -> RGB:
    if not (isinstance(value, (list, tuple)) and len(value) == 3
            and all(isinstance(v, (int, float)) for v in value)):
        raise SimConfigError(f"{where}: expected an RGB triple like [120, 130, 140], got {value!r}")
    return tuple(int(max(0, min(255, round(v)))) for v in value)


def _range(value, where: str) -> tuple[float, float]:
    """A scalar ``a`` means [a, a]; a pair ``[lo, hi]`` is a uniform range."""
    if isinstance(value, (int, float)):
        return float(value), float(value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        lo, hi = float(value[0]), float(value[1])
        if hi < lo:
            raise SimConfigError(f"{where}: range [{lo}, {hi}] has hi < lo")
        return lo, hi
    raise SimConfigError(f"{where}: expected a number or [lo, hi], got {value!r}")


def _deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _build(cls, d: dict, where: str, **converters):
    """Build dataclass ``cls`` from ``d``: unknown keys are an error naming the file/field."""
    if d is None:
        d = {}
    if not isinstance(d, dict):
        raise SimConfigError(f"{where}: expected a mapping, got {type(d).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise SimConfigError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(names)}")
    kwargs = {}
    for k, v in d.items():
        conv = converters.get(k)
        try:
            kwargs[k] = conv(v, f"{where}.{k}") if conv else v
        except SimConfigError:
            raise
        except (TypeError, ValueError) as e:
            raise SimConfigError(f"{where}.{k}: {e}") from None
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise SimConfigError(f"{where}: {e}") from None


# ----------------------------------------------------------------------------------------------
# Environment (geometry and vocabulary)

@dataclass(frozen=True)
class PartSpec:
    """One primitive of a class shape, in fractions of the object's (height, width, length).

    ``y`` is the [bottom, top] height fraction; ``w``/``l`` the width/length fractions (diameters
    for round shapes); ``top`` the top/bottom diameter ratio of a frustum (a cone has 0); ``dx``
    shifts the part along the length axis; ``colour`` is ``body`` (class palette) or a named part
    colour of the class; ``shade`` multiplies the colour.
    """

    shape: str = "cuboid"
    y: tuple[float, float] = (0.0, 1.0)
    w: float = 1.0
    l: float = 1.0
    top: float = 1.0
    dx: float = 0.0
    sides: int = 12
    colour: str = "body"
    shade: float = 1.0


@dataclass(frozen=True)
class ClassPrior:
    """Geometry and default colours of one class."""

    name: str
    size: tuple[float, float, float]  # height, width, length (m)
    parts: tuple[PartSpec, ...]
    palette: tuple[RGB, ...]
    part_colours: dict = field(default_factory=dict)
    size_jitter: float = 0.05


@dataclass(frozen=True)
class GroundZone:
    """A rectangle on the ground plane (level frame x/z, metres) painted with a named colour.

    ``dash`` = [on, off] metres paints only dashes along z (lane markings).
    """

    colour: str
    x: tuple[float, float] = (-math.inf, math.inf)
    z: tuple[float, float] = (-math.inf, math.inf)
    dash: Optional[tuple[float, float]] = None


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
            raise SimConfigError(f"environment {self.name!r} has no class {class_name!r}; "
                                 f"known: {list(self.classes)}") from None


def _parse_part(d: dict, where: str) -> PartSpec:
    part = _build(PartSpec, d, where, y=lambda v, w: _range(v, w), w=lambda v, w: float(v),
                  l=lambda v, w: float(v), top=lambda v, w: float(v), dx=lambda v, w: float(v),
                  sides=lambda v, w: int(v), shade=lambda v, w: float(v), colour=lambda v, w: str(v))
    if part.shape not in SHAPES:
        raise SimConfigError(f"{where}.shape: unknown shape {part.shape!r}; known: {list(SHAPES)}")
    if part.sides < 3:
        raise SimConfigError(f"{where}.sides: need at least 3 sides, got {part.sides}")
    return part


def _parse_class(name: str, d: dict, where: str) -> ClassPrior:
    if not isinstance(d, dict):
        raise SimConfigError(f"{where}: expected a mapping")
    for key in ("size", "parts", "palette"):
        if key not in d:
            raise SimConfigError(f"{where}: missing field {key!r}")
    size = d["size"]
    if not (isinstance(size, (list, tuple)) and len(size) == 3 and all(float(v) > 0 for v in size)):
        raise SimConfigError(f"{where}.size: expected [height, width, length] > 0, got {size!r}")
    parts = tuple(_parse_part(p, f"{where}.parts[{i}]") for i, p in enumerate(d["parts"]))
    if not parts:
        raise SimConfigError(f"{where}.parts: at least one part is needed")
    palette = tuple(_rgb(c, f"{where}.palette[{i}]") for i, c in enumerate(d["palette"]))
    if not palette:
        raise SimConfigError(f"{where}.palette: at least one colour is needed")
    part_colours = {k: _rgb(v, f"{where}.part_colours.{k}") for k, v in (d.get("part_colours") or {}).items()}
    for i, p in enumerate(parts):
        if p.colour != "body" and p.colour not in part_colours:
            raise SimConfigError(f"{where}.parts[{i}].colour: {p.colour!r} is neither 'body' nor a key of "
                                 f"part_colours {sorted(part_colours)}")
    unknown = set(d) - {"size", "parts", "palette", "part_colours", "size_jitter"}
    if unknown:
        raise SimConfigError(f"{where}: unknown field(s) {sorted(unknown)}")
    return ClassPrior(name=name, size=tuple(float(v) for v in size), parts=parts, palette=palette,
                      part_colours=part_colours, size_jitter=float(d.get("size_jitter", 0.05)))


def _read_yaml(path: Path) -> dict:
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise SimConfigError(f"simulator config {path} does not exist; available environments: "
                             f"{available_environments()}") from None
    except yaml.YAMLError as e:
        raise SimConfigError(f"simulator config {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise SimConfigError(f"simulator config {path} must hold a mapping at the top level")
    return data


def _resolve_env_path(name_or_path: Union[str, os.PathLike]) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    return config_dir() / f"{name_or_path}.yaml"


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
    data = _read_yaml(path)
    where = str(path)
    for key_ in ("classes", "domains"):
        if key_ not in data:
            raise SimConfigError(f"{where}: missing top-level field {key_!r}")
    classes_raw = data["classes"]
    if not isinstance(classes_raw, dict) or not classes_raw:
        raise SimConfigError(f"{where}.classes: expected a non-empty mapping of class name → prior")
    classes = {n: _parse_class(n, c, f"{where}.classes.{n}") for n, c in classes_raw.items()}
    subject = tuple(data.get("subject_classes") or ())
    try:
        vocab = Vocabulary(classes=tuple(classes), predicates=tuple(data.get("predicates", PREDICATES)),
                           subject_classes=subject)
    except ValueError as e:
        raise SimConfigError(f"{where}: {e}") from None
    size = data.get("image_size", [640, 192])
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(int(v) >= 16 for v in size)):
        raise SimConfigError(f"{where}.image_size: expected [width, height] (each >= 16), got {size!r}")
    zones = tuple(_build(GroundZone, z, f"{where}.ground.zones[{i}]",
                         x=lambda v, w: _range(v, w), z=lambda v, w: _range(v, w),
                         dash=lambda v, w: None if v is None else _range(v, w))
                  for i, z in enumerate((data.get("ground") or {}).get("zones", [])))
    ground = data.get("ground") or {}
    unknown_ground = set(ground) - {"zones", "colour", "max_distance"}
    if unknown_ground:
        raise SimConfigError(f"{where}.ground: unknown field(s) {sorted(unknown_ground)}")
    labels = _build(LabelFilter, data.get("labels"), f"{where}.labels")
    domains = data["domains"]
    if not isinstance(domains, dict) or not domains:
        raise SimConfigError(f"{where}.domains: expected a non-empty mapping of domain name → settings")
    unknown_top = set(data) - {"name", "classes", "subject_classes", "predicates", "image_size", "hfov_deg",
                               "ground", "sky", "labels", "domains"}
    if unknown_top:
        raise SimConfigError(f"{where}: unknown top-level field(s) {sorted(unknown_top)}")
    env = EnvironmentConfig(
        name=str(data.get("name", path.stem)), vocab=vocab, classes=classes,
        image_size=(int(size[0]), int(size[1])), hfov_deg=float(data.get("hfov_deg", 80.0)),
        ground_colour=str(ground.get("colour", "ground")), zones=zones, sky=bool(data.get("sky", True)),
        max_ground_distance=float(ground.get("max_distance", 250.0)), labels=labels, domains=domains,
        source_path=str(path))
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


@dataclass(frozen=True)
class ClassContent:
    """Per-class content distributions.

    count_mean: Poisson mean of objects per image; depth: forward distance z (m); lateral: x (m);
    scale: multiplier on the class prior size; yaw: KITTI rotation_y (rad), flipped by pi with
    probability ``yaw_flip``.
    """

    count_mean: float
    depth: Gaussian
    lateral: Lateral
    scale: Gaussian = Gaussian(1.0, 0.05, 0.5, 2.0)
    yaw: Gaussian = Gaussian(0.0, 0.1)
    yaw_flip: float = 0.0


@dataclass(frozen=True)
class CameraContent:
    height: Gaussian
    pitch: Gaussian

    @property
    def mean_pose(self) -> tuple[float, float]:
        """(height m, pitch rad) of the rig's mean mounting pose."""
        return float(self.height.mean), float(self.pitch.mean)


@dataclass(frozen=True)
class ContentConfig:
    camera: CameraContent
    classes: dict  # class name -> ClassContent
    max_objects: int = 12
    min_separation: float = 0.3  # metres of free ground between object footprints


def _gaussian(v, where) -> Gaussian:
    if isinstance(v, (int, float)):
        return Gaussian(float(v), 0.0)
    g = _build(Gaussian, v, where, mean=lambda x, w: float(x), std=lambda x, w: float(x),
               min=lambda x, w: float(x), max=lambda x, w: float(x))
    if g.std < 0 or g.min > g.max:
        raise SimConfigError(f"{where}: need std >= 0 and min <= max, got {g}")
    return g


def _lateral(v, where) -> Lateral:
    lat = _build(Lateral, v, where, modes=lambda x, w: tuple(float(a) for a in x),
                 weights=lambda x, w: tuple(float(a) for a in x), std=lambda x, w: float(x))
    if not lat.modes:
        raise SimConfigError(f"{where}.modes: at least one mode is needed")
    if lat.weights and len(lat.weights) != len(lat.modes):
        raise SimConfigError(f"{where}.weights: {len(lat.weights)} weights for {len(lat.modes)} modes")
    return lat


def parse_content(d: dict, env: EnvironmentConfig, where: str) -> ContentConfig:
    if not isinstance(d, dict):
        raise SimConfigError(f"{where}: expected a mapping")
    cam = _build(CameraContent, d.get("camera"), f"{where}.camera", height=_gaussian, pitch=_gaussian)
    classes_raw = d.get("classes") or {}
    unknown = set(classes_raw) - set(env.classes)
    if unknown:
        raise SimConfigError(f"{where}.classes: unknown class(es) {sorted(unknown)}; known: {list(env.classes)}")
    classes = {}
    for name in env.classes:
        if name not in classes_raw:
            raise SimConfigError(f"{where}.classes: class {name!r} has no content distribution")
        classes[name] = _build(ClassContent, classes_raw[name], f"{where}.classes.{name}",
                               count_mean=lambda x, w: float(x), depth=_gaussian, lateral=_lateral,
                               scale=_gaussian, yaw=_gaussian, yaw_flip=lambda x, w: float(x))
    unknown_top = set(d) - {"camera", "classes", "max_objects", "min_separation"}
    if unknown_top:
        raise SimConfigError(f"{where}: unknown field(s) {sorted(unknown_top)}")
    return ContentConfig(camera=cam, classes=classes, max_objects=int(d.get("max_objects", 12)),
                         min_separation=float(d.get("min_separation", 0.3)))


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

    colours: dict = field(default_factory=dict)
    palettes: dict = field(default_factory=dict)
    part_colours: dict = field(default_factory=dict)
    random_colours: bool = False
    colour_jitter: float = 0.0          # per-image jitter of background colours (RGB units)
    object_colour_jitter: float = 0.0   # per-object jitter (RGB units)
    sun_azimuth: tuple[float, float] = (-40.0, -40.0)
    sun_elevation: tuple[float, float] = (50.0, 50.0)
    ambient: tuple[float, float] = (0.55, 0.55)
    diffuse: tuple[float, float] = (0.45, 0.45)
    shadows: tuple[float, float] = (0.0, 0.0)    # darkening strength in [0, 1]
    fade_distance: tuple[float, float] = (150.0, 150.0)
    fade_colour: str = "sky_horizon"
    texture: tuple[float, float] = (0.0, 0.0)
    texture_scale: float = 6.0
    vignette: float = 0.0
    colour_cast: tuple[float, float, float] = (1.0, 1.0, 1.0)
    cast_jitter: float = 0.0
    exposure: tuple[float, float] = (1.0, 1.0)
    gamma: tuple[float, float] = (1.0, 1.0)
    blur_sigma: tuple[float, float] = (0.0, 0.0)
    noise_std: tuple[float, float] = (0.0, 0.0)
    jpeg_quality: Optional[tuple[float, float]] = None
    specular: float = 0.0               # highlight strength (metallic look)


def _gains(v, where) -> tuple[float, float, float]:
    if not (isinstance(v, (list, tuple)) and len(v) == 3):
        raise SimConfigError(f"{where}: expected three channel gains [r, g, b], got {v!r}")
    return tuple(float(a) for a in v)


def parse_appearance(d: dict, env: EnvironmentConfig, where: str) -> AppearanceConfig:
    rng_fields = ("sun_azimuth", "sun_elevation", "ambient", "diffuse", "shadows", "fade_distance", "texture",
                  "exposure", "gamma", "blur_sigma", "noise_std")
    conv = {k: (lambda v, w: _range(v, w)) for k in rng_fields}
    conv["colours"] = lambda v, w: {k: _rgb(c, f"{w}.{k}") for k, c in (v or {}).items()}
    conv["palettes"] = lambda v, w: {k: tuple(_rgb(c, f"{w}.{k}[{i}]") for i, c in enumerate(cs))
                                     for k, cs in (v or {}).items()}
    conv["part_colours"] = lambda v, w: {k: {p: _rgb(c, f"{w}.{k}.{p}") for p, c in (pc or {}).items()}
                                         for k, pc in (v or {}).items()}
    conv["jpeg_quality"] = lambda v, w: None if v is None else _range(v, w)
    conv["colour_cast"] = _gains
    for k in ("colour_jitter", "object_colour_jitter", "texture_scale", "vignette", "cast_jitter", "specular"):
        conv[k] = lambda v, w: float(v)
    app = _build(AppearanceConfig, d, where, **conv)
    for k in list(app.palettes) + list(app.part_colours):
        if k not in env.classes:
            raise SimConfigError(f"{where}: palette/part colours for unknown class {k!r}")
    needed = {env.ground_colour, *(z.colour for z in env.zones), app.fade_colour}
    if env.sky:
        needed |= {"sky_top", "sky_horizon"}
    missing = needed - set(app.colours)
    if missing:
        raise SimConfigError(f"{where}.colours: missing colour(s) {sorted(missing)}")
    return app


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
        raise SimConfigError(f"{env.source_path}: environment {env.name!r} has no domain {name!r}; "
                             f"known: {list(env.domains)}")
    if name in seen:
        raise SimConfigError(f"{env.source_path}: domain inheritance cycle {list(seen) + [name]}")
    d = env.domains[name] or {}
    parent = d.get("inherit")
    base = _merged_domain_dict(env, parent, seen + (name,)) if parent else {}
    own = {k: v for k, v in d.items() if k != "inherit"}
    return _deep_merge(base, own)


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
    return DomainConfig(env=envc.name, name=domain, content=parse_content(d["content"], envc, f"{where}.content"),
                        appearance=parse_appearance(d["appearance"], envc, f"{where}.appearance"))


def content_to_dict(content: ContentConfig) -> dict:
    """Plain dict (YAML-ready) of a content config, e.g. to save a re-fitted prior."""
    def g(x: Gaussian) -> dict:
        return {"mean": x.mean, "std": x.std, "min": x.min, "max": x.max}
    return {"camera": {"height": g(content.camera.height), "pitch": g(content.camera.pitch)},
            "max_objects": content.max_objects, "min_separation": content.min_separation,
            "classes": {n: {"count_mean": c.count_mean, "depth": g(c.depth),
                            "lateral": {"modes": list(c.lateral.modes), "weights": list(c.lateral.weights),
                                        "std": c.lateral.std},
                            "scale": g(c.scale), "yaw": g(c.yaw), "yaw_flip": c.yaw_flip}
                        for n, c in content.classes.items()}}


__all__ = ["AppearanceConfig", "CameraContent", "ClassContent", "ClassPrior", "ContentConfig", "DomainConfig",
           "EnvironmentConfig", "Gaussian", "GroundZone", "LabelFilter", "Lateral", "PartSpec", "SimConfigError",
           "available_environments", "config_dir", "content_to_dict", "domain_names", "load_domain",
           "load_environment"]
