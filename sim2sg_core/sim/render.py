"""Rendering: scene description + appearance → RGB image, instance-id map and exact labels.

Objects are shaded 3-D primitives (cuboids, prisms/cylinders, cones, frusta, gable roofs, spheres)
projected with the pinhole camera and filled with OpenCV polygon fills, back to front (painter's
algorithm, by distance of the object's centre); inside an object, back faces are culled and the
parts are drawn in their listed order. Every fill is repeated with the object's id into an
instance-id map, so a label's 2-D box is *exactly* the extent of the object's visible pixels
(pixel-edge convention: ``x_max = last column + 1``).

An object is labelled only when it passes the environment's :class:`LabelFilter` (visible box at
least ``min_box_height`` × ``min_box_width`` pixels, ``min_visible_pixels`` visible pixels and
occlusion at most ``max_occlusion``); others are still drawn (they occlude) but carry no label: their
visible box becomes one of the graph's ``ignore_regions`` (evaluation only).
Occlusion = 1 − visible pixels / pixels the object would cover alone (inside the image);
truncation = 1 − area of the projected 3-D extent inside the image / its whole area.

The background (sky gradient, ground zones such as road, sidewalks, lane dashes, table top) is a
per-pixel region/distance label map cached per camera, coloured per image through a lookup table.
The sensor stage (texture, vignette, colour cast, exposure, gamma, blur, noise, JPEG) uses
precomputed noise banks cropped at random offsets so it stays cheap.

Street looks (options only some domains set; without them nothing below runs and images are as
before): per-appearance class shapes (``class_parts``: cached per-appearance ``ClassPrior`` copies
with one-sided ``wheel``/``panel`` decals and sloped ``cabin`` prisms, chosen per object by size),
weighted palettes, a domain's own ground zones (filled as projected polygons), facades with
window grids and a skyline (unlabelled background, casting building shadows), per-region/class
texture, an ego bonnet, hue/saturation and weighted per-image ``variants``. Street shapes are
drawn through one batched computation per scene (:meth:`Renderer._lod_batch`), which gives the
general path's pixels but skips faces under ``LOD_MIN_AREA`` px².
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Optional

import cv2
import numpy as np

from sim2sg_core.geometry import Camera
from sim2sg_core.scene_graph import IgnoreRegion, SceneGraph, SceneObject, derive_relationships
from sim2sg_core.sim.domains import DECALS, AppearanceConfig, ClassPrior, EnvironmentConfig, GroundLayout
from sim2sg_core.sim.scene import SceneDescription, vec3

SHIFT = 4  # sub-pixel bits for OpenCV fills
SCALE = float(1 << SHIFT)
NEAR = 0.2  # near clipping plane (m)
#: OpenCV fills are inclusive of the polygon outline, so a raster box is the projected extent grown
#: by about half a pixel on every side (measured mean 0.5 px); reconstruction undoes it.
RASTER_PAD = 0.5
LEVELS = 16  # distance / gradient levels per background region
MAX_REGIONS = 8  # sky, ground, up to 6 zones → labels < 128
SHADOW_BIT = 128  # layout label bit: ground in shadow


# ----------------------------------------------------------------------------------------------
# Shape templates


@dataclass
class _Template:
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


def _ring(n: int, rx: float, rz: float, y: float, dx: float) -> np.ndarray:
    a = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    return np.stack([dx + rx * np.cos(a), np.full(n, y), rz * np.sin(a)], axis=1)


def _decal(p, y0: float, y1: float) -> np.ndarray:
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


def _build_template(prior: ClassPrior) -> _Template:
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
            v = _decal(p, y0, y1)
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
            bottom = _ring(n, hl, hw, y0, p.dx)
            if top > 1e-6:
                v = np.vstack([bottom, _ring(n, hl * top, hw * top, y1, p.dx)])
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
    return _Template(
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


def _with_lod(tmpl: _Template) -> _Template:
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


def template_for(prior: ClassPrior) -> _Template:
    """Cached unit-size geometry of a class prior."""
    hit = _TEMPLATE_CACHE.get(id(prior))
    if hit is None or hit[0] is not prior:
        hit = (prior, _build_template(prior))
        _TEMPLATE_CACHE[id(prior)] = hit
    return hit[1]


def object_geometry(tmpl: _Template, obj) -> tuple[np.ndarray, list]:
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
        cc = cam.to_camera(centre[None])[0]
        if cc[2] < NEAR + r:
            return None
        u = cam.fx * cc[0] / cc[2] + cam.cx
        v = cam.fy * cc[1] / cc[2] + cam.cy
        rp = cam.fx * r / math.sqrt(max(cc[2] ** 2 - r**2, 1e-6))
        us.append(np.array([u - rp, u + rp]))
        vs.append(np.array([v - rp, v + rp]))
    uu, vv = np.concatenate(us), np.concatenate(vs)
    return float(uu.min()), float(vv.min()), float(uu.max()), float(vv.max())


# ----------------------------------------------------------------------------------------------
# Appearance draws (per image)


@dataclass
class _Look:
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


def _u(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(r[0]) if r[0] == r[1] else float(rng.uniform(r[0], r[1]))


def _jitter(rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Colour jitter: mostly brightness (shared by the channels), a little hue (per channel)."""
    return rng.normal(0.0, sigma) + rng.normal(0.0, sigma / 3.0, 3)


def _draw_look(app: AppearanceConfig, rng: np.random.Generator) -> _Look:
    colours = {}
    for name, c in sorted(app.colours.items()):
        if app.random_colours:
            colours[name] = rng.integers(0, 256, 3).astype(np.float64)
        elif app.colour_jitter > 0:
            colours[name] = np.clip(np.asarray(c, float) + _jitter(rng, app.colour_jitter), 0, 255)
        else:
            colours[name] = np.asarray(c, float)
    az = math.radians(_u(rng, app.sun_azimuth))
    el = math.radians(_u(rng, app.sun_elevation))
    to_sun = np.array([math.cos(el) * math.sin(az), -math.sin(el), math.cos(el) * math.cos(az)])
    cast = np.asarray(app.colour_cast, float)
    if app.cast_jitter > 0:
        cast = cast * np.exp(rng.normal(0, app.cast_jitter, 3))
    q = app.jpeg_quality
    if q is not None and app.jpeg_probability < 1.0 and rng.random() >= app.jpeg_probability:
        q = None
    return _Look(
        colours=colours,
        to_sun=to_sun,
        sun_azimuth=az,
        sun_elevation=el,
        ambient=_u(rng, app.ambient),
        diffuse=_u(rng, app.diffuse),
        shadows=_u(rng, app.shadows),
        fade_distance=max(_u(rng, app.fade_distance), 1e-3),
        fade_colour=colours[app.fade_colour],
        texture=_u(rng, app.texture),
        cast=cast,
        exposure=_u(rng, app.exposure),
        gamma=_u(rng, app.gamma),
        blur=_u(rng, app.blur_sigma),
        noise=_u(rng, app.noise_std),
        jpeg=None if q is None else int(round(_u(rng, q))),
    )


