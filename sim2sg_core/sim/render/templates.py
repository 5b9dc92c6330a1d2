"""Shape templates: a class's primitives as unit-size vertices and faces, built once per class prior,
with level-of-detail data for the per-appearance (street) shapes drawn in one batch per scene."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from sim2sg_core.geometry import Camera
from sim2sg_core.sim.domains import DECALS, ClassPrior
from sim2sg_core.sim.render.raster import NEAR, project_sphere


@dataclass
class ShapeTemplate:
    """Unit-size geometry of a class: x = length, y = up (negative), z = width; bottom at y = 0."""

    verts: np.ndarray  # (N, 3)
    faces: list  # list of index arrays
    face_part: np.ndarray  # (F,)
    first3: np.ndarray  # (F, 3) indices for the normal
    face_mean: np.ndarray  # (F, N) averaging matrix → face centroids
    part_mean: np.ndarray  # (P, N) averaging matrix → part centroids
    spheres: list  # (part index, centre (3,), radius fraction of height)
    draw: list  # ("face", f) / ("sphere", s) in drawing order
    part_specs: tuple
    fixed: Optional[np.ndarray] = None  # (F,) faces whose vertex order already gives the outward normal
    # level of detail (per-appearance street shapes only): faces under ``min_area`` px² are skipped
    min_area: float = 0.0
    area_ratio: Optional[np.ndarray] = None  # (F,) half of face area / first-triangle area (template)
    pad: Optional[np.ndarray] = None  # (F, K) face vertex indices padded by repeating each face's last one
    hull_idx: Optional[np.ndarray] = None  # vertices that outline the solid parts (shadows)
    lod_pts: Optional[np.ndarray] = None  # (N + F, 3) vertices, then face centroids
    n0: Optional[np.ndarray] = None  # (F, 3) outward face normals in the unit template
    part_colour_names: tuple = ()
    part_shades: Optional[np.ndarray] = None


def _polygon_ring(n: int, rx: float, rz: float, y: float, dx: float) -> np.ndarray:
    """``n`` points of a horizontal ellipse at height ``y`` (the sides of prisms, cones, frusta)."""
    a = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    return np.stack([dx + rx * np.cos(a), np.full(n, y), rz * np.sin(a)], axis=1)


def _decal_vertices(p, y0: float, y1: float) -> np.ndarray:
    """Vertices of a one-sided flat part, ordered so that (b - a) x (c - a) points outwards."""
    if p.shape == "wheel":  # upright disc across the width at dz, facing away from the centre plane
        a = np.linspace(0.0, 2 * np.pi, p.sides, endpoint=False)
        v = np.stack(
            [p.dx + 0.5 * p.l * np.cos(a), 0.5 * (y0 + y1) + 0.5 * (y1 - y0) * np.sin(a), np.full(p.sides, p.dz)],
            axis=1,
        )
        out = np.array([0.0, 0.0, 1.0 if p.dz >= 0 else -1.0])
    else:  # panel: rectangle across the length at dx, facing away from the middle (front / back)
        hw = 0.5 * p.w
        v = np.array([[p.dx, y0, p.dz - hw], [p.dx, y0, p.dz + hw], [p.dx, y1, p.dz + hw], [p.dx, y1, p.dz - hw]])
        out = np.array([1.0 if p.dx >= 0 else -1.0, 0.0, 0.0])
    if np.cross(v[1] - v[0], v[2] - v[0]) @ out < 0:
        v = v[::-1].copy()
    return v


def build_template(prior: ClassPrior) -> ShapeTemplate:
    """Unit-size vertices and faces of a class's parts (uncached: :func:`template_for` caches)."""
    verts: list[np.ndarray] = []
    faces: list[np.ndarray] = []
    face_part: list[int] = []
    fixed: list[bool] = []
    spheres = []
    draw = []
    part_ranges = []
    count = 0
    for pi, p in enumerate(prior.parts):
        y0, y1 = -p.y[0], -p.y[1]  # up is negative y
        hl, hw = 0.5 * p.l, 0.5 * p.w
        if p.shape == "sphere":
            r = 0.5 * (p.y[1] - p.y[0])
            spheres.append((pi, np.array([p.dx, 0.5 * (y0 + y1), p.dz]), r))
            draw.append(("sphere", len(spheres) - 1))
            part_ranges.append((count, count))
            continue
        one_sided = False
        if p.shape == "cuboid":
            v = np.array([[x, y, z] for y in (y0, y1) for x in (p.dx - hl, p.dx + hl) for z in (-hw, hw)])
            # index = 4*top + 2*xi + zi
            fl = [[0, 1, 3, 2], [4, 5, 7, 6], [0, 1, 5, 4], [2, 3, 7, 6], [0, 2, 6, 4], [1, 3, 7, 5]]
            if not p.caps:
                fl = fl[2:]
        elif p.shape == "cabin":
            # a cuboid whose top face is shorter (top), narrower (top_w) and shifted (top_dx)
            tl, tw, tx = hl * p.top, hw * p.top_w, p.dx + p.top_dx
            v = np.array(
                [[x, y0, z] for x in (p.dx - hl, p.dx + hl) for z in (-hw, hw)]
                + [[x, y1, z] for x in (tx - tl, tx + tl) for z in (-tw, tw)]
            )
            fl = [[0, 1, 3, 2], [4, 5, 7, 6], [0, 1, 5, 4], [2, 3, 7, 6], [0, 2, 6, 4], [1, 3, 7, 5]]
            if not p.caps:
                fl = fl[2:]
        elif p.shape in DECALS:
            v = _decal_vertices(p, y0, y1)
            fl = [list(range(len(v)))]
            one_sided = True
        elif p.shape == "roof":
            v = np.array(
                [
                    [p.dx - hl, y0, -hw],
                    [p.dx + hl, y0, -hw],
                    [p.dx + hl, y0, hw],
                    [p.dx - hl, y0, hw],
                    [p.dx - hl, y1, 0.0],
                    [p.dx + hl, y1, 0.0],
                ]
            )
            fl = [[0, 1, 2, 3], [0, 1, 5, 4], [3, 2, 5, 4], [0, 3, 4], [1, 2, 5]]
        else:  # cylinder, cone, frustum
            n = p.sides
            top = 0.0 if p.shape == "cone" else (1.0 if p.shape == "cylinder" else p.top)
            bottom = _polygon_ring(n, hl, hw, y0, p.dx)
            if top > 1e-6:
                v = np.vstack([bottom, _polygon_ring(n, hl * top, hw * top, y1, p.dx)])
                fl = [[i, (i + 1) % n, n + (i + 1) % n, n + i] for i in range(n)]
                if p.caps:
                    fl.append(list(range(n, 2 * n)))
            else:
                v = np.vstack([bottom, [[p.dx, y1, 0.0]]])
                fl = [[i, (i + 1) % n, n] for i in range(n)]
            if p.caps:
                fl.append(list(range(n)))
        if p.dz != 0.0 and not one_sided:
            v = v + np.array([0.0, 0.0, p.dz])
        start = count
        for face in fl:
            faces.append(np.asarray(face) + start)
            face_part.append(pi)
            fixed.append(one_sided)
            draw.append(("face", len(faces) - 1))
        verts.append(v)
        count += len(v)
        part_ranges.append((start, count))
    V = np.vstack(verts) if verts else np.zeros((0, 3))
    F = len(faces)
    face_mean = np.zeros((F, len(V)))
    for i, f in enumerate(faces):
        face_mean[i, f] = 1.0 / len(f)
    part_mean = np.zeros((len(prior.parts), len(V)))
    for pi, (a, b) in enumerate(part_ranges):
        if b > a:
            part_mean[pi, a:b] = 1.0 / (b - a)
    first3 = np.array([f[:3] for f in faces], dtype=np.int64).reshape(F, 3)
    return ShapeTemplate(
        verts=V,
        faces=faces,
        face_part=np.asarray(face_part, dtype=np.int64),
        first3=first3,
        face_mean=face_mean,
        part_mean=part_mean,
        spheres=spheres,
        draw=draw,
        part_specs=prior.parts,
        fixed=np.asarray(fixed, bool) if any(fixed) else None,
    )


