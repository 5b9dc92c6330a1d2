"""Class shapes and colours per appearance: the environment's class priors, or per-appearance copies
(``class_parts``, size-selected variants) whose templates carry level-of-detail data; body and part
colours per object from (weighted) palettes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sim2sg_core.sim.domains import AppearanceConfig, ClassPrior, EnvironmentConfig
from sim2sg_core.sim.render.look import jitter_colour
from sim2sg_core.sim.render.templates import template_for, with_level_of_detail


def weighted_palette_index(colour_index: int, weights) -> int:
    """Palette entry of a scene object's ``colour_index`` under palette weights.

    The generator draws ``colour_index`` uniformly (16 bits); ``frac(index × golden ratio)`` maps it
    to a uniform number in [0, 1) (and spreads consecutive indices, e.g. reconstructions' 0, 1, 2,
    ... over the palette), which the weights' cumulative distribution turns into an entry.
    """
    u = (int(colour_index) * 0.6180339887498949) % 1.0
    total = float(sum(weights))
    acc = 0.0
    for i, w in enumerate(weights):
        acc += float(w)
        if u * total < acc:
            return i
    return len(weights) - 1


class ShapeLibrary:
    """Templates of an environment's classes and the cached per-appearance shape sets."""

    def __init__(self, env: EnvironmentConfig, *, cache_size: int = 64):
        self.env = env
        self.templates = {n: template_for(p) for n, p in env.classes.items()}
        self._shape_sets: dict = {}  # id(appearance) -> (appearance, {class: [(variant, prior, template)]})
        self._class_priors: dict = {}  # (class, parts, part colours) -> per-appearance ClassPrior copy
        self._cache_size = cache_size

    def shapes(self, app: AppearanceConfig) -> dict:
        """``{class: [(ShapeVariant or None, ClassPrior, template), ...]}`` of an appearance: the
        environment's priors, or per-appearance copies whose parts (and part colours) come from the
        appearance's ``class_parts`` / ``part_colours``. Built once per appearance (and cached)."""
        hit = self._shape_sets.get(id(app))
        if hit is not None and hit[0] is app:
            return hit[1]
        sets = {}
        for name, prior in self.env.classes.items():
            variants = app.class_parts.get(name)
            if not variants:
                sets[name] = [(None, prior, self.templates[name])]
                continue
            pc = {**prior.part_colours, **app.part_colours.get(name, {})}
            entries = []
            for v in variants:
                key = (name, v.parts, tuple(sorted(pc.items())))
                p2 = self._class_priors.get(key)
                if p2 is None:
                    p2 = self._class_priors[key] = replace(prior, parts=v.parts, part_colours=pc)
                entries.append((v, p2, with_level_of_detail(template_for(p2))))
            sets[name] = entries
        if len(self._shape_sets) > self._cache_size:
            self._shape_sets.clear()
        self._shape_sets[id(app)] = (app, sets)
        return sets

    @staticmethod
    def pick(entries: list, obj):
        """The first shape variant whose size ranges contain the object's size (else the last)."""
        if len(entries) == 1:
            return entries[0]
        for e in entries:
            if e[0].matches(obj.size):
                return e
        return entries[-1]

    def object_colours(self, prior: ClassPrior, obj, app: AppearanceConfig, rng) -> dict:
        """Body and part colours of one object; draws from ``rng`` only for random or jittered colours."""
        palette = app.palettes.get(prior.name) or prior.palette
        if app.random_colours:
            cols = {"body": rng.integers(0, 256, 3).astype(float)}
            for k in prior.part_colours:
                cols[k] = rng.integers(0, 256, 3).astype(float)
            return cols
        weights = app.palette_weights.get(prior.name)
        index = (
            obj.colour_index % len(palette) if weights is None else weighted_palette_index(obj.colour_index, weights)
        )
        over = app.part_colours.get(prior.name, {})
        if prior is not self.env.classes.get(prior.name):
            # per-appearance (street) shapes: all part colours as one array, jitter in two draws
            arr = np.array([palette[index]] + [over.get(k, c) for k, c in prior.part_colours.items()], float)
            if app.object_colour_jitter > 0:
                sig = app.object_colour_jitter
                arr = np.clip(
                    arr + rng.normal(0.0, sig, (len(arr), 1)) + rng.normal(0.0, sig / 3.0, (len(arr), 3)), 0, 255
                )
            return dict(zip(("body",) + tuple(prior.part_colours), arr))
        cols = {"body": np.asarray(palette[index], float)}
        for k, c in prior.part_colours.items():
            cols[k] = np.asarray(over.get(k, c), float)
        if app.object_colour_jitter > 0:
            for k in cols:
                cols[k] = np.clip(cols[k] + jitter_colour(rng, app.object_colour_jitter), 0, 255)
        return cols
