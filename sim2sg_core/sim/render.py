"""Rendering: scene description + appearance → RGB image, instance-id map and exact labels.

Objects are shaded 3-D primitives (cuboids, prisms/cylinders, cones, frusta, gable roofs, spheres)
projected with the pinhole camera and filled with OpenCV polygon fills, back to front (painter's
algorithm, by distance of the object's centre); inside an object, back faces are culled and the
parts are drawn in their listed order. Every fill is repeated with the object's id into an
instance-id map, so a label's 2-D box is *exactly* the extent of the object's visible pixels
(pixel-edge convention: ``x_max = last column + 1``).

An object is labelled only when it passes the environment's :class:`LabelFilter` (visible box at
least ``min_box_height`` × ``min_box_width`` pixels, ``min_visible_pixels`` visible pixels and
occlusion at most ``max_occlusion``); others are still drawn (they occlude) but carry no label.
Occlusion = 1 − visible pixels / pixels the object would cover alone (inside the image);
truncation = 1 − area of the projected 3-D extent inside the image / its whole area.

The background (sky gradient, ground zones such as road, sidewalks, lane dashes, table top) is a
per-pixel region/distance label map cached per camera, coloured per image through a lookup table.
The sensor stage (texture, vignette, colour cast, exposure, gamma, blur, noise, JPEG) uses
precomputed noise banks cropped at random offsets so it stays cheap.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional

import cv2
import numpy as np

from sim2sg_core.scene_graph import SceneGraph, SceneObject, derive_relationships
from sim2sg_core.sim.domains import AppearanceConfig, ClassPrior, EnvironmentConfig
from sim2sg_core.sim.scene import Camera, SceneDescription

SHIFT = 4                  # sub-pixel bits for OpenCV fills
SCALE = float(1 << SHIFT)
NEAR = 0.2                 # near clipping plane (m)
#: OpenCV fills are inclusive of the polygon outline, so a raster box is the projected extent grown
#: by about half a pixel on every side (measured mean 0.5 px); reconstruction undoes it.
RASTER_PAD = 0.5
LEVELS = 16                # distance / gradient levels per background region
MAX_REGIONS = 8            # sky, ground, up to 6 zones → labels < 128
SHADOW_BIT = 128           # layout label bit: ground in shadow


# ----------------------------------------------------------------------------------------------
# Shape templates

@dataclass
class _Template:
    """Unit-size geometry of a class: x = length, y = up (negative), z = width; bottom at y = 0."""

    verts: np.ndarray              # (N, 3)
    faces: list                    # list of index arrays
    face_part: np.ndarray          # (F,)
    first3: np.ndarray             # (F, 3) indices for the normal
    face_mean: np.ndarray          # (F, N) averaging matrix → face centroids
    part_mean: np.ndarray          # (P, N) averaging matrix → part centroids
    spheres: list                  # (part index, centre (3,), radius fraction of height)
    draw: list                     # ("face", f) / ("sphere", s) in drawing order
    part_specs: tuple


def _ring(n: int, rx: float, rz: float, y: float, dx: float) -> np.ndarray:
    a = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    return np.stack([dx + rx * np.cos(a), np.full(n, y), rz * np.sin(a)], axis=1)


def _build_template(prior: ClassPrior) -> _Template:
    verts: list[np.ndarray] = []
    faces: list[np.ndarray] = []
    face_part: list[int] = []
    spheres = []
    draw = []
    part_ranges = []
    count = 0
    for pi, p in enumerate(prior.parts):
        y0, y1 = -p.y[0], -p.y[1]  # up is negative y
        hl, hw = 0.5 * p.l, 0.5 * p.w
        if p.shape == "sphere":
            r = 0.5 * (p.y[1] - p.y[0])
            spheres.append((pi, np.array([p.dx, 0.5 * (y0 + y1), 0.0]), r))
            draw.append(("sphere", len(spheres) - 1))
            part_ranges.append((count, count))
            continue
        if p.shape == "cuboid":
            v = np.array([[x, y, z] for y in (y0, y1) for x in (p.dx - hl, p.dx + hl) for z in (-hw, hw)])
            # index = 4*top + 2*xi + zi
            fl = [[0, 1, 3, 2], [4, 5, 7, 6], [0, 1, 5, 4], [2, 3, 7, 6], [0, 2, 6, 4], [1, 3, 7, 5]]
        elif p.shape == "roof":
            v = np.array([[p.dx - hl, y0, -hw], [p.dx + hl, y0, -hw], [p.dx + hl, y0, hw], [p.dx - hl, y0, hw],
                          [p.dx - hl, y1, 0.0], [p.dx + hl, y1, 0.0]])
            fl = [[0, 1, 2, 3], [0, 1, 5, 4], [3, 2, 5, 4], [0, 3, 4], [1, 2, 5]]
        else:  # cylinder, cone, frustum
            n = p.sides
            top = 0.0 if p.shape == "cone" else (1.0 if p.shape == "cylinder" else p.top)
            bottom = _ring(n, hl, hw, y0, p.dx)
            if top > 1e-6:
                v = np.vstack([bottom, _ring(n, hl * top, hw * top, y1, p.dx)])
                fl = [[i, (i + 1) % n, n + (i + 1) % n, n + i] for i in range(n)]
                fl.append(list(range(n, 2 * n)))
            else:
                v = np.vstack([bottom, [[p.dx, y1, 0.0]]])
                fl = [[i, (i + 1) % n, n] for i in range(n)]
            fl.append(list(range(n)))
        start = count
        for f in fl:
            faces.append(np.asarray(f) + start)
            face_part.append(pi)
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
    return _Template(verts=V, faces=faces, face_part=np.asarray(face_part, dtype=np.int64), first3=first3,
                     face_mean=face_mean, part_mean=part_mean, spheres=spheres, draw=draw,
                     part_specs=prior.parts)


_TEMPLATE_CACHE: dict = {}


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
        us.append(uv[:, 0]); vs.append(uv[:, 1])
    for _, centre, r in spheres:
        cc = cam.to_camera(centre[None])[0]
        if cc[2] < NEAR + r:
            return None
        u = cam.fx * cc[0] / cc[2] + cam.cx
        v = cam.fy * cc[1] / cc[2] + cam.cy
        rp = cam.fx * r / math.sqrt(max(cc[2] ** 2 - r ** 2, 1e-6))
        us.append(np.array([u - rp, u + rp])); vs.append(np.array([v - rp, v + rp]))
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
    return _Look(colours=colours, to_sun=to_sun, sun_azimuth=az, sun_elevation=el, ambient=_u(rng, app.ambient),
                 diffuse=_u(rng, app.diffuse), shadows=_u(rng, app.shadows),
                 fade_distance=max(_u(rng, app.fade_distance), 1e-3), fade_colour=colours[app.fade_colour],
                 texture=_u(rng, app.texture), cast=cast, exposure=_u(rng, app.exposure), gamma=_u(rng, app.gamma),
                 blur=_u(rng, app.blur_sigma), noise=_u(rng, app.noise_std),
                 jpeg=None if q is None else int(round(_u(rng, q))))


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
    image: np.ndarray                 # RGB uint8 H×W×3
    instance_map: np.ndarray          # uint16 H×W: 0 background, k+1 = scene object k
    graph: SceneGraph                 # labels (objects passing the filter), relationships by the rule
    label_index: list = field(default_factory=list)   # graph object i ↔ scene object label_index[i]
    visible_pixels: dict = field(default_factory=dict)  # scene object index → visible pixel count
    occlusion: dict = field(default_factory=dict)       # scene object index → occluded fraction


class Renderer:
    """Draws scenes of one environment. Caches shape templates, background layouts and noise banks."""

    def __init__(self, env: EnvironmentConfig, *, cache_size: int = 64):
        self.env = env
        self._templates = {n: template_for(p) for n, p in env.classes.items()}
        self._layouts: OrderedDict = OrderedDict()
        self._backgrounds: OrderedDict = OrderedDict()
        self._banks: dict = {}
        self._cache_size = cache_size
        if len(env.zones) + 2 > MAX_REGIONS:
            raise ValueError(f"{env.source_path}: at most {MAX_REGIONS - 2} ground zones are supported, "
                             f"got {len(env.zones)}")
        zmin, zmax = 1.0, max(env.max_ground_distance, 2.0)
        self._level_z = np.geomspace(zmin, zmax, LEVELS - 1)  # distance of each ground level

    # -- background -----------------------------------------------------------------------------
    def _layout(self, cam: Camera) -> np.ndarray:
        """Per-pixel ``region * LEVELS + level`` (uint8 < 128): region 0 sky, 1 ground, 2+i zone i.

        Built row by row: on a flat ground every image row is one forward distance, and a zone's
        lateral range maps to one column interval per row.
        """
        key = (cam.width, cam.height, round(cam.fx, 6), round(cam.fy, 6), round(cam.cx, 6), round(cam.cy, 6),
               round(cam.height_m, 4), round(cam.pitch, 5))
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
        region = np.zeros((H, W), np.uint8)
        region[ground_row] = 1
        cols = np.arange(W, dtype=np.float64) + 0.5
        rows = np.flatnonzero(ground_row)
        if len(rows):
            tr, zr = t[rows], zrow[rows]
            for i, zone in enumerate(self.env.zones):
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

    def _lut(self, look: _Look, shadow: float) -> np.ndarray:
        """(256, 1, 3) colour table for layout labels; labels with the shadow bit are darkened."""
        lut = np.zeros((256, 3), np.float64)
        alpha_ground = 1.0 - np.exp(-self._level_z / look.fade_distance)
        alpha = np.concatenate([alpha_ground, [1.0]])[:, None]  # (LEVELS, 1)
        names = [self.env.ground_colour] + [z.colour for z in self.env.zones]
        for r, name in enumerate(names, start=1):
            lut[r * LEVELS:(r + 1) * LEVELS] = look.colours[name] * (1 - alpha) + look.fade_colour * alpha
        if self.env.sky:
            k = np.linspace(0.0, 1.0, LEVELS)[:, None]
            lut[0:LEVELS] = look.colours["sky_horizon"] * (1 - k) + look.colours["sky_top"] * k
        lut[SHADOW_BIT:] = lut[:SHADOW_BIT] * (1.0 - shadow)
        return np.clip(np.round(lut), 0, 255).astype(np.uint8).reshape(256, 1, 3)

    def _background(self, cam: Camera, look: _Look, app: AppearanceConfig,
                    shadow_mask: Optional[np.ndarray] = None) -> np.ndarray:
        fixed = (not app.random_colours and app.colour_jitter == 0
                 and app.fade_distance[0] == app.fade_distance[1] and shadow_mask is None)
        key = (id(app), cam.width, cam.height, cam.fx, cam.fy, cam.cx, cam.cy, cam.height_m, cam.pitch)
        if fixed:
            hit = self._backgrounds.get(key)
            if hit is not None and hit[0] is app:
                return hit[1].copy()
        layout = self._layout(cam)
        if shadow_mask is not None:
            layout = cv2.bitwise_or(layout, shadow_mask)
        img = cv2.LUT(cv2.merge([layout, layout, layout]), self._lut(look, look.shadows))
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
                fine = rng.standard_normal((2 * H, 2 * W)).astype(np.float32)
                fine = cv2.GaussianBlur(fine, (0, 0), 0.8)
                t = blob / (blob.std() + 1e-6) + 0.5 * fine / (fine.std() + 1e-6)
                bank = (t / t.std()).astype(np.float32)
            else:
                bank = rng.standard_normal((2 * H, 2 * W, 3)).astype(np.float32)
            self._banks[key] = bank
        return bank

    # -- objects --------------------------------------------------------------------------------
    def _object_colours(self, prior: ClassPrior, obj, app: AppearanceConfig, rng) -> dict:
        palette = app.palettes.get(prior.name) or prior.palette
        if app.random_colours:
            cols = {"body": rng.integers(0, 256, 3).astype(float)}
            for k in prior.part_colours:
                cols[k] = rng.integers(0, 256, 3).astype(float)
            return cols
        cols = {"body": np.asarray(palette[obj.colour_index % len(palette)], float)}
        over = app.part_colours.get(prior.name, {})
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
                raise ValueError(f"scene object {k} has class {o.class_name!r}, not one of environment "
                                 f"{self.env.name!r}: {list(self._templates)}")
            if len(o.size) != 3 or min(o.size) <= 0:
                raise ValueError(f"scene object {k} ({o.class_name}) has a bad size {o.size!r}; need 3 values > 0")
        cam = scene.camera
        W, H = cam.width, cam.height
        rng = np.random.default_rng(np.random.SeedSequence([int(scene.seed) & 0xFFFFFFFF, 7]))
        look = _draw_look(appearance, rng)
        ids = np.zeros((H, W), np.uint16)

        objs = scene.objects
        colours = [self._object_colours(self.env.prior(o.class_name), o, appearance, rng) for o in objs]
        # painter's order: distance of each object's centre from the camera, far first
        dist = [math.hypot(o.position[0], o.position[1] - o.size[0] / 2, o.position[2]) for o in objs]
        order = sorted(range(len(objs)), key=lambda k: -dist[k])

        shadow_mask = self._shadow_mask(scene, look) if (look.shadows > 0 and objs) else None
        img = self._background(cam, look, appearance, shadow_mask)

        ops_per_obj: dict[int, list] = {}
        extents: dict[int, tuple[float, float, float, float]] = {}
        for k in order:
            ops, ext = self._draw_object(img, ids, k, objs[k], colours[k], cam, look, appearance)
            ops_per_obj[k] = ops
            extents[k] = ext

        graph, label_index, visible, occl = self._labels(scene, ids, ops_per_obj, extents)
        img = self._sensor(img, look, appearance, rng)
        return RenderResult(image=img, instance_map=ids, graph=graph, label_index=label_index,
                            visible_pixels=visible, occlusion=occl)

    def _shadow_mask(self, scene: SceneDescription, look: _Look) -> np.ndarray:
        """Ground shadows (uint8 mask with SHADOW_BIT): per object the convex hull of its vertices
        projected onto the ground along the sun direction (exact for convex shapes)."""
        cam = scene.camera
        mask = np.zeros((cam.height, cam.width), np.uint8)
        tan_el = max(math.tan(look.sun_elevation), 0.15)
        away = -np.array([look.to_sun[0], look.to_sun[2]])
        away = away / (np.linalg.norm(away) + 1e-9)
        ring = np.stack([np.cos(np.linspace(0, 2 * np.pi, 8, endpoint=False)),
                         np.sin(np.linspace(0, 2 * np.pi, 8, endpoint=False))], 1)
        for o in scene.objects:
            world, spheres = object_geometry(self._templates[o.class_name], o)
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

    def _draw_object(self, img, ids, k, obj, cols, cam: Camera, look: _Look, app: AppearanceConfig):
        tmpl = self._templates[obj.class_name]
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
            facing = facing.tolist()
            if near_ok:
                us.append(uv[:, 0]); vs.append(uv[:, 1])
                pts_all = np.round((uv - 0.5) * SCALE).astype(np.int32)
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
                    poly = np.stack([cam.fx * pcf[:, 0] / pcf[:, 2] + cam.cx, cam.fy * pcf[:, 1] / pcf[:, 2] + cam.cy], 1)
                    us.append(poly[:, 0]); vs.append(poly[:, 1])
                    pts = np.round((poly - 0.5) * SCALE).astype(np.int32)
                cv2.fillConvexPoly(img, pts, facecol[idx], cv2.LINE_8, SHIFT)
                cv2.fillConvexPoly(ids, pts, k + 1, cv2.LINE_8, SHIFT)
                ops.append(("poly", pts))
            else:
                pi, centre, r = spheres[idx]
                cc = cam.to_camera(centre[None])[0]
                if cc[2] < NEAR + r:
                    continue
                u = cam.fx * cc[0] / cc[2] + cam.cx
                v = cam.fy * cc[1] / cc[2] + cam.cy
                rp = cam.fx * r / math.sqrt(max(cc[2] ** 2 - r ** 2, 1e-6))
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
                cv2.circle(img, hl, max(int(rad * 0.55), 1), tuple(float(x) for x in np.clip(lit, 0, 255)), -1,
                           cv2.LINE_8, SHIFT)
                cv2.circle(ids, centre_px, rad, k + 1, -1, cv2.LINE_8, SHIFT)
                ops.append(("circle", centre_px, rad))
                us.append(np.array([u - rp, u + rp])); vs.append(np.array([v - rp, v + rp]))
        if us:
            uu, vv = np.concatenate(us), np.concatenate(vs)
            ext = (float(uu.min()), float(vv.min()), float(uu.max()), float(vv.max()))
        else:
            ext = (0.0, 0.0, 0.0, 0.0)
        return ops, ext

    def _labels(self, scene: SceneDescription, ids: np.ndarray, ops_per_obj: dict, extents: dict):
        cam = scene.camera
        W, H = cam.width, cam.height
        filt = self.env.labels
        vocab = self.env.vocab
        objects: list[SceneObject] = []
        label_index: list[int] = []
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
            own = np.zeros(sub.shape, np.uint8)
            off = np.array([x0 * SCALE, y0 * SCALE], np.int32)
            for op in ops:
                if op[0] == "poly":
                    cv2.fillConvexPoly(own, op[1] - off, 1, cv2.LINE_8, SHIFT)
                else:
                    cv2.circle(own, (op[1][0] - int(off[0]), op[1][1] - int(off[1])), op[2], 1, -1, cv2.LINE_8, SHIFT)
            own_count = max(int(np.count_nonzero(own)), count)
            occlusion = 1.0 - count / own_count
            occl[k] = occlusion
            full = max((x1f - x0f) * (y1f - y0f), 1e-9)
            inside = max(min(x1f, W) - max(x0f, 0), 0) * max(min(y1f, H) - max(y0f, 0), 0)
            truncation = float(min(max(1.0 - inside / full, 0.0), 1.0))
            bw, bh = box[2] - box[0], box[3] - box[1]
            if (bh < filt.min_box_height or bw < filt.min_box_width or count < filt.min_visible_pixels
                    or occlusion > filt.max_occlusion):
                continue
            objects.append(SceneObject(class_name=o.class_name, class_id=vocab.class_id(o.class_name), box=box,
                                       score=1.0, position=tuple(float(v) for v in o.position),
                                       size=tuple(float(v) for v in o.size), truncation=truncation,
                                       occlusion=float(occlusion), yaw=float(o.yaw)))
            label_index.append(k)
        graph = SceneGraph(objects=objects, relationships=derive_relationships(objects, vocab),
                           image_width=W, image_height=H)
        return graph, label_index, visible_px, occl

    # -- sensor ---------------------------------------------------------------------------------
    def _sensor(self, img: np.ndarray, look: _Look, app: AppearanceConfig, rng) -> np.ndarray:
        H, W = img.shape[:2]
        if look.texture > 0 or app.vignette > 0:
            gain = np.ones((H, W), np.float32)
            if look.texture > 0:
                bank = self._bank("tex", W, H, app.texture_scale)
                oy, ox = int(rng.integers(0, H)), int(rng.integers(0, W))
                gain += np.float32(look.texture) * bank[oy:oy + H, ox:ox + W]
            if app.vignette > 0:
                gain *= self._vignette(W, H, app.vignette)
            img = cv2.multiply(img.astype(np.float32), cv2.merge([gain, gain, gain]))
            img = np.clip(img, 0, 255).astype(np.uint8)
        if (look.cast != 1).any() or look.exposure != 1 or look.gamma != 1:
            x = np.arange(256, dtype=np.float64)[:, None] / 255.0
            y = np.clip(x * look.exposure * look.cast[None, :], 0, 1) ** (1.0 / look.gamma)
            lut = np.clip(np.round(y * 255), 0, 255).astype(np.uint8).reshape(256, 1, 3)
            img = cv2.LUT(img, lut)
        if look.blur > 0.25:
            img = cv2.GaussianBlur(img, (0, 0), look.blur)
        if look.noise > 0:
            bank = self._bank("noise", W, H)
            oy, ox = int(rng.integers(0, H)), int(rng.integers(0, W))
            noisy = cv2.scaleAdd(bank[oy:oy + H, ox:ox + W], look.noise, img.astype(np.float32))
            img = np.clip(noisy, 0, 255).astype(np.uint8)
        if look.jpeg is not None:
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                                   [cv2.IMWRITE_JPEG_QUALITY, int(np.clip(look.jpeg, 1, 100))])
            img = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
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


__all__ = ["NEAR", "RASTER_PAD", "Renderer", "RenderResult", "object_geometry", "projected_extent", "template_for"]
