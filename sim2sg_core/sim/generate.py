"""Content generation: the named distributions of a :class:`ContentConfig` → a scene description.

Every draw comes from the ``numpy.random.Generator`` passed in, so a scene is a pure function of
its seed. Objects are placed one by one; a placement is retried (up to ``MAX_TRIES``) when its
footprint overlaps an earlier object or its centre falls outside the horizontal field of view,
and dropped after that, so the generated counts follow the Poisson means up to crowding.
Camera height and pitch are drawn on a 1 cm / 1 mrad grid so rendered backgrounds can be cached.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from sim2sg_core.geometry import Camera
from sim2sg_core.sim.domains import ContentConfig, EnvironmentConfig, Gaussian
from sim2sg_core.sim.scene import ObjectSpec, SceneDescription, vec3

MAX_TRIES = 12


def sample_gaussian(rng: np.random.Generator, g: Gaussian) -> float:
    """One draw of a truncated normal (rejection; the clipped mean as a last resort)."""
    if g.std <= 0:
        return float(min(max(g.mean, g.min), g.max))
    for _ in range(16):
        v = rng.normal(g.mean, g.std)
        if g.min <= v <= g.max:
            return float(v)
    lo = g.min if math.isfinite(g.min) else g.mean - 3 * g.std
    hi = g.max if math.isfinite(g.max) else g.mean + 3 * g.std
    return float(rng.uniform(lo, hi))


def base_camera(env: EnvironmentConfig, image_size: Optional[tuple[int, int]] = None) -> Camera:
    w, h = image_size or env.image_size
    return Camera.from_fov(int(w), int(h), env.hfov_deg)


def footprint(x: float, z: float, width: float, length: float, yaw: float) -> np.ndarray:
    """Ground rectangle (4, 2) of an object: length along (cos yaw, -sin yaw), width across."""
    c, s = math.cos(yaw), math.sin(yaw)
    ax, az = c * length / 2, -s * length / 2  # (the same float operations as the vector form)
    bx, bz = s * width / 2, c * width / 2
    return np.array(
        [[x + ax + bx, z + az + bz], [x + ax - bx, z + az - bz], [x - ax - bx, z - az - bz], [x - ax + bx, z - az + bz]]
    )


def rectangles_overlap(p: np.ndarray, q: np.ndarray) -> bool:
    """Separating-axis test for two convex quadrilaterals (4, 2)."""
    for poly in (p, q):
        for i in range(2):
            edge = poly[i + 1] - poly[i]
            axis = np.array([-edge[1], edge[0]])
            pp, qq = p @ axis, q @ axis
            if pp.max() < qq.min() or qq.max() < pp.min():
                return False
    return True


class SceneGenerator:
    """Samples :class:`SceneDescription` objects from an environment and a content config."""

    def __init__(self, *, env: EnvironmentConfig, content: ContentConfig, camera: Camera):
        self.env = env
        self.content = content
        self.camera = camera

    def sample_camera(self, rng: np.random.Generator) -> Camera:
        h = round(sample_gaussian(rng, self.content.camera.height), 2)
        p = round(sample_gaussian(rng, self.content.camera.pitch), 3)
        return self.camera.with_pose(max(h, 0.05), p)

    def generate(self, rng: np.random.Generator) -> SceneDescription:
        camera = self.sample_camera(rng)
        names = list(self.env.classes)
        counts = [int(rng.poisson(max(self.content.classes[n].count_mean, 0.0))) for n in names]
        caps = [self.content.classes[n].max_count for n in names]
        counts = [c if cap is None else min(c, cap) for c, cap in zip(counts, caps)]
        order = [n for n, c in zip(names, counts) for _ in range(c)]
        rng.shuffle(order)
        order = order[: self.content.max_objects]
        placed: list[ObjectSpec] = []
        footprints: list[tuple] = []  # (rectangle, x, z, bounding radius), inflated by min_separation / 2
        for name in order:
            obj = self._place(rng, name, camera, footprints)
            if obj is not None:
                placed.append(obj)
                sep = self.content.min_separation
                footprints.append(
                    (
                        footprint(obj.position[0], obj.position[2], obj.size[1] + sep, obj.size[2] + sep, obj.yaw),
                        obj.position[0],
                        obj.position[2],
                        0.5 * math.hypot(obj.size[1] + sep, obj.size[2] + sep),
                    )
                )
        seed = int(rng.integers(0, 2**31 - 1))
        return SceneDescription(camera=camera, objects=placed, seed=seed, env=self.env.name)

    def _place(self, rng, name, camera, footprints) -> Optional[ObjectSpec]:
        cc = self.content.classes[name]
        prior = self.env.prior(name)
        lat = cc.lateral
        cum = np.cumsum(np.asarray(lat.weights or [1.0] * len(lat.modes), dtype=float))
        cum = cum / cum[-1]
        if cc.sizes is not None:
            size_cum = np.cumsum(np.asarray(cc.sizes.weights or [1.0] * len(cc.sizes.modes), dtype=float))
            size_cum = size_cum / size_cum[-1]
        c_p, s_p = math.cos(camera.pitch), math.sin(camera.pitch)
        for _ in range(MAX_TRIES):
            z = sample_gaussian(rng, cc.depth)
            mi = min(int(np.searchsorted(cum, rng.random(), side="right")), len(cum) - 1)
            mode = lat.modes[mi]
            std = lat.stds[mi] if lat.stds else lat.std
            x = float(mode + rng.normal(0.0, std)) if std > 0 else float(mode)
            scale = sample_gaussian(rng, cc.scale)
            base = prior.size
            if cc.sizes is not None:  # a sub-type (sedan, hatchback, SUV, ...) of the class
                si = min(int(np.searchsorted(size_cum, rng.random(), side="right")), len(size_cum) - 1)
                base = cc.sizes.modes[si]
            jitter = 1.0 + prior.size_jitter * rng.standard_normal(3)
            size = vec3(s * scale * max(j, 0.5) for s, j in zip(base, jitter))
            yaw = sample_gaussian(rng, cc.yaw)
            if cc.yaw_flip > 0 and rng.random() < cc.yaw_flip:
                yaw += math.pi
            if cc.flip_left_of is not None and x < cc.flip_left_of:
                yaw += math.pi  # right-hand traffic: the oncoming side faces the camera
            yaw = (yaw + math.pi) % (2 * math.pi) - math.pi
            colour_index = int(rng.integers(0, 1 << 16))
            if z < 0.5:
                continue
            sep = self.content.min_separation
            fp = footprint(x, z, size[1] + sep, size[2] + sep, yaw)
            r = 0.5 * math.hypot(size[1] + sep, size[2] + sep)
            # bounding circles first (cheap), the exact rectangle test only when they meet
            if any(
                math.hypot(x - ox, z - oz) < r + orad and rectangles_overlap(fp, ofp)
                for ofp, ox, oz, orad in footprints
            ):
                continue
            # centre of the object's middle must be inside the image horizontally (truncation <~ 0.5)
            y_mid = camera.height_m - size[0] / 2
            zc = s_p * y_mid + c_p * z
            if zc <= 0.1 or not (0.0 <= camera.fx * x / zc + camera.cx < camera.width):
                continue
            return ObjectSpec(
                class_name=name, position=(x, camera.height_m, z), size=size, yaw=yaw, colour_index=colour_index
            )
        return None


__all__ = ["SceneGenerator", "base_camera", "sample_gaussian", "MAX_TRIES"]
