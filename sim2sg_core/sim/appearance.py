"""A domain's appearance: how a scene is drawn (colours, palettes, textures, light, camera sensor, street
looks: shape variants, ground layouts, facades, bonnet) and its per-image variants."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Optional

from sim2sg_core.config import at, deep_merge
from sim2sg_core.sim.config_base import CONVERTERS, RGB, Range, SimConfigError, parse_rgb, parse
from sim2sg_core.sim.environment import EnvironmentConfig, GroundZone, PartSpec, parse_part

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
    return tuple(parse_rgb(c, at(where, i)) for i, c in enumerate(v))


def _parse_facades(v, where) -> FacadeConfig:
    return parse(FacadeConfig, v, where, colours=_colours, window_colours=_colours)


def _parse_hood(v, where) -> HoodConfig:
    return parse(HoodConfig, v, where, colours=_colours)


CONVERTERS.update({FacadeConfig: _parse_facades, HoodConfig: _parse_hood})


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
                parse_part(p, f"{wv}.parts[{j}]" if all(is_variant) else f"{wv}[{j}]") for j, p in enumerate(parts_raw)
            )
            rest = {k: x for k, x in vd.items() if k != "parts"}
            variants.append(parse(ShapeVariant, {**rest, "parts": parts}, wv))
        out[cls] = tuple(variants)
    return out


def parse_appearance(d: dict, env: EnvironmentConfig, where: str) -> AppearanceConfig:
    if isinstance(d, dict) and "variants" in d:
        return _parse_variants(d, env, where)
    app = parse(AppearanceConfig, d, where, class_parts=lambda v, w: _parse_class_parts(v, env, w))
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
