"""Per-image draws of an appearance (the "look"): colours, light, haze and sensor settings, each drawn
once per image from the appearance's ranges so that every drawing stage sees the same values."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from sim2sg_core.sim.domains import AppearanceConfig


@dataclass
class Look:
    """One image's drawn appearance values (angles in radians, colours RGB floats)."""

    colours: dict
    to_sun: np.ndarray
    sun_azimuth: float
    sun_elevation: float
    ambient: float
    diffuse: float
    shadows: float
    fade_distance: float
    fade_colour: np.ndarray
    texture: float
    cast: np.ndarray
    exposure: float
    gamma: float
    blur: float
    noise: float
    jpeg: Optional[int]


def draw_uniform(rng: np.random.Generator, r: tuple[float, float]) -> float:
    """A value of a ``[lo, hi]`` range; a fixed value (lo == hi) draws nothing from ``rng``."""
    return float(r[0]) if r[0] == r[1] else float(rng.uniform(r[0], r[1]))


def jitter_colour(rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Colour jitter: mostly brightness (shared by the channels), a little hue (per channel)."""
    return rng.normal(0.0, sigma) + rng.normal(0.0, sigma / 3.0, 3)


def draw_look(app: AppearanceConfig, rng: np.random.Generator) -> Look:
    """This image's look. The order of the draws is part of every image: keep it."""
    colours = {}
    for name, c in sorted(app.colours.items()):
        if app.random_colours:
            colours[name] = rng.integers(0, 256, 3).astype(np.float64)
        elif app.colour_jitter > 0:
            colours[name] = np.clip(np.asarray(c, float) + jitter_colour(rng, app.colour_jitter), 0, 255)
        else:
            colours[name] = np.asarray(c, float)
    az = math.radians(draw_uniform(rng, app.sun_azimuth))
    el = math.radians(draw_uniform(rng, app.sun_elevation))
    to_sun = np.array([math.cos(el) * math.sin(az), -math.sin(el), math.cos(el) * math.cos(az)])
    cast = np.asarray(app.colour_cast, float)
    if app.cast_jitter > 0:
        cast = cast * np.exp(rng.normal(0, app.cast_jitter, 3))
    q = app.jpeg_quality
    if q is not None and app.jpeg_probability < 1.0 and rng.random() >= app.jpeg_probability:
        q = None
    return Look(
        colours=colours,
        to_sun=to_sun,
        sun_azimuth=az,
        sun_elevation=el,
        ambient=draw_uniform(rng, app.ambient),
        diffuse=draw_uniform(rng, app.diffuse),
        shadows=draw_uniform(rng, app.shadows),
        fade_distance=max(draw_uniform(rng, app.fade_distance), 1e-3),
        fade_colour=colours[app.fade_colour],
        texture=draw_uniform(rng, app.texture),
        cast=cast,
        exposure=draw_uniform(rng, app.exposure),
        gamma=draw_uniform(rng, app.gamma),
        blur=draw_uniform(rng, app.blur_sigma),
        noise=draw_uniform(rng, app.noise_std),
        jpeg=None if q is None else int(round(draw_uniform(rng, q))),
    )
