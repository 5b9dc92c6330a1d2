"""Reconstruction: a (predicted) scene graph on a target image → a scene description, plus the
pseudo-statistics of a whole target set and the re-fit of the generator's content distributions.

This is the synthesis half of Sim2SG's label alignment: rendering the reconstructed scene in
*source* appearance gives a synthetic image whose labels match the reconstruction exactly, and
re-fitting the content prior moves the generator's statistics towards the target's.

Lifting one box: the box's bottom-centre pixel is back-projected onto the flat ground; the object
gets its class prior shape, the graph's yaw (when non-zero) or the class's typical yaw, a
vertical scale (from the box height) and a horizontal scale (from the box width, within
``ASPECT_LIMITS`` of the vertical one). Position and scales are refined by a few fixed-point steps
so that the object's projected extent (the renderer's own geometry) matches the box's horizontal
centre, bottom edge, height and width; the reported scale is the vertical one. A box cut by the
bottom image border fixes the depth poorly; it keeps the prior scale and is placed from its bottom
edge (nearer than the truth, documented limitation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Optional

import numpy as np

from sim2sg_core.geometry import Camera
from sim2sg_core.scene_graph import SceneGraph
from sim2sg_core.sim.domains import ContentConfig, EnvironmentConfig, Gaussian, Lateral, load_domain, load_environment
from sim2sg_core.sim.render import RASTER_PAD, projected_extent
from sim2sg_core.sim.scene import ObjectSpec, SceneDescription, vec3

SCALE_LIMITS = (0.4, 2.5)
ASPECT_LIMITS = (0.6, 1.6)  # horizontal / vertical scale of a lifted object
FIT_STEPS = 6


_YAW_CACHE: dict = {}


def default_yaws(env: EnvironmentConfig) -> dict[str, float]:
    """Typical yaw per class from the environment's ``source`` content (0 when unavailable)."""
    key = (env.name, env.source_path, id(env))
    hit = _YAW_CACHE.get(key)
    if hit is not None and hit[0] is env:
        return hit[1]
    try:
        content = load_domain(env, "source").content
        yaws = {n: c.yaw.mean for n, c in content.classes.items()}
    except Exception:  # noqa: BLE001 - environments without a source domain
        yaws = {n: 0.0 for n in env.classes}
    _YAW_CACHE[key] = (env, yaws)
    return yaws


def lift_box(
    box, class_name: str, camera: Camera, env: EnvironmentConfig, yaw: float = 0.0, steps: int = FIT_STEPS
) -> Optional[ObjectSpec]:
    """One 2-D box → an :class:`ObjectSpec` standing on the ground, or None if it cannot be lifted
    (bottom edge at or above the horizon)."""
    prior = env.prior(class_name)
    x0, y0, x1, y1 = (float(v) for v in box)
    bottom_cut = y1 >= camera.height - 0.5
    side_cut = x0 <= 0.5 or x1 >= camera.width - 0.5
    if x1 - x0 > 2 * RASTER_PAD + 1 and y1 - y0 > 2 * RASTER_PAD + 1:
        x0, y0, x1, y1 = x0 + RASTER_PAD, y0 + RASTER_PAD, x1 - RASTER_PAD, y1 - RASTER_PAD
    uc = 0.5 * (x0 + x1)
    g = camera.backproject_to_ground(uc, y1)
    if not np.all(np.isfinite(g)) or g[2] <= 0.3:
        return None
    scale, hscale = 1.0, 1.0  # vertical and horizontal size multipliers
    obj = ObjectSpec(
        class_name=class_name,
        position=(float(g[0]), camera.height_m, float(g[2])),
        size=vec3(prior.size),
        yaw=float(yaw),
    )
    # push the centre back by half the footprint's depth along the viewing ray
    r = np.array([g[0], g[2]]) / (math.hypot(g[0], g[2]) + 1e-9)
    a = np.array([math.cos(yaw), -math.sin(yaw)])
    depth_ext = prior.size[2] * abs(a @ r) + prior.size[1] * abs(a[1] * r[0] - a[0] * r[1])
    pos = np.array([g[0], g[2]]) + r * depth_ext / 2
    obj = replace(obj, position=(float(pos[0]), camera.height_m, float(pos[1])))
    for _ in range(steps):
        ext = projected_extent(prior, obj, camera)
        if ext is None:
            return None
        ex0, ey0, ex1, ey1 = ext
        if not bottom_cut and (ey1 - ey0) > 1e-6:
            scale = float(np.clip(scale * (y1 - y0) / (ey1 - ey0), *SCALE_LIMITS))
            if side_cut or (ex1 - ex0) <= 1e-6:
                hscale = scale
            else:
                hscale = float(
                    np.clip(hscale * (x1 - x0) / (ex1 - ex0), scale * ASPECT_LIMITS[0], scale * ASPECT_LIMITS[1])
                )
            h, w, length = prior.size
            obj = replace(obj, size=(float(h * scale), float(w * hscale), float(length * hscale)))
            ext = projected_extent(prior, obj, camera)
            if ext is None:
                return None
            ex0, ey0, ex1, ey1 = ext
        cur = camera.backproject_to_ground(0.5 * (ex0 + ex1), min(ey1, camera.height * 4))
        tgt = camera.backproject_to_ground(uc, y1)
        if not (np.all(np.isfinite(cur)) and np.all(np.isfinite(tgt))):
            break
        p = np.array(obj.position) + np.array([tgt[0] - cur[0], 0.0, tgt[2] - cur[2]])
        if p[2] <= 0.3:
            return None
        obj = replace(obj, position=(float(p[0]), camera.height_m, float(p[2])))
    return obj