_TEMPLATE_CACHE: dict = {}

#: per-appearance (street) shapes skip faces smaller than this on screen (px²): distant cars keep
#: their body and lose sub-pixel plates, rims and lights, which keeps many-car scenes fast
LOD_MIN_AREA = 1.5


def with_level_of_detail(tmpl: ShapeTemplate) -> ShapeTemplate:
    """Add level-of-detail data to a (per-appearance) template, once."""
    kinds = [kind for kind, _ in tmpl.draw]
    if "sphere" in kinds and "face" in kinds[kinds.index("sphere") :]:
        return tmpl  # a face drawn after a sphere: keep the general path's interleaved order
    if tmpl.lod_pts is None and tmpl.faces:
        V = tmpl.verts
        ratio = []
        for f, (i0, i1, i2) in zip(tmpl.faces, tmpl.first3):
            p = V[f]
            face = 0.5 * np.linalg.norm(sum(np.cross(p[j] - p[0], p[j + 1] - p[0]) for j in range(1, len(f) - 1)))
            tri = 0.5 * np.linalg.norm(np.cross(V[i1] - V[i0], V[i2] - V[i0]))
            ratio.append(0.5 * face / tri if tri > 1e-12 else 0.0)
        tmpl.area_ratio = np.asarray(ratio)
        k = max(len(f) for f in tmpl.faces)
        tmpl.pad = np.array([list(f) + [f[-1]] * (k - len(f)) for f in tmpl.faces], dtype=np.int64)
        solid = [i for i, p in enumerate(tmpl.part_specs) if p.shape not in DECALS + ("sphere",) and p.caps]
        idx = np.flatnonzero(tmpl.part_mean[solid].sum(axis=0) > 0) if solid else np.arange(len(tmpl.verts))
        tmpl.hull_idx = idx if len(idx) else None
        # outward normals once: the orientation test is invariant under positive scaling and rotation
        fc = tmpl.face_mean @ V
        a, b, c = V[tmpl.first3[:, 0]], V[tmpl.first3[:, 1]], V[tmpl.first3[:, 2]]
        n = np.cross(b - a, c - a)
        flip = np.einsum("ij,ij->i", n, fc - (tmpl.part_mean @ V)[tmpl.face_part]) < 0
        if tmpl.fixed is not None:
            flip &= ~tmpl.fixed
        n[flip] *= -1
        tmpl.n0 = n
        tmpl.lod_pts = np.vstack([V, fc])
        tmpl.part_colour_names = tuple(p.colour for p in tmpl.part_specs)
        tmpl.part_shades = np.array([p.shade for p in tmpl.part_specs], float)[:, None]
        tmpl.min_area = LOD_MIN_AREA
    return tmpl