def _uv(pc: np.ndarray, cam: Camera) -> np.ndarray:
    """Camera-frame points (..., 3) → pixel coordinates (..., 2)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.stack([cam.fx * pc[..., 0] / pc[..., 2] + cam.cx, cam.fy * pc[..., 1] / pc[..., 2] + cam.cy], -1)


def _fixed(uv: np.ndarray) -> np.ndarray:
    """Pixel coordinates → OpenCV fixed-point polygon points (SHIFT bits)."""
    return np.round((uv - 0.5) * SCALE).astype(np.int32)


def _unoverlapped(order: list, extents: dict, margin: float = 2.0) -> set:
    """Objects (indices) whose extent no object drawn after them (later in ``order``) reaches."""
    out = set()
    for i, k in enumerate(order):
        a = extents.get(k)
        if a is None:
            continue
        for j in order[i + 1 :]:
            b = extents.get(j)
            if (
                b is not None
                and b[0] - margin < a[2] + margin
                and a[0] - margin < b[2] + margin
                and b[1] - margin < a[3] + margin
                and a[1] - margin < b[3] + margin
            ):
                break
        else:
            out.add(k)
    return out


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


def _hue_saturation(img: np.ndarray, hue_deg: float, sat: float) -> np.ndarray:
    """Rotate hue about the grey axis by ``hue_deg`` and scale saturation by ``sat`` (one 3×3 colour
    matrix, so it costs one pass)."""
    g = np.full((3, 3), 1.0 / 3.0)
    a = math.radians(hue_deg)
    k = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]]) / math.sqrt(3.0)  # cross-product matrix of the grey axis
    rot = np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * (k @ k)
    m = g + sat * (rot - g)
    return cv2.transform(img, m.astype(np.float32))  # saturates to uint8


# ----------------------------------------------------------------------------------------------
# Near-plane clipping (rare: only objects reaching behind the camera's near plane)


def _clip_near(poly_cam: np.ndarray) -> np.ndarray:
    out = []
    n = len(poly_cam)
    for i in range(n):
        a, b = poly_cam[i], poly_cam[(i + 1) % n]
        ina, inb = a[2] >= NEAR, b[2] >= NEAR
        if ina:
            out.append(a)
        if ina != inb:
            t = (NEAR - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.asarray(out) if out else np.zeros((0, 3))


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
        self._templates = {n: template_for(p) for n, p in env.classes.items()}
        self._shape_sets: dict = {}  # id(appearance) -> (appearance, {class: [(variant, prior, template)]})
        self._class_priors: dict = {}  # (class, parts, part colours) -> per-appearance ClassPrior copy
        self._layouts: OrderedDict = OrderedDict()
        self._backgrounds: OrderedDict = OrderedDict()
        self._banks: dict = {}
        self._cache_size = cache_size
        if len(env.zones) + 2 > MAX_REGIONS:
            raise ValueError(
                f"{env.source_path}: at most {MAX_REGIONS - 2} ground zones are supported, got {len(env.zones)}"
            )
        zmin, zmax = 1.0, max(env.max_ground_distance, 2.0)
        self._level_z = np.geomspace(zmin, zmax, LEVELS - 1)  # distance of each ground level

    # -- background -----------------------------------------------------------------------------
    def _layout(self, cam: Camera, ground: Optional[GroundLayout] = None) -> np.ndarray:
        """Per-pixel ``region * LEVELS + level`` (uint8 < 128): region 0 sky, 1 ground, 2+i zone i.

        Built row by row: on a flat ground every image row is one forward distance, and a zone's
        lateral range maps to one column interval per row. ``ground`` (a domain's own layout)
        replaces the environment's zones.
        """
        key: tuple = (
            cam.width,
            cam.height,
            round(cam.fx, 6),
            round(cam.fy, 6),
            round(cam.cx, 6),
            round(cam.cy, 6),
            round(cam.height_m, 4),
            round(cam.pitch, 5),
        )
        if ground is not None:
            key = key + (ground,)
        zones = self.env.zones if ground is None else ground.zones
        hit = self._layouts.get(key)
        if hit is not None:
            self._layouts.move_to_end(key)
            return hit
        W, H = cam.width, cam.height
        v = np.arange(H, dtype=np.float64) + 0.5
        c, s = math.cos(cam.pitch), math.sin(cam.pitch)
        dcy = (v - cam.cy) / cam.fy
        dy = c * dcy + s
        dz = -s * dcy + c
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(dy > 1e-9, cam.height_m / dy, np.inf)
            zrow = t * dz
        ground_row = np.isfinite(zrow) & (zrow < self.env.max_ground_distance) & (zrow > 0)
        level_row = np.searchsorted(self._level_z, np.where(ground_row, zrow, np.inf)).astype(np.uint8)
        if ground is not None:
            layout = self._street_layout(cam, zones, v, ground_row, level_row)
            self._layouts[key] = layout
            if len(self._layouts) > self._cache_size:
                self._layouts.popitem(last=False)
            return layout
        region = np.zeros((H, W), np.uint8)
        region[ground_row] = 1
        cols = np.arange(W, dtype=np.float64) + 0.5
        rows = np.flatnonzero(ground_row)
        if len(rows):
            tr, zr = t[rows], zrow[rows]
            for i, zone in enumerate(zones):
                lo = cam.cx + cam.fx * zone.x[0] / tr
                hi = cam.cx + cam.fx * zone.x[1] / tr
                ok = (zr >= zone.z[0]) & (zr < zone.z[1])
                if zone.dash is not None:
                    ok &= np.mod(zr, zone.dash[0] + zone.dash[1]) < zone.dash[0]
                m = (cols[None, :] >= lo[:, None]) & (cols[None, :] < hi[:, None]) & ok[:, None]
                sub = region[rows]
                sub[m] = 2 + i
                region[rows] = sub
        level = np.broadcast_to(level_row[:, None], (H, W)).copy()
        if self.env.sky:
            hv = cam.horizon_v
            frac = np.clip((hv - v) / max(hv, 1.0), 0.0, 1.0)
            sky_row = ~ground_row
            level[sky_row] = np.round(frac[sky_row] * (LEVELS - 1)).astype(np.uint8)[:, None]
            region[sky_row] = 0
        else:
            region[~ground_row] = 1
            level[~ground_row] = LEVELS - 1
        layout = (region * LEVELS + level).astype(np.uint8)
        self._layouts[key] = layout
        if len(self._layouts) > self._cache_size:
            self._layouts.popitem(last=False)
        return layout

    def _street_layout(self, cam: Camera, zones, v, ground_row, level_row) -> np.ndarray:
        """:meth:`_layout` for a domain's own ground: the zones are filled as projected ground
        polygons and the per-row levels added in one broadcast (a camera pose that changes every
        image, as with pose jitter, costs little)."""
        H, W = cam.height, cam.width
        region = np.zeros((H, W), np.uint8)
        region[ground_row] = 1
        self._fill_zones(region, cam, zones)
        region[~ground_row] = 0
        level = level_row.copy()
        if self.env.sky:
            hv = cam.horizon_v
            frac = np.clip((hv - v) / max(hv, 1.0), 0.0, 1.0)
            level[~ground_row] = np.round(frac[~ground_row] * (LEVELS - 1)).astype(np.uint8)
        else:
            region[~ground_row] = 1
            level[~ground_row] = LEVELS - 1
        region *= LEVELS
        region += level[:, None]
        return region

    def _fill_zones(self, region: np.ndarray, cam: Camera, zones) -> None:
        """Paint ground zones (later ones win) as polygons on the ground plane, clipped at the near
        plane and the ground's far distance; dashed zones are one quad per dash. All quads are
        projected at once."""
        far = self.env.max_ground_distance
        quads, owner = [], []
        for i, zone in enumerate(zones):
            x0, x1 = max(zone.x[0], -1e4), min(zone.x[1], 1e4)
            z0, z1 = max(zone.z[0], NEAR), min(zone.z[1], far)
            if x1 <= x0 or z1 <= z0:
                continue
            if zone.dash is None:
                ab = np.array([[z0, z1]])
            else:
                on, period = zone.dash[0], zone.dash[0] + zone.dash[1]
                starts = np.arange(math.floor(z0 / period) * period, z1, period)
                lo_, hi_ = np.maximum(starts, z0), np.minimum(starts + on, z1)
                ab = np.stack([lo_, hi_], 1)[hi_ > lo_]
            q = np.empty((len(ab), 4, 3))
            q[:, :, 1] = cam.height_m
            q[:, 0, 0] = q[:, 3, 0] = x0
            q[:, 1, 0] = q[:, 2, 0] = x1
            q[:, 0, 2] = q[:, 1, 2] = ab[:, 0]
            q[:, 2, 2] = q[:, 3, 2] = ab[:, 1]
            quads.append(q)
            owner += [i] * len(ab)
        if not quads:
            return
        pc = cam.to_camera(np.concatenate(quads).reshape(-1, 3)).reshape(-1, 4, 3)
        ok = np.asarray((pc[..., 2] >= NEAR).all(axis=1))
        pix = _fixed(np.where(ok[:, None, None], _uv(pc, cam), 0.0))
        owners = np.asarray(owner)
        for i in range(len(zones)):
            sel = owners == i
            polys = list(pix[sel & ok])
            for j in np.flatnonzero(sel & ~ok).tolist():
                quad = _clip_near(pc[j])
                if len(quad) >= 3:
                    polys.append(_fixed(_uv(quad, cam)))
            if polys:
                cv2.fillPoly(region, polys, 2 + i, cv2.LINE_8, SHIFT)

    def _region_names(self, app: AppearanceConfig) -> list:
        """Colour names of layout regions 1, 2, ... (ground, zones)."""
        if app.ground is not None:
            return [app.ground.colour] + [z.colour for z in app.ground.zones]
        return [self.env.ground_colour] + [z.colour for z in self.env.zones]

    def _lut(self, look: _Look, shadow: float, app: Optional[AppearanceConfig] = None) -> np.ndarray:
        """(256, 1, 3) colour table for layout labels; labels with the shadow bit are darkened."""
        lut = np.zeros((256, 3), np.float64)
        alpha_ground = 1.0 - np.exp(-self._level_z / look.fade_distance)
        alpha = np.concatenate([alpha_ground, [1.0]])[:, None]  # (LEVELS, 1)
        names = (
            self._region_names(app)
            if app is not None
            else [self.env.ground_colour] + [z.colour for z in self.env.zones]
        )
        for r, name in enumerate(names, start=1):
            lut[r * LEVELS : (r + 1) * LEVELS] = look.colours[name] * (1 - alpha) + look.fade_colour * alpha
        if self.env.sky:
            k = np.linspace(0.0, 1.0, LEVELS)[:, None]
            lut[0:LEVELS] = look.colours["sky_horizon"] * (1 - k) + look.colours["sky_top"] * k
        lut[SHADOW_BIT:] = lut[:SHADOW_BIT] * (1.0 - shadow)
        return np.clip(np.round(lut), 0, 255).astype(np.uint8).reshape(256, 1, 3)

    def _background(
        self, cam: Camera, look: _Look, app: AppearanceConfig, shadow_mask: Optional[np.ndarray] = None
    ) -> np.ndarray:
        fixed = (
            not app.random_colours
            and app.colour_jitter == 0
            and app.fade_distance[0] == app.fade_distance[1]
            and shadow_mask is None
        )
        key = (id(app), cam.width, cam.height, cam.fx, cam.fy, cam.cx, cam.cy, cam.height_m, cam.pitch)
        if fixed:
            hit = self._backgrounds.get(key)
            if hit is not None and hit[0] is app:
                return hit[1].copy()
        layout = self._layout(cam, app.ground)
        if shadow_mask is not None:
            layout = cv2.bitwise_or(layout, shadow_mask)
        img = cv2.LUT(cv2.merge([layout, layout, layout]), self._lut(look, look.shadows, app))
        if fixed:
            self._backgrounds[key] = (app, img.copy())
            if len(self._backgrounds) > self._cache_size:
                self._backgrounds.popitem(last=False)
        return img

    # -- noise banks ----------------------------------------------------------------------------
    def _bank(self, kind: str, W: int, H: int, scale: float = 6.0) -> np.ndarray:
        key = (kind, W, H, scale)
        bank = self._banks.get(key)
        if bank is None:
            rng = np.random.default_rng({"tex": 11, "noise": 13}[kind])  # fixed banks: deterministic output
            if kind == "tex":
                coarse = rng.standard_normal((2 * H, 2 * W)).astype(np.float32)
                blob = cv2.GaussianBlur(coarse, (0, 0), scale)
                fine = cv2.GaussianBlur(rng.standard_normal((2 * H, 2 * W)).astype(np.float32), (0, 0), 0.8)
                t = blob / (blob.std() + 1e-6) + 0.5 * fine / (fine.std() + 1e-6)
                bank = (t / t.std()).astype(np.float32)
            else:
                bank = rng.standard_normal((2 * H, 2 * W, 3)).astype(np.float32)
            self._banks[key] = bank
        return bank

    # -- objects: per-appearance class shapes -----------------------------------------------------
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
                sets[name] = [(None, prior, self._templates[name])]
                continue
            pc = {**prior.part_colours, **app.part_colours.get(name, {})}
            entries = []
            for v in variants:
                key = (name, v.parts, tuple(sorted(pc.items())))
                p2 = self._class_priors.get(key)
                if p2 is None:
                    p2 = self._class_priors[key] = replace(prior, parts=v.parts, part_colours=pc)
                entries.append((v, p2, _with_lod(template_for(p2))))
            sets[name] = entries
        if len(self._shape_sets) > self._cache_size:
            self._shape_sets.clear()
        self._shape_sets[id(app)] = (app, sets)
        return sets

    @staticmethod
    def _pick_shape(entries: list, obj):
        """The first shape variant whose size ranges contain the object's size (else the last)."""
        if len(entries) == 1:
            return entries[0]
        for e in entries:
            if e[0].matches(obj.size):
                return e
        return entries[-1]

    def _object_colours(self, prior: ClassPrior, obj, app: AppearanceConfig, rng) -> dict:
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
                cols[k] = np.clip(cols[k] + _jitter(rng, app.object_colour_jitter), 0, 255)
        return cols

    def render(self, scene: SceneDescription, appearance: AppearanceConfig) -> RenderResult:
        if scene.env and scene.env != self.env.name:
            raise ValueError(f"scene belongs to environment {scene.env!r}; this renderer draws {self.env.name!r}")
        for k, o in enumerate(scene.objects):
            if o.class_name not in self._templates:
                raise ValueError(
                    f"scene object {k} has class {o.class_name!r}, not one of environment "
                    f"{self.env.name!r}: {list(self._templates)}"
                )
            if len(o.size) != 3 or min(o.size) <= 0:
                raise ValueError(f"scene object {k} ({o.class_name}) has a bad size {o.size!r}; need 3 values > 0")
        cam = scene.camera
        W, H = cam.width, cam.height
        seed = int(scene.seed) & 0xFFFFFFFF
        if appearance.variants:  # one weighted variant per image (own stream: the draws below stay aligned)
            vr = np.random.default_rng(np.random.SeedSequence([seed, 11]))
            w = np.array([v[0] for v in appearance.variants], float)
            appearance = appearance.variants[int(vr.choice(len(w), p=w / w.sum()))][1]
        rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
        look = _draw_look(appearance, rng)
        ids = np.zeros((H, W), np.uint16)
        street = (
            appearance.facades is not None
            or appearance.hood is not None
            or bool(appearance.region_texture)
            or bool(appearance.class_texture)
        )
        srng = np.random.default_rng(np.random.SeedSequence([seed, 13])) if street else None

        objs = scene.objects
        shapes = self.shapes(appearance)
        picked = [self._pick_shape(shapes[o.class_name], o) for o in objs]
        colours = [self._object_colours(picked[k][1], o, appearance, rng) for k, o in enumerate(objs)]
        # painter's order: distance of each object's centre from the camera, far first
        dist = [math.hypot(o.position[0], o.position[1] - o.size[0] / 2, o.position[2]) for o in objs]
        order = sorted(range(len(objs)), key=lambda k: -dist[k])

        tmpls = [e[2] for e in picked]
        plan = self._plan_facades(cam, appearance, srng) if appearance.facades is not None else None
        shadow_mask: Optional[np.ndarray] = None
        shaded: frozenset[int] = frozenset()
        if (
            look.shadows > 0
            and plan is not None
            and plan["sides"]
            and appearance.facades is not None
            and appearance.facades.shadows
        ):
            # buildings' shadows on the street; objects standing in them get no direct sunlight
            shadow_mask = np.zeros((H, W), np.uint8)
            self._facade_shadows(shadow_mask, cam, look, plan)
            shaded = self._in_shadow(objs, cam, shadow_mask)
        if look.shadows > 0 and objs:
            shadow_mask = self._shadow_mask(scene, look, tmpls, shadow_mask)
        img = self._background(cam, look, appearance, shadow_mask)
        textured = bool(appearance.region_texture or appearance.class_texture)
        strength = self._ground_strength(cam, appearance, srng) if textured else None
        if plan is not None:
            assert srng is not None  # facades make a street look, which has its own generator
            fs = appearance.region_texture.get("facade")
            self._draw_facades(
                img,
                cam,
                look,
                appearance,
                plan,
                strength=strength if fs is not None else None,
                facade_strength=0.0 if fs is None else _u(srng, fs),
            )

        ops_per_obj: dict[int, list] = {}
        extents: dict[int, tuple[float, float, float, float]] = {}
        batch = (
            {}
            if all(t.lod_pts is None for t in tmpls)
            else self._lod_batch(objs, tmpls, colours, cam, look, appearance, shaded)
        )
        look_shaded = replace(look, diffuse=0.0) if shaded else look
        for k in order:
            ops, ext = self._draw_object(
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
        hood = appearance.hood is not None and self._draw_hood(img, ids, appearance.hood, look, srng)

        # objects that nothing drawn later can overlap keep every pixel they drew (occlusion 0)
        clear = frozenset() if hood else frozenset(_unoverlapped(order, extents))
        graph, label_index, visible, occl = self._labels(scene, ids, ops_per_obj, extents, clear)
        tex = self._class_strength(strength, ids, objs, appearance, srng) if strength is not None else None
        img = self._sensor(img, look, appearance, rng, tex)
        return RenderResult(
            image=img, instance_map=ids, graph=graph, label_index=label_index, visible_pixels=visible, occlusion=occl
        )

    @staticmethod
    def _in_shadow(objs, cam: Camera, mask: np.ndarray) -> frozenset:
        """Objects whose bottom centre lies in a shadow of ``mask`` (off-image: not shadowed)."""
        out = set()
        if not objs:
            return frozenset()
        uv, z = cam.project(np.array([o.position for o in objs], float))
        for k, ((u, v), zk) in enumerate(zip(uv.tolist(), z.tolist())):
            if zk > NEAR and 0 <= u < cam.width and 0 <= v < cam.height and mask[int(v), int(u)]:
                out.add(k)
        return frozenset(out)

    def _shadow_mask(
        self, scene: SceneDescription, look: _Look, tmpls: Optional[list] = None, mask: Optional[np.ndarray] = None
    ) -> np.ndarray:
        """Ground shadows (uint8 mask with SHADOW_BIT): per object the convex hull of its vertices
        projected onto the ground along the sun direction (exact for convex shapes)."""
        cam = scene.camera
        if mask is None:
            mask = np.zeros((cam.height, cam.width), np.uint8)
        tan_el = max(math.tan(look.sun_elevation), 0.15)
        away = -np.array([look.to_sun[0], look.to_sun[2]])
        away = away / (np.linalg.norm(away) + 1e-9)
        ring = np.stack(
            [
                np.cos(np.linspace(0, 2 * np.pi, 8, endpoint=False)),
                np.sin(np.linspace(0, 2 * np.pi, 8, endpoint=False)),
            ],
            1,
        )
        if tmpls is not None and all(t.lod_pts is not None for t in tmpls):
            return self._shadow_mask_lod(scene, tmpls, mask, tan_el, away, ring)
        for k, o in enumerate(scene.objects):
            tmpl = self._templates[o.class_name] if tmpls is None else tmpls[k]
            world, spheres = object_geometry(tmpl, o)
            if tmpl.hull_idx is not None:
                world = world[tmpl.hull_idx]
            pts = [world[:, [0, 2]] + np.outer(cam.height_m - world[:, 1], away) / tan_el] if len(world) else []
            for _, centre, r in spheres:
                c2 = centre[[0, 2]] + away * (cam.height_m - centre[1]) / tan_el
                pts.append(c2 + r * ring)
            if not pts:
                continue
            p2 = np.vstack(pts)
            p3 = np.stack([p2[:, 0], np.full(len(p2), cam.height_m), p2[:, 1]], axis=1)
            uv, z = cam.project(p3)
            if (z < NEAR).any():
                continue
            hull = cv2.convexHull(np.round((uv - 0.5) * SCALE).astype(np.int32))
            cv2.fillConvexPoly(mask, hull, SHADOW_BIT, cv2.LINE_8, SHIFT)
        return mask

    @staticmethod
    def _shadow_mask_lod(scene: SceneDescription, tmpls: list, mask, tan_el, away, ring) -> np.ndarray:
        """:meth:`_shadow_mask` for street shapes: the solid parts' outline vertices (and sphere
        rings) of every object are transformed and projected in one batch."""
        cam = scene.camera
        objs = scene.objects
        if not objs:
            return mask
        hull = [t.verts if t.hull_idx is None else t.verts[t.hull_idx] for t in tmpls]
        nv = np.array([len(v) for v in hull])
        owner = np.repeat(np.arange(len(objs)), nv)
        size = np.array([o.size for o in objs], float)
        pos = np.array([o.position for o in objs], float)
        yaw = np.array([o.yaw for o in objs], float)
        c, s = np.cos(yaw)[owner], np.sin(yaw)[owner]
        v = np.concatenate(hull) * size[owner][:, [2, 0, 1]]  # template axes: length, height, width
        up = -v[:, 1]  # height above the ground
        x = c * v[:, 0] + s * v[:, 2] + pos[owner, 0] + up * away[0] / tan_el
        z = -s * v[:, 0] + c * v[:, 2] + pos[owner, 2] + up * away[1] / tan_el
        chunks = np.split(np.stack([x, z], 1), np.cumsum(nv)[:-1])
        for k, (o, t) in enumerate(zip(objs, tmpls)):
            if t.spheres:  # sphere parts: their shadow is a disc (ring of 8 points)
                h, w, length = o.size
                ck, sk = math.cos(o.yaw), math.sin(o.yaw)
                px, _, pz = o.position
                extra = []
                for _, cen, r in t.spheres:
                    cx, cy, cz = cen[0] * length, -cen[1] * h, cen[2] * w
                    c2 = np.array([ck * cx + sk * cz + px, -sk * cx + ck * cz + pz]) + away * cy / tan_el
                    extra.append(c2 + r * h * ring)
                chunks[k] = np.vstack([chunks[k]] + extra)
        counts = [len(ch) for ch in chunks]
        p2 = np.vstack(chunks)
        uv, z = cam.project(np.stack([p2[:, 0], np.full(len(p2), cam.height_m), p2[:, 1]], axis=1))
        pix = _fixed(uv)
        start = 0
        for n in counts:
            if (z[start : start + n] >= NEAR).all():
                cv2.fillConvexPoly(mask, cv2.convexHull(pix[start : start + n]), SHADOW_BIT, cv2.LINE_8, SHIFT)
            start += n
        return mask

    @staticmethod
    def _draw_sphere(
        img,
        ids,
        k,
        tmpl,
        sphere,
        cols,
        cam: Camera,
        look: _Look,
        app: AppearanceConfig,
        fade: float,
        ops: list,
        us: list,
        vs: list,
    ) -> None:
        """One sphere part: a disc in the part colour with a lit cap towards the sun."""
        pi, centre, r = sphere
        fade_col = look.fade_colour
        cc = cam.to_camera(centre[None])[0]
        if cc[2] < NEAR + r:
            return
        u = cam.fx * cc[0] / cc[2] + cam.cx
        v = cam.fy * cc[1] / cc[2] + cam.cy
        rp = cam.fx * r / math.sqrt(max(cc[2] ** 2 - r**2, 1e-6))
        part = tmpl.part_specs[pi]
        base = cols[part.colour] * part.shade
        centre_px = (int(round((u - 0.5) * SCALE)), int(round((v - 0.5) * SCALE)))
        rad = max(int(round(rp * SCALE)), 1)
        shade = look.ambient + 0.5 * look.diffuse
        col = base * shade * (1 - fade) + fade_col * fade
        cv2.circle(img, centre_px, rad, tuple(float(x) for x in np.clip(col, 0, 255)), -1, cv2.LINE_8, SHIFT)
        # lit cap towards the sun (appearance only; the id map has the whole disc)
        d = np.array([look.to_sun[0], look.to_sun[1]])
        hl = (int(round(centre_px[0] + 0.35 * rad * d[0])), int(round(centre_px[1] + 0.35 * rad * d[1])))
        lit = base * (look.ambient + look.diffuse) + 255 * app.specular * 0.5
        lit = lit * (1 - fade) + fade_col * fade
        cv2.circle(
            img, hl, max(int(rad * 0.55), 1), tuple(float(x) for x in np.clip(lit, 0, 255)), -1, cv2.LINE_8, SHIFT
        )
        cv2.circle(ids, centre_px, rad, k + 1, -1, cv2.LINE_8, SHIFT)
        ops.append(("circle", centre_px, rad))
        us.append(np.array([u - rp, u + rp]))
        vs.append(np.array([v - rp, v + rp]))

    def _lod_batch(
        self,
        objs,
        tmpls: list,
        colours: list,
        cam: Camera,
        look: _Look,
        app: AppearanceConfig,
        shaded: frozenset = frozenset(),
    ) -> dict:
        """Street shapes (templates with level-of-detail data) of a whole scene at once: the same
        geometry, back-face culling, shading and fade as :meth:`_draw_object`, with precomputed
        template normals, in one set of array operations for all objects; faces under
        ``min_area`` px² on screen are dropped; objects in ``shaded`` (in a building's shadow) get
        no direct light. Returns ``k -> (pts (F, K, 2), face colours, visible faces, extent, fade)``;
        objects reaching the near plane are left out (the general path clips)."""
        ks = [k for k, t in enumerate(tmpls) if t.lod_pts is not None]
        if not ks:
            return {}
        ts_ = [tmpls[k] for k in ks]
        npts = np.array([len(t.lod_pts) for t in ts_])
        nver = np.array([len(t.verts) for t in ts_])
        nfac = np.array([len(t.faces) for t in ts_])
        size = np.array([objs[k].size for k in ks], float)  # (n, 3) h, w, l
        pos = np.array([objs[k].position for k in ks], float)
        yaw = np.array([objs[k].yaw for k in ks], float)
        c, s = np.cos(yaw), np.sin(yaw)
        cp, sp = math.cos(cam.pitch), math.sin(cam.pitch)
        z0, o1 = np.zeros_like(c), np.ones_like(c)
        # level frame = yaw rotation of the scaled template + position; camera frame = pitch rotation
        rot = np.stack(
            [np.stack([c, z0, s], 1), np.stack([sp * s, cp * o1, -sp * c], 1), np.stack([-cp * s, sp * o1, cp * c], 1)],
            1,
        )  # (n, 3, 3)
        scale = size[:, [2, 0, 1]]  # template axes: length, height, width
        t = np.stack([pos[:, 0], cp * pos[:, 1] - sp * pos[:, 2], sp * pos[:, 1] + cp * pos[:, 2]], 1)
        owner = np.repeat(np.arange(len(ks)), npts)
        P = np.concatenate([t_.lod_pts for t_ in ts_]) * scale[owner]
        R_ = rot[owner]
        pcam = np.einsum("mij,mj->mi", R_, P) + t[owner]
        start = np.concatenate([[0], np.cumsum(npts)[:-1]])
        fidx = np.concatenate([np.arange(a + nv, a + n_) for a, nv, n_ in zip(start, nver, npts)])
        with np.errstate(divide="ignore", invalid="ignore"):
            u = cam.fx * pcam[:, 0] / pcam[:, 2] + cam.cx
            v = cam.fy * pcam[:, 1] / pcam[:, 2] + cam.cy
        fowner = np.repeat(np.arange(len(ks)), nfac)
        n = np.einsum("mij,mj->mi", rot[fowner], np.concatenate([t_.n0 for t_ in ts_]) / scale[fowner])
        n /= np.sqrt((n * n).sum(axis=1, keepdims=True)) + 1e-12
        fcen = pcam[fidx]
        facing = (n * fcen).sum(axis=1) < 0
        tsun = np.array(
            [look.to_sun[0], cp * look.to_sun[1] - sp * look.to_sun[2], sp * look.to_sun[1] + cp * look.to_sun[2]]
        )
        direct = 1.0 if not shaded else np.array([k not in shaded for k in ks], float)[fowner]
        lam = look.ambient + look.diffuse * direct * np.maximum(n @ tsun, 0.0)
        if app.specular > 0:
            h = tsun - fcen / (np.sqrt((fcen * fcen).sum(axis=1, keepdims=True)) + 1e-9)
            lam = (
                lam
                + app.specular
                * direct
                * np.maximum((n * h).sum(axis=1) / (np.sqrt((h * h).sum(axis=1)) + 1e-9), 0.0) ** 20
            )
        dist = np.sqrt(pos[:, 0] ** 2 + pos[:, 2] ** 2 + (pos[:, 1] - size[:, 0] / 2) ** 2)
        fade = (1.0 - np.exp(-dist / look.fade_distance))[fowner][:, None]
        base = np.concatenate(
            [
                (np.array([colours[k][c_] for c_ in t_.part_colour_names]) * t_.part_shades)[t_.face_part]
                for k, t_ in zip(ks, ts_)
            ]
        )
        facecol = np.clip(base * (lam[:, None] * (1 - fade)) + look.fade_colour * fade, 0, 255)
        # on-screen face area ≈ area of its first triangle × (face / first-triangle area in the template)
        f3 = np.concatenate([t_.first3 + a for t_, a in zip(ts_, start)])
        d1u, d1v = u[f3[:, 1]] - u[f3[:, 0]], v[f3[:, 1]] - v[f3[:, 0]]
        d2u, d2v = u[f3[:, 2]] - u[f3[:, 0]], v[f3[:, 2]] - v[f3[:, 0]]
        area = np.abs(d1u * d2v - d1v * d2u) * np.concatenate([t_.area_ratio for t_ in ts_])
        keep = facing & (area >= np.repeat([t_.min_area for t_ in ts_], nfac))
        pix = _fixed(np.stack([u, v], 1))
        out = {}
        f0 = 0
        for i, (k, t_) in enumerate(zip(ks, ts_)):
            f1 = f0 + nfac[i]
            a, nv = start[i], nver[i]
            zc = pcam[a : a + nv, 2]
            if zc.min() >= NEAR:
                uu, vv = u[a : a + nv], v[a : a + nv]
                out[k] = (
                    pix[t_.pad + a],
                    facecol[f0:f1].tolist(),
                    np.flatnonzero(keep[f0:f1]).tolist(),
                    (float(uu.min()), float(vv.min()), float(uu.max()), float(vv.max())),
                    float(fade[f0, 0]),
                )
            f0 = f1
        return out

    def _draw_object_lod(
        self, img, ids, k, obj, cols, cam: Camera, look: _Look, app: AppearanceConfig, tmpl: _Template, pre
    ) -> tuple:
        """Draw one street-shape object from its :meth:`_lod_batch` entry (faces, then spheres)."""
        pts_all, facecol, vis, ext, fade = pre
        ops = []
        idv = k + 1
        for idx in vis:
            pts = pts_all[idx]
            cv2.fillConvexPoly(img, pts, facecol[idx], cv2.LINE_8, SHIFT)
            cv2.fillConvexPoly(ids, pts, idv, cv2.LINE_8, SHIFT)
            ops.append(("poly", pts))
        if not tmpl.spheres:
            return ops, ext
        us, vs = [np.array([ext[0], ext[2]])], [np.array([ext[1], ext[3]])]
        _, spheres = object_geometry(tmpl, obj)  # spheres come after every face (checked in _with_lod)
        for sph in spheres:
            self._draw_sphere(img, ids, k, tmpl, sph, cols, cam, look, app, fade, ops, us, vs)
        uu, vv = np.concatenate(us), np.concatenate(vs)
        return ops, (float(uu.min()), float(vv.min()), float(uu.max()), float(vv.max()))

    def _draw_object(
        self,
        img,
        ids,
        k,
        obj,
        cols,
        cam: Camera,
        look: _Look,
        app: AppearanceConfig,
        tmpl: Optional[_Template] = None,
        pre=None,
    ):
        if tmpl is None:
            tmpl = self._templates[obj.class_name]
        if pre is not None:
            return self._draw_object_lod(img, ids, k, obj, cols, cam, look, app, tmpl, pre)
        world, spheres = object_geometry(tmpl, obj)
        ops: list = []
        us, vs = [], []
        dist = math.sqrt(obj.position[0] ** 2 + obj.position[2] ** 2 + (obj.position[1] - obj.size[0] / 2) ** 2)
        fade = 1.0 - math.exp(-dist / look.fade_distance)
        fade_col = look.fade_colour
        if len(world):
            pc = cam.to_camera(world)
            near_ok = bool((pc[:, 2] >= NEAR).all())
            with np.errstate(divide="ignore", invalid="ignore"):
                uv = np.stack([cam.fx * pc[:, 0] / pc[:, 2] + cam.cx, cam.fy * pc[:, 1] / pc[:, 2] + cam.cy], 1)
            fc = tmpl.face_mean @ world
            pcen = tmpl.part_mean @ world
            a, b, c3 = world[tmpl.first3[:, 0]], world[tmpl.first3[:, 1]], world[tmpl.first3[:, 2]]
            n = np.cross(b - a, c3 - a)
            n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
            flip = np.einsum("ij,ij->i", n, fc - pcen[tmpl.face_part]) < 0
            if tmpl.fixed is not None:  # one-sided parts: the vertex order gives the outward normal
                flip &= ~tmpl.fixed
            n[flip] *= -1
            facing = np.einsum("ij,ij->i", n, fc) < 0
            lam = look.ambient + look.diffuse * np.clip(n @ look.to_sun, 0.0, None)
            if app.specular > 0:
                # Blinn-like highlight towards the camera
                view = -fc / (np.linalg.norm(fc, axis=1, keepdims=True) + 1e-9)
                hvec = view + look.to_sun
                hvec /= np.linalg.norm(hvec, axis=1, keepdims=True) + 1e-9
                lam = lam + app.specular * np.clip(np.einsum("ij,ij->i", n, hvec), 0, None) ** 20
            partcol = np.array([cols[p.colour] * p.shade for p in tmpl.part_specs])
            facecol = partcol[tmpl.face_part] * lam[:, None] * (1 - fade) + fade_col * fade
            facecol = np.clip(facecol, 0, 255).tolist()
            if near_ok:
                us.append(uv[:, 0])
                vs.append(uv[:, 1])
                pts_all = np.round((uv - 0.5) * SCALE).astype(np.int32)
            facing = facing.tolist()
        else:
            near_ok, facing, facecol, uv = True, [], [], None
        for kind, idx in tmpl.draw:
            if kind == "face":
                if not facing[idx]:
                    continue
                f = tmpl.faces[idx]
                if near_ok:
                    pts = pts_all[f]
                else:
                    pcf = _clip_near(pc[f])
                    if len(pcf) < 3:
                        continue
                    poly = np.stack(
                        [cam.fx * pcf[:, 0] / pcf[:, 2] + cam.cx, cam.fy * pcf[:, 1] / pcf[:, 2] + cam.cy], 1
                    )
                    us.append(poly[:, 0])
                    vs.append(poly[:, 1])
                    pts = np.round((poly - 0.5) * SCALE).astype(np.int32)
                cv2.fillConvexPoly(img, pts, facecol[idx], cv2.LINE_8, SHIFT)
                cv2.fillConvexPoly(ids, pts, k + 1, cv2.LINE_8, SHIFT)
                ops.append(("poly", pts))
            else:
                self._draw_sphere(img, ids, k, tmpl, spheres[idx], cols, cam, look, app, fade, ops, us, vs)
        if us:
            uu, vv = np.concatenate(us), np.concatenate(vs)
            ext = (float(uu.min()), float(vv.min()), float(uu.max()), float(vv.max()))
        else:
            ext = (0.0, 0.0, 0.0, 0.0)
        return ops, ext

    def _labels(
        self, scene: SceneDescription, ids: np.ndarray, ops_per_obj: dict, extents: dict, clear: frozenset = frozenset()
    ):
        cam = scene.camera
        W, H = cam.width, cam.height
        filt = self.env.labels
        vocab = self.env.vocab
        objects: list[SceneObject] = []
        label_index: list[int] = []
        ignore: list[IgnoreRegion] = []
        visible_px: dict[int, int] = {}
        occl: dict[int, float] = {}
        for k, o in enumerate(scene.objects):
            ops = ops_per_obj.get(k) or []
            if not ops:
                continue
            x0f, y0f, x1f, y1f = extents[k]
            x0, y0 = max(int(math.floor(x0f)) - 1, 0), max(int(math.floor(y0f)) - 1, 0)
            x1, y1 = min(int(math.ceil(x1f)) + 2, W), min(int(math.ceil(y1f)) + 2, H)
            if x1 <= x0 or y1 <= y0:
                continue
            sub = ids[y0:y1, x0:x1] == (k + 1)
            count = int(np.count_nonzero(sub))
            visible_px[k] = count
            if count == 0:
                continue
            cols = np.flatnonzero(sub.any(axis=0))
            rows = np.flatnonzero(sub.any(axis=1))
            box = (float(x0 + cols[0]), float(y0 + rows[0]), float(x0 + cols[-1] + 1), float(y0 + rows[-1] + 1))
            if k in clear:  # nothing drawn later reaches it: every pixel it drew is still its own
                own_count = count
            else:
                own = np.zeros(sub.shape, np.uint8)
                off = np.array([x0 * SCALE, y0 * SCALE], np.int32)
                for op in ops:
                    if op[0] == "poly":
                        cv2.fillConvexPoly(own, op[1] - off, 1, cv2.LINE_8, SHIFT)
                    else:
                        cv2.circle(
                            own, (op[1][0] - int(off[0]), op[1][1] - int(off[1])), op[2], 1, -1, cv2.LINE_8, SHIFT
                        )
                own_count = max(int(np.count_nonzero(own)), count)
            occlusion = 1.0 - count / own_count
            occl[k] = occlusion
            full = max((x1f - x0f) * (y1f - y0f), 1e-9)
            inside = max(min(x1f, W) - max(x0f, 0), 0) * max(min(y1f, H) - max(y0f, 0), 0)
            truncation = float(min(max(1.0 - inside / full, 0.0), 1.0))
            bw, bh = box[2] - box[0], box[3] - box[1]
            if (
                bh < filt.min_box_height
                or bw < filt.min_box_width
                or count < filt.min_visible_pixels
                or occlusion > filt.max_occlusion
            ):
                ignore.append(IgnoreRegion(box=box, kind="label_filter"))  # visible, unlabelled: not an FP
                continue
            objects.append(
                SceneObject(
                    class_name=o.class_name,
                    class_id=vocab.class_id(o.class_name),
                    box=box,
                    score=1.0,
                    position=vec3(o.position),
                    size=vec3(o.size),
                    truncation=truncation,
                    occlusion=float(occlusion),
                    yaw=float(o.yaw),
                )
            )
            label_index.append(k)
        graph = SceneGraph(
            objects=objects,
            relationships=derive_relationships(objects, vocab),
            image_width=W,
            image_height=H,
            ignore_regions=ignore,
        )
        return graph, label_index, visible_px, occl

    # -- street background: facades, hood, texture ------------------------------------------------
    @staticmethod
    def _plan_facades(cam: Camera, app: AppearanceConfig, srng) -> dict:
        """The random part of the street background: skyline outlines and, per side, the buildings
        ``(z0, z1, x, height, colour, glass, windows?, shopfront?, floor h, window spacing, window
        w, window h, colour jitter)`` from near to far."""
        fc = app.facades
        assert fc is not None, "_plan_facades is called for appearances with facades only"
        gy = cam.height_m
        plan: dict[str, list] = {"skyline": [], "sides": []}
        if fc.skyline is not None:  # distant blocks and tree lines along the horizon: two stepped outlines
            for layer, d in enumerate(sorted((_u(srng, fc.skyline_distance) for _ in range(2)), reverse=True)):
                n = 24
                w = srng.uniform(0.5, 1.5, n)
                xs = -1.4 * d + np.concatenate([[0.0], np.cumsum(w / w.sum() * 2.8 * d)])
                hs = fc.skyline[0] + (fc.skyline[1] - fc.skyline[0]) * srng.random(n) ** (1.5 + layer)
                top = np.repeat(gy - hs, 2)
                xx = np.repeat(xs, 2)[1:-1]
                outline = np.concatenate([np.stack([xx, top, np.full(2 * n, d)], 1), [[xs[-1], gy, d], [xs[0], gy, d]]])
                c = fc.colours[int(srng.integers(len(fc.colours)))] if layer == 0 else (92, 100, 84)
                plan["skyline"].append((outline, c, d))
        lo = np.array(
            [
                fc.gap_width[0],
                fc.length[0],
                0.0,
                fc.height[0],
                fc.floor_height[0],
                fc.window_spacing[0],
                fc.window_width[0],
                fc.window_height[0],
            ]
        )
        span = (
            np.array(
                [
                    fc.gap_width[1],
                    fc.length[1],
                    fc.setback,
                    fc.height[1],
                    fc.floor_height[1],
                    fc.window_spacing[1],
                    fc.window_width[1],
                    fc.window_height[1],
                ]
            )
            - lo
        )
        for sgn, xr in ((-1.0, fc.left), (1.0, fc.right)):
            if xr is None or srng.random() >= fc.probability:
                continue
            x_side = _u(srng, xr)
            z = _u(srng, fc.start)
            blds: list[tuple] = []
            while z < fc.max_distance:
                # one batch of draws per building: gap?, windows?, shopfront?, colour, glass; sizes; jitter
                flags = srng.random(5)
                g, length, setback, h, fh, sp, ww, wh = (lo + span * srng.random(8)).tolist()
                if blds and flags[0] < fc.gap:
                    z += g
                blds.append(
                    (
                        z,
                        z + length,
                        x_side + sgn * setback,
                        h,
                        int(flags[3] * len(fc.colours)),
                        int(flags[4] * len(fc.window_colours)),
                        flags[1] < fc.windows,
                        flags[2] < fc.shopfront,
                        fh,
                        sp,
                        ww,
                        wh,
                        _jitter(srng, fc.colour_jitter).tolist(),
                    )
                )
                z += length
            plan["sides"].append((sgn, blds))
        return plan

    @staticmethod
    def _facade_shadows(mask: np.ndarray, cam: Camera, look: _Look, plan: dict) -> None:
        """Ground shadows of the buildings (the sun shining over the roofs onto the street): per
        building the quad between its facade's foot and its roof edge projected along the sun."""
        tan_el = max(math.tan(look.sun_elevation), 0.15)
        away = -np.array([look.to_sun[0], look.to_sun[2]])
        away = away / (np.linalg.norm(away) + 1e-9)
        polys = []
        for sgn, blds in plan["sides"]:
            if away[0] * sgn > 0:  # the sun is over the street: the shadows fall behind the facades
                continue
            for z0, z1, x, h, *_ in blds:
                dx, dz = away * (h / tan_el)
                quad = cam.to_camera(
                    np.array(
                        [
                            [x, cam.height_m, z0],
                            [x, cam.height_m, z1],
                            [x + dx, cam.height_m, z1 + dz],
                            [x + dx, cam.height_m, z0 + dz],
                        ]
                    )
                )
                quad = _clip_near(quad)
                if len(quad) >= 3:
                    polys.append(_fixed(_uv(quad, cam)))
        for poly in polys:  # may overlap: one convex fill each
            cv2.fillConvexPoly(mask, poly, SHADOW_BIT, cv2.LINE_8, SHIFT)

    def _draw_facades(
        self,
        img,
        cam: Camera,
        look: _Look,
        app: AppearanceConfig,
        plan: dict,
        strength: Optional[np.ndarray] = None,
        facade_strength: float = 0.0,
    ) -> None:
        """Distant skyline and rows of building facades along both sides of the street (background:
        no ids, no labels).

        The skyline is two stepped silhouettes (far, nearer) of blocks and tree lines on the
        horizon. Each building is its facade plane (wall colour), window bands per floor cut into
        windows by wall-coloured piers, an optional ground-floor shopfront and its near end wall;
        buildings whose windows would be under a pixel get the average of wall and window colour.
        Drawn far to near per side, so nearer buildings cover the end walls of farther ones. All
        quads are projected at once; each colour group is one ``fillPoly`` (its quads never overlap).
        Facade walls are also filled into ``strength`` (texture strength map) with ``facade_strength``.
        """
        fc = app.facades
        assert fc is not None, "_draw_facades is called for appearances with facades only"
        gy = cam.height_m  # the ground plane (level frame, y down)
        fade_col = np.asarray(look.fade_colour, float)
        lam_sky = look.ambient + 0.5 * look.diffuse
        for outline, c, d in plan["skyline"]:
            fade = 1.0 - math.exp(-d / look.fade_distance)
            col = np.clip(np.asarray(c, float) * lam_sky * (1 - fade) + fade_col * fade, 0, 255)
            uv, zz = cam.project(outline)
            if (zz > NEAR).all():
                cv2.fillPoly(img, [_fixed(uv)], col.tolist(), cv2.LINE_8, SHIFT)
        groups: list = []  # (quads (n, 4, 3), colours (m, 3), quads per colour (m,), facade wall?) in drawing order

        def quad_x(x, z0, z1, y0, y1):
            """Quads in the planes x (arrays of equal length) → (n, 4, 3)."""
            q = np.empty((len(x), 4, 3))
            q[:, :, 0] = x[:, None]
            q[:, 0, 1] = q[:, 1, 1] = y0
            q[:, 2, 1] = q[:, 3, 1] = y1
            q[:, 0, 2] = q[:, 3, 2] = z0
            q[:, 1, 2] = q[:, 2, 2] = z1
            return q

        for sgn, blds in plan["sides"]:
            if not blds:
                continue
            B = np.array([b[:12] for b in blds], float)[::-1]  # far to near
            jit = np.array([b[12] for b in blds], float)[::-1]
            z0, z1, x, h = B[:, 0], B[:, 1], B[:, 2], B[:, 3]
            ci, wi = B[:, 4].astype(int), B[:, 5].astype(int)
            win, shop = B[:, 6] > 0, B[:, 7] > 0
            fh, sp, ww, wh = B[:, 8], B[:, 9], B[:, 10], B[:, 11]
            z0c = np.maximum(z0, 0.5)
            ok = z1 > z0c
            fade = (1.0 - np.exp(-np.hypot(x, 0.5 * (z0c + z1)) / look.fade_distance))[:, None]
            base = np.clip(np.asarray(fc.colours, float)[ci] + jit, 0, 255)
            glass = np.clip(np.asarray(fc.window_colours, float)[wi] + 0.5 * jit, 0, 255)

            def shade(c, lam, fade=fade):
                return np.clip(c * (lam * (1 - fade)) + fade_col * fade, 0, 255)

            lam_face = look.ambient + look.diffuse * max(float(-sgn * look.to_sun[0]), 0.0)  # faces the street
            lam_end = look.ambient + look.diffuse * max(float(-look.to_sun[2]), 0.0)  # faces the camera
            top = gy - h
            # the near end wall, unless the adjacent nearer building hides it (as tall, not set back)
            hidden = np.zeros(len(B), bool)
            hidden[:-1] = (z1[1:] >= z0[:-1] - 1e-6) & (h[1:] >= h[:-1]) & (np.abs(x[1:]) <= np.abs(x[:-1]))
            e = ok & ~hidden
            xe = x + sgn * fc.depth
            q = np.empty((int(e.sum()), 4, 3))
            q[:, :, 2] = z0c[e, None]
            q[:, 0, 0] = q[:, 3, 0] = x[e]
            q[:, 1, 0] = q[:, 2, 0] = xe[e]
            q[:, 0, 1] = q[:, 1, 1] = gy
            q[:, 2, 1] = q[:, 3, 1] = top[e]
            groups.append((q, shade(base, lam_end * 0.95)[e], None, True))
            groups.append((quad_x(x[ok], z0c[ok], z1[ok], gy, top[ok]), shade(base, lam_face)[ok], None, True))
            # windows: a grid of floors × columns (bands of glass cut by wall-coloured piers)
            n_cols = np.floor((z1 - z0 - 1.0) / sp).astype(int)
            first = shop.astype(int)
            n_floors = np.floor((h - 0.6) / fh).astype(int)
            has = ok & win & (n_cols >= 1) & (n_floors > first)
            margin = 0.5 * (z1 - z0 - n_cols * sp)
            ws0 = z0 + margin + 0.5 * (1 - ww) * sp  # first window start along z
            we_last = ws0 + (n_cols - 1) * sp + ww * sp
            px = cam.fx * np.abs(x) * ww * sp / np.maximum(z0c * z0c + x * x, 1e-6)  # window width on screen
            fine = has & (px >= 1.0) & (we_last > z0c + 0.05)
            coarse = has & ~fine  # sub-pixel windows: their average colour
            b0 = (first + 0.55 * (1 - wh)) * fh  # bottom of the lowest window row
            b_top = (n_floors - 1 + 0.55 * (1 - wh)) * fh + wh * fh  # top of the highest
            mix = base * (1 - ww * wh)[:, None] + glass * (ww * wh)[:, None]
            groups.append(
                (
                    quad_x(x[coarse], z0c[coarse], z1[coarse], gy - b0[coarse], top[coarse] + 0.3),
                    shade(mix, lam_face)[coarse],
                    None,
                    False,
                )
            )
            idx = np.flatnonzero(fine)
            if len(idx):
                nb = n_floors[idx] - first[idx]
                rep = np.repeat(idx, nb)
                f = first[rep] + np.arange(nb.sum()) - np.repeat(np.cumsum(nb) - nb, nb)
                bot = (f + 0.55 * (1 - wh[rep])) * fh[rep]
                j0 = np.maximum(np.ceil((z0c[idx] + 0.05 - ws0[idx] - ww[idx] * sp[idx]) / sp[idx]), 0)
                zs = np.maximum(ws0[idx] + j0 * sp[idx], z0c[idx])
                zs_r = np.repeat(zs, nb)
                groups.append(
                    (
                        quad_x(x[rep], zs_r, we_last[rep], gy - bot, gy - bot - wh[rep] * fh[rep]),
                        shade(glass, 0.5 + 0.5 * lam_face)[idx],
                        nb,
                        False,
                    )
                )
                npier = n_cols[idx] - 1
                prep = np.repeat(idx, npier)
                jj = np.arange(npier.sum()) - np.repeat(np.cumsum(npier) - npier, npier)
                pa = ws0[prep] + jj * sp[prep] + ww[prep] * sp[prep]  # end of window j
                pb = pa + (1 - ww[prep]) * sp[prep]  # start of window j + 1
                keep = pb > z0c[prep]
                counts = np.bincount(np.searchsorted(idx, prep[keep]), minlength=len(idx))
                groups.append(
                    (
                        quad_x(
                            x[prep][keep],
                            np.maximum(pa, z0c[prep])[keep],
                            pb[keep],
                            gy - b0[prep][keep],
                            gy - b_top[prep][keep],
                        ),
                        shade(base, lam_face)[idx],
                        counts,
                        False,
                    )
                )
            s_ok = ok & shop & (z1 - 0.6 > np.maximum(z0 + 0.6, z0c))
            groups.append(
                (
                    quad_x(x[s_ok], np.maximum(z0 + 0.6, z0c)[s_ok], z1[s_ok] - 0.6, gy - 0.35, (gy - 0.8 * fh)[s_ok]),
                    shade(glass * 1.15, 0.55 + 0.45 * lam_face)[s_ok],
                    None,
                    False,
                )
            )
        groups = [g for g in groups if len(g[0])]
        if not groups:
            return
        pc = cam.to_camera(np.concatenate([g[0] for g in groups]).reshape(-1, 3)).reshape(-1, 4, 3)
        ok = np.asarray((pc[..., 2] >= NEAR).all(axis=1))
        pts = _fixed(np.where(ok[:, None, None], _uv(pc, cam), 0.0))
        all_ok = bool(ok.all())
        i = 0
        for _quads, cols, counts, wall in groups:
            counts = np.ones(len(cols), int) if counts is None else counts
            for colour, n in zip(cols.tolist(), counts.tolist()):
                if not n:
                    continue
                if all_ok or ok[i : i + n].all():
                    polys = list(pts[i : i + n])
                else:
                    polys = []
                    for j in range(i, i + n):
                        if ok[j]:
                            polys.append(pts[j])
                            continue
                        pcf = _clip_near(pc[j])
                        if len(pcf) >= 3:
                            polys.append(_fixed(_uv(pcf, cam)))
                i += n
                if polys:
                    cv2.fillPoly(img, polys, colour, cv2.LINE_8, SHIFT)
                    if strength is not None and wall:
                        cv2.fillPoly(strength, polys, facade_strength, cv2.LINE_8, SHIFT)

    def _draw_hood(self, img, ids, hood, look: _Look, srng) -> bool:
        """The ego vehicle's bonnet: a wide arc across the bottom (clears the instance ids it covers)."""
        if hood.probability <= 0 or srng.random() >= hood.probability:
            return False
        H, W = img.shape[:2]
        hc = _u(srng, hood.height) * H
        curve = _u(srng, hood.curve)
        xs = np.linspace(0.0, W, 17)
        t = 2.0 * xs / W - 1.0
        ys = H - hc * (1.0 - curve * t * t)
        pts = np.concatenate([np.stack([xs, ys], 1), [[W, H + 1], [0, H + 1]]])
        pts = np.round(pts * SCALE).astype(np.int32)
        colour = np.asarray(hood.colours[int(srng.integers(len(hood.colours)))], float)
        shade = look.ambient + 0.8 * look.diffuse
        cv2.fillPoly(img, [pts], tuple(float(v) for v in np.clip(colour * shade, 0, 255)), cv2.LINE_8, SHIFT)
        # the sky's reflection along the bonnet's upper edge
        hi = np.concatenate([np.stack([xs, ys], 1), np.stack([xs[::-1], ys[::-1] + 0.25 * hc * (1 - 0.5 * t * t)], 1)])
        refl = 0.55 * colour * shade + 0.45 * look.colours.get("sky_horizon", look.fade_colour)
        cv2.fillPoly(
            img,
            [np.round(hi * SCALE).astype(np.int32)],
            tuple(float(v) for v in np.clip(refl, 0, 255)),
            cv2.LINE_8,
            SHIFT,
        )
        cv2.fillPoly(ids, [pts], 0, cv2.LINE_8, SHIFT)
        return True

    def _ground_strength(self, cam: Camera, app: AppearanceConfig, srng) -> np.ndarray:
        """Per-pixel texture strength (float32 H×W) of the background: ground regions by colour name
        (fading with distance) and sky; facades are filled in as they are drawn, objects by class
        afterwards (:meth:`_class_strength`); the sensor multiplies it with the texture bank."""
        table = np.zeros(256, np.float32)
        falloff = np.concatenate([1.0 / (1.0 + self._level_z / 30.0), [0.0]]).astype(np.float32)
        for r, name in enumerate(["sky"] + self._region_names(app)):
            rr = app.region_texture.get(name)
            if rr is not None:
                table[r * LEVELS : (r + 1) * LEVELS] = _u(srng, rr) * (1.0 if r == 0 else falloff)
        table[SHADOW_BIT:] = table[:SHADOW_BIT]
        return cv2.LUT(self._layout(cam, app.ground), table.reshape(256, 1))

    @staticmethod
    def _class_strength(strength: np.ndarray, ids: np.ndarray, objs, app: AppearanceConfig, srng) -> np.ndarray:
        """Objects' pixels take their class's texture strength (0 for classes without one)."""
        per_cls = {c: _u(srng, r) for c, r in sorted(app.class_texture.items())}
        if not objs:
            return strength
        per_obj = np.array([0.0] + [per_cls.get(o.class_name, 0.0) for o in objs], np.float32)
        on = ids > 0
        strength[on] = per_obj[ids[on]]
        return strength

    # -- sensor ---------------------------------------------------------------------------------
    def _sensor(
        self, img: np.ndarray, look: _Look, app: AppearanceConfig, rng, tex: Optional[np.ndarray] = None
    ) -> np.ndarray:
        """Sensor stage; ``tex`` (street looks) is a per-pixel texture strength added to ``texture``."""
        H, W = img.shape[:2]
        exposure_done = False
        if tex is not None:  # street looks: per-pixel strength, OpenCV arithmetic (saturating, one pass)
            crop = self._bank("tex", W, H, app.texture_scale)
            oy, ox = int(rng.integers(0, H)), int(rng.integers(0, W))
            # (OpenCV takes a scalar as the second operand; its type stubs list arrays only)
            strength = cv2.add(tex, float(look.texture)) if look.texture > 0 else tex  # type: ignore[call-overload]
            gain = cv2.add(cv2.multiply(strength, crop[oy : oy + H, ox : ox + W]), 1.0)  # type: ignore[call-overload]
            if app.vignette > 0:
                gain = cv2.multiply(gain, self._vignette(W, H, app.vignette))
            if look.gamma == 1 and (look.cast == 1).all() and look.exposure != 1:
                # a plain exposure gain, folded in here (a scalar operand: see above)
                gain = cv2.multiply(gain, float(look.exposure))  # type: ignore[call-overload]
                exposure_done = True
            g8 = cv2.convertScaleAbs(gain, alpha=128.0)  # gain in 1/128 steps (max ~2): 8-bit multiply
            img = cv2.multiply(img, cv2.merge([g8, g8, g8]), scale=1.0 / 128.0)
        elif look.texture > 0 or app.vignette > 0:
            gain = np.ones((H, W), np.float32)
            if look.texture > 0:
                bank = self._bank("tex", W, H, app.texture_scale)
                oy, ox = int(rng.integers(0, H)), int(rng.integers(0, W))
                gain += np.float32(look.texture) * bank[oy : oy + H, ox : ox + W]
            if app.vignette > 0:
                gain *= self._vignette(W, H, app.vignette)
            img = cv2.multiply(img.astype(np.float32), cv2.merge([gain, gain, gain]))
            img = np.clip(img, 0, 255).astype(np.uint8)
        if not exposure_done and ((look.cast != 1).any() or look.exposure != 1 or look.gamma != 1):
            x = np.arange(256, dtype=np.float64)[:, None] / 255.0
            y = np.clip(x * look.exposure * look.cast[None, :], 0, 1) ** (1.0 / look.gamma)
            lut = np.clip(np.round(y * 255), 0, 255).astype(np.uint8).reshape(256, 1, 3)
            img = cv2.LUT(img, lut)
        if app.hue_shift != (0.0, 0.0) or app.saturation != (1.0, 1.0):
            img = _hue_saturation(img, _u(rng, app.hue_shift), _u(rng, app.saturation))
        if look.blur > 0.25:
            img = cv2.GaussianBlur(img, (0, 0), look.blur)
        if look.noise > 0:
            bank = self._bank("noise", W, H)
            oy, ox = int(rng.integers(0, H)), int(rng.integers(0, W))
            if tex is not None:  # street looks: one saturating pass
                img = cv2.addWeighted(img, 1.0, bank[oy : oy + H, ox : ox + W], look.noise, 0.0, dtype=cv2.CV_8U)
            else:
                noisy = cv2.scaleAdd(bank[oy : oy + H, ox : ox + W], look.noise, img.astype(np.float32))
                img = np.clip(noisy, 0, 255).astype(np.uint8)
        if look.jpeg is not None:
            ok, buf = cv2.imencode(
                ".jpg",
                cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, int(np.clip(look.jpeg, 1, 100))],
            )
            decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            if not ok or decoded is None:
                raise RuntimeError("the sensor's JPEG round trip failed (OpenCV imencode/imdecode)")
            img = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
        return np.ascontiguousarray(img)

    def _vignette(self, W: int, H: int, strength: float) -> np.ndarray:
        key = ("vig", W, H, strength)
        v = self._banks.get(key)
        if v is None:
            yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
            r2 = ((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (H / 2)) ** 2
            v = (1.0 - strength * r2 / 2.0).astype(np.float32)
            self._banks[key] = v
        return v


__all__ = [
    "NEAR",
    "RASTER_PAD",
    "Renderer",
    "RenderResult",
    "object_geometry",
    "projected_extent",
    "template_for",
    "weighted_palette_index",
]