def reconstruct_scene(
    graph: SceneGraph,
    camera: Camera,
    env,
    score_threshold: float = 0.5,
    yaws: Optional[dict[str, float]] = None,
    seed: int = 0,
) -> SceneDescription:
    """Lift every object with ``score >= score_threshold`` to the ground (see module docstring).

    ``yaws`` gives the yaw per class for objects whose graph yaw is 0 (predictions); by default
    the environment's source-domain yaw means. Objects that cannot be lifted are skipped.
    """
    env = load_environment(env)
    yaws = yaws if yaws is not None else default_yaws(env)
    objs = []
    for i, o in enumerate(graph.objects):
        if o.score < score_threshold or o.class_name not in env.classes:
            continue
        yaw = o.yaw if o.yaw else yaws.get(o.class_name, 0.0)
        spec = lift_box(o.box, o.class_name, camera, env, yaw=yaw)
        if spec is not None:
            spec.colour_index = i
            objs.append(spec)
    return SceneDescription(camera=camera, objects=objs, seed=int(seed), env=env.name)


@dataclass
class PseudoStatistics:
    """Content statistics of a target set, measured from (predicted) scene graphs.

    ``counts[c]`` is the per-image count list of class c, ``positions[c]`` the lifted ground
    (x, z) positions, ``scales[c]`` the lifted size multipliers; ``camera`` the camera used.
    """

    n_images: int = 0
    counts: dict = field(default_factory=dict)
    positions: dict = field(default_factory=dict)
    scales: dict = field(default_factory=dict)
    camera_height: float = 0.0
    camera_pitch: float = 0.0

    @classmethod
    def collect(
        cls,
        graphs: Iterable[SceneGraph],
        camera: Camera,
        env,
        score_threshold: float = 0.5,
        yaws: Optional[dict[str, float]] = None,
    ) -> "PseudoStatistics":
        env = load_environment(env)
        yaws = yaws if yaws is not None else default_yaws(env)
        st = cls(
            counts={c: [] for c in env.classes},
            positions={c: [] for c in env.classes},
            scales={c: [] for c in env.classes},
            camera_height=camera.height_m,
            camera_pitch=camera.pitch,
        )
        for g in graphs:
            st.n_images += 1
            scene = reconstruct_scene(g, camera, env, score_threshold, yaws=yaws)
            per = {c: 0 for c in env.classes}
            for o in scene.objects:
                per[o.class_name] += 1
                st.positions[o.class_name].append((o.position[0], o.position[2]))
                st.scales[o.class_name].append(o.size[0] / env.prior(o.class_name).size[0])
            for c in env.classes:
                st.counts[c].append(per[c])
        return st

    def summary(self) -> dict:
        out: dict[str, Any] = {
            "n_images": self.n_images,
            "camera_height": self.camera_height,
            "camera_pitch": self.camera_pitch,
            "classes": {},
        }
        for c in self.counts:
            pos = np.asarray(self.positions[c]).reshape(-1, 2)
            sc = np.asarray(self.scales[c])
            out["classes"][c] = {
                "count_mean": float(np.mean(self.counts[c])) if self.counts[c] else 0.0,
                "n_objects": int(len(pos)),
                "depth_mean": float(pos[:, 1].mean()) if len(pos) else None,
                "depth_std": float(pos[:, 1].std()) if len(pos) else None,
                "x_mean": float(pos[:, 0].mean()) if len(pos) else None,
                "scale_mean": float(sc.mean()) if len(sc) else None,
            }
        return out


def _blend(old: float, new: float, w: float) -> float:
    return float((1.0 - w) * old + w * new)