def template_for(prior: ClassPrior) -> ShapeTemplate:
    """Cached unit-size geometry of a class prior."""
    hit = _TEMPLATE_CACHE.get(id(prior))
    if hit is None or hit[0] is not prior:
        hit = (prior, build_template(prior))
        _TEMPLATE_CACHE[id(prior)] = hit
    return hit[1]


def object_geometry(tmpl: ShapeTemplate, obj) -> tuple[np.ndarray, list]:
    """World (level-frame) vertices (N, 3) and spheres ``(part, centre, radius)`` of one object."""
    H, W, L = obj.size
    c, s = math.cos(obj.yaw), math.sin(obj.yaw)
    v = tmpl.verts * np.array([L, H, W])
    px, py, pz = obj.position
    world = np.empty_like(v)
    world[:, 0] = c * v[:, 0] + s * v[:, 2] + px
    world[:, 1] = v[:, 1] + py
    world[:, 2] = -s * v[:, 0] + c * v[:, 2] + pz
    sph = []
    for pi, cen, r in tmpl.spheres:
        cv = cen * np.array([L, H, W])
        sph.append((pi, np.array([c * cv[0] + s * cv[2] + px, cv[1] + py, -s * cv[0] + c * cv[2] + pz]), r * H))
    return world, sph


def projected_extent(prior: ClassPrior, obj, cam: Camera) -> Optional[tuple[float, float, float, float]]:
    """Unclipped image extent (x0, y0, x1, y1) of an object drawn alone; None if behind the camera."""
    world, spheres = object_geometry(template_for(prior), obj)
    us, vs = [], []
    if len(world):
        uv, z = cam.project(world)
        if (z < NEAR).any():
            return None
        us.append(uv[:, 0])
        vs.append(uv[:, 1])
    for _, centre, r in spheres:
        outline = project_sphere(cam, centre, r)
        if outline is None:
            return None
        u, v, rp = outline
        us.append(np.array([u - rp, u + rp]))
        vs.append(np.array([v - rp, v + rp]))
    uu, vv = np.concatenate(us), np.concatenate(vs)
    return float(uu.min()), float(vv.min()), float(uu.max()), float(vv.max())
