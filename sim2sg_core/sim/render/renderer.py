"""The renderer: one scene + appearance → image, instance-id map and exact labels, by running the
stages of this package in order (look, street plan and shadows, background, facades, objects,
bonnet, labels, sensor). The order of the random draws is part of the output: each stage draws from
the stream it always used, so images stay the same for a given seed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np

from sim2sg_core.scene_graph import SceneGraph
from sim2sg_core.sim.domains import AppearanceConfig, EnvironmentConfig
from sim2sg_core.sim.render.background import Background, class_texture_strength
from sim2sg_core.sim.render.labels import label_scene, unoverlapped_objects
from sim2sg_core.sim.render.look import draw_look, draw_uniform
from sim2sg_core.sim.render.objects import batch_street_shapes, draw_object, object_shadows, objects_in_shadow
from sim2sg_core.sim.render.sensor import Sensor
from sim2sg_core.sim.render.shapes import ShapeLibrary
from sim2sg_core.sim.render.street import draw_facade_shadows, draw_facades, draw_hood, plan_facades
from sim2sg_core.sim.scene import SceneDescription


@dataclass
class RenderResult:
    image: np.ndarray  # RGB uint8 H×W×3
    instance_map: np.ndarray  # uint16 H×W: 0 background, k+1 = scene object k
    graph: SceneGraph  # labels (objects passing the filter), relationships by the rule
    label_index: list = field(default_factory=list)  # graph object i ↔ scene object label_index[i]
    visible_pixels: dict = field(default_factory=dict)  # scene object index → visible pixel count
    occlusion: dict = field(default_factory=dict)  # scene object index → occluded fraction


class Renderer:
    """Draws scenes of one environment. Caches shape templates, background layouts and noise banks."""

    def __init__(self, env: EnvironmentConfig, *, cache_size: int = 64):
        self.env = env
        self.shape_library = ShapeLibrary(env, cache_size=cache_size)
        self.background = Background(env, cache_size=cache_size)
        self.sensor = Sensor()

    def shapes(self, app: AppearanceConfig) -> dict:
        """``{class: [(ShapeVariant or None, ClassPrior, template), ...]}`` of an appearance (cached)."""
        return self.shape_library.shapes(app)

    def _check(self, scene: SceneDescription) -> None:
        """Reject a scene of another environment or with unknown classes / bad sizes, naming the object."""
        if scene.env and scene.env != self.env.name:
            raise ValueError(f"scene belongs to environment {scene.env!r}; this renderer draws {self.env.name!r}")
        classes = self.shape_library.templates
        for k, o in enumerate(scene.objects):
            if o.class_name not in classes:
                raise ValueError(
                    f"scene object {k} has class {o.class_name!r}, not one of environment "
                    f"{self.env.name!r}: {list(classes)}"
                )
            if len(o.size) != 3 or min(o.size) <= 0:
                raise ValueError(f"scene object {k} ({o.class_name}) has a bad size {o.size!r}; need 3 values > 0")

    def render(self, scene: SceneDescription, appearance: AppearanceConfig) -> RenderResult:
        self._check(scene)
        cam = scene.camera
        W, H = cam.width, cam.height
        seed = int(scene.seed) & 0xFFFFFFFF
        if appearance.variants:  # one weighted variant per image (own stream: the draws below stay aligned)
            variant_rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
            w = np.array([v[0] for v in appearance.variants], float)
            appearance = appearance.variants[int(variant_rng.choice(len(w), p=w / w.sum()))][1]
        rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
        look = draw_look(appearance, rng)
        ids = np.zeros((H, W), np.uint16)
        street = (
            appearance.facades is not None
            or appearance.hood is not None
            or bool(appearance.region_texture)
            or bool(appearance.class_texture)
        )
        # street looks draw from their own stream, so the older domains' draws are untouched
        street_rng = np.random.default_rng(np.random.SeedSequence([seed, 13])) if street else None

        objs = scene.objects
        shapes = self.shape_library.shapes(appearance)
        picked = [ShapeLibrary.pick(shapes[o.class_name], o) for o in objs]
        colours = [self.shape_library.object_colours(picked[k][1], o, appearance, rng) for k, o in enumerate(objs)]
        # painter's order: distance of each object's centre from the camera, far first
        dist = [math.hypot(o.position[0], o.position[1] - o.size[0] / 2, o.position[2]) for o in objs]
        order = sorted(range(len(objs)), key=lambda k: -dist[k])

        tmpls = [e[2] for e in picked]
        plan = None
        if appearance.facades is not None:
            assert street_rng is not None  # facades make a street look
            plan = plan_facades(cam, appearance, street_rng)
        shadow_mask: Optional[np.ndarray] = None
        shaded: frozenset[int] = frozenset()
        if (
            look.shadows > 0
            and plan is not None
            and plan.sides
            and appearance.facades is not None
            and appearance.facades.shadows
        ):
            # buildings' shadows on the street; objects standing in them get no direct sunlight
            shadow_mask = np.zeros((H, W), np.uint8)
            draw_facade_shadows(shadow_mask, cam, look, plan)
            shaded = objects_in_shadow(objs, cam, shadow_mask)
        if look.shadows > 0 and objs:
            shadow_mask = object_shadows(scene, look, tmpls, shadow_mask)
        img = self.background.image(cam, look, appearance, shadow_mask)
        textured = bool(appearance.region_texture or appearance.class_texture)
        strength = self.background.texture_strength(cam, appearance, street_rng) if textured else None
        if plan is not None:
            assert street_rng is not None
            facade_texture = appearance.region_texture.get("facade")
            draw_facades(
                img,
                cam,
                look,
                appearance,
                plan,
                strength=strength if facade_texture is not None else None,
                facade_strength=0.0 if facade_texture is None else draw_uniform(street_rng, facade_texture),
            )

        ops_per_obj: dict[int, list] = {}
        extents: dict[int, tuple[float, float, float, float]] = {}
        batch = (
            {}
            if all(t.lod_pts is None for t in tmpls)
            else batch_street_shapes(objs, tmpls, colours, cam, look, appearance, shaded)
        )
        look_shaded = replace(look, diffuse=0.0) if shaded else look
        for k in order:
            ops, ext = draw_object(
                img,
                ids,
                k,
                objs[k],
                colours[k],
                cam,
                look_shaded if k in shaded else look,
                appearance,
                tmpls[k],
                batch.get(k),
            )
            ops_per_obj[k] = ops
            extents[k] = ext
        hood = False
        if appearance.hood is not None:
            assert street_rng is not None  # a bonnet makes a street look
            hood = draw_hood(img, ids, appearance.hood, look, street_rng)

        # objects that nothing drawn later can overlap keep every pixel they drew (occlusion 0)
        clear = frozenset() if hood else frozenset(unoverlapped_objects(order, extents))
        graph, label_index, visible, occl = label_scene(self.env, scene, ids, ops_per_obj, extents, clear)
        texture_map = (
            class_texture_strength(strength, ids, objs, appearance, street_rng) if strength is not None else None
        )
        img = self.sensor.apply(img, look, appearance, rng, texture_map)
        return RenderResult(
            image=img, instance_map=ids, graph=graph, label_index=label_index, visible_pixels=visible, occlusion=occl
        )