def _refit_gaussian(g: Gaussian, values: np.ndarray, blend: float, min_std: float) -> Gaussian:
    """``g`` moved part-way (``blend``) to the observed values' mean (clipped to its range) and spread (at
    least ``min_std``); its range is kept."""
    return Gaussian(
        mean=_blend(g.mean, float(np.clip(values.mean(), g.min, g.max)), blend),
        std=_blend(g.std, max(float(values.std()), min_std), blend),
        min=g.min,
        max=g.max,
    )


def refit_content(
    content: ContentConfig,
    stats: PseudoStatistics,
    *,
    blend: float = 1.0,
    min_objects: int = 5,
    visibility: Optional[dict[str, float]] = None,
    refit_camera: bool = True,
) -> ContentConfig:
    """Re-fit the named content distributions to the pseudo-statistics.

    Per class: Poisson count mean (observed mean count / ``visibility[c]``, the fraction of
    generated objects that end up labelled, 1 by default), depth mean/std, lateral mixture (each
    observation assigned to its nearest mode; mode means, weights and pooled std re-estimated),
    scale mean/std. Classes with fewer than ``min_objects`` lifted objects keep their depth,
    lateral and scale. The camera height/pitch means become those of the reconstruction camera.
    Yaw is not observable from 2-D boxes and is kept. ``blend`` in (0, 1] moves part-way.
    """
    if not 0.0 < blend <= 1.0:
        raise ValueError(f"blend must be in (0, 1], got {blend}")
    if stats.n_images == 0:
        raise ValueError("pseudo-statistics hold no images; collect them from at least one scene graph")
    visibility = visibility or {}
    classes = {}
    for name, cc in content.classes.items():
        counts = stats.counts.get(name, [])
        obs_count = float(np.mean(counts)) / max(visibility.get(name, 1.0), 1e-3) if counts else cc.count_mean
        new = replace(cc, count_mean=_blend(cc.count_mean, obs_count, blend))
        pos = np.asarray(stats.positions.get(name, []), dtype=float).reshape(-1, 2)
        if len(pos) >= min_objects:
            new = replace(new, depth=_refit_gaussian(cc.depth, pos[:, 1], blend, min_std=0.5))
            modes = np.asarray(cc.lateral.modes, dtype=float)
            assign = np.argmin(np.abs(pos[:, 0:1] - modes[None, :]), axis=1)
            new_modes, weights, resid = [], [], []
            for m in range(len(modes)):
                xs = pos[assign == m, 0]
                if len(xs):
                    new_modes.append(_blend(modes[m], float(xs.mean()), blend))
                    resid.append(xs - xs.mean())
                else:
                    new_modes.append(float(modes[m]))
                weights.append(len(xs))
            old_w = np.asarray(cc.lateral.weights or [1.0] * len(modes), float)
            old_w = old_w / old_w.sum()
            obs_w = (np.asarray(weights, float) + 0.5) / (np.sum(weights) + 0.5 * len(weights))
            std = float(np.concatenate(resid).std()) if resid else cc.lateral.std
            new = replace(
                new,
                lateral=Lateral(
                    modes=tuple(new_modes),
                    weights=tuple(float(_blend(a, b, blend)) for a, b in zip(old_w, obs_w)),
                    std=_blend(cc.lateral.std, max(std, 0.1), blend),
                ),
            )
            sc = np.asarray(stats.scales.get(name, []), dtype=float)
            new = replace(new, scale=_refit_gaussian(cc.scale, sc, blend, min_std=0.01))
        classes[name] = new
    camera = content.camera
    if refit_camera:
        h, p = camera.height, camera.pitch
        camera = replace(
            camera,
            height=Gaussian(
                _blend(h.mean, stats.camera_height, blend),
                h.std * (1 - blend),
                min(h.min, stats.camera_height),
                max(h.max, stats.camera_height),
            ),
            pitch=Gaussian(
                _blend(p.mean, stats.camera_pitch, blend),
                p.std * (1 - blend),
                min(p.min, stats.camera_pitch),
                max(p.max, stats.camera_pitch),
            ),
        )
    return replace(content, classes=classes, camera=camera)


def visibility_ratios(simulator, n: int = 100, start: int = 0) -> dict[str, float]:
    """Per class: labelled objects / generated objects over ``n`` samples of ``simulator``
    (use it as ``refit_content(..., visibility=...)`` to turn labelled counts into Poisson means)."""
    gen = {c: 0 for c in simulator.env.classes}
    lab = {c: 0 for c in simulator.env.classes}
    for i in range(start, start + n):
        s = simulator.sample(i)
        for o in s.scene.objects:
            gen[o.class_name] += 1
        for o in s.graph.objects:
            lab[o.class_name] += 1
    return {c: (lab[c] / gen[c]) if gen[c] else 1.0 for c in gen}


__all__ = ["PseudoStatistics", "default_yaws", "lift_box", "reconstruct_scene", "refit_content", "visibility_ratios"]
