"""Objects: shaded primitives projected with the pinhole camera and filled back to front (painter's
algorithm); back faces are culled and the parts drawn in their listed order. Every fill is repeated
with the object's id into the instance-id map (the labels come from it). Street shapes (templates
with level-of-detail data) are computed for the whole scene in one batch. Also the objects' ground
shadows (convex hulls of their vertices projected along the sun)."""

from __future__ import annotations

import math
from typing import Optional

import cv2
import numpy as np

from sim2sg_core.geometry import Camera
from sim2sg_core.sim.domains import AppearanceConfig
from sim2sg_core.sim.render.background import SHADOW_BIT
from sim2sg_core.sim.render.look import Look
from sim2sg_core.sim.render.raster import (
    NEAR,
    SCALE,
    SHIFT,
    camera_frame_to_pixels,
    clip_to_near_plane,
    project_sphere,
    to_fixed_point,
)
from sim2sg_core.sim.render.templates import ShapeTemplate, object_geometry
from sim2sg_core.sim.scene import SceneDescription


def objects_in_shadow(objs, cam: Camera, mask: np.ndarray) -> frozenset:
    """Objects whose bottom centre lies in a shadow of ``mask`` (off-image: not shadowed)."""
    out = set()
    if not objs:
        return frozenset()
    uv, z = cam.project(np.array([o.position for o in objs], float))
    for k, ((u, v), zk) in enumerate(zip(uv.tolist(), z.tolist())):
        if zk > NEAR and 0 <= u < cam.width and 0 <= v < cam.height and mask[int(v), int(u)]:
            out.add(k)
    return frozenset(out)


def object_shadows(scene: SceneDescription, look: Look, tmpls: list, mask: Optional[np.ndarray] = None) -> np.ndarray:
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
    if all(t.lod_pts is not None for t in tmpls):
        return _street_shape_shadows(scene, tmpls, mask, tan_el, away, ring)
    for k, o in enumerate(scene.objects):
        tmpl = tmpls[k]
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


def _street_shape_shadows(scene: SceneDescription, tmpls: list, mask, tan_el, away, ring) -> np.ndarray:
    """:func:`object_shadows` for street shapes: the solid parts' outline vertices (and sphere
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
    pix = to_fixed_point(uv)
    start = 0
    for n in counts:
        if (z[start : start + n] >= NEAR).all():
            cv2.fillConvexPoly(mask, cv2.convexHull(pix[start : start + n]), SHADOW_BIT, cv2.LINE_8, SHIFT)
        start += n
    return mask


def _draw_sphere(
    img,
    ids,
    k,
    tmpl,
    sphere,
    cols,
    cam: Camera,
    look: Look,
    app: AppearanceConfig,
    fade: float,
    ops: list,
    us: list,
    vs: list,
) -> None:
    """One sphere part: a disc in the part colour with a lit cap towards the sun."""
    pi, centre, r = sphere
    fade_col = look.fade_colour
    outline = project_sphere(cam, centre, r)
    if outline is None:
        return
    u, v, rp = outline
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
    cv2.circle(img, hl, max(int(rad * 0.55), 1), tuple(float(x) for x in np.clip(lit, 0, 255)), -1, cv2.LINE_8, SHIFT)
    cv2.circle(ids, centre_px, rad, k + 1, -1, cv2.LINE_8, SHIFT)
    ops.append(("circle", centre_px, rad))
    us.append(np.array([u - rp, u + rp]))
    vs.append(np.array([v - rp, v + rp]))


def batch_street_shapes(
    objs,
    tmpls: list,
    colours: list,
    cam: Camera,
    look: Look,
    app: AppearanceConfig,
    shaded: frozenset = frozenset(),
) -> dict:
    """Street shapes (templates with level-of-detail data) of a whole scene at once: the same
    geometry, back-face culling, shading and fade as :func:`draw_object`, with precomputed
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
    u, v = camera_frame_to_pixels(pcam, cam).T  # (the batch builds camera-frame points itself)
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
            + app.specular * direct * np.maximum((n * h).sum(axis=1) / (np.sqrt((h * h).sum(axis=1)) + 1e-9), 0.0) ** 20
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
    pix = to_fixed_point(np.stack([u, v], 1))
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


def _draw_batched_object(
    img, ids, k, obj, cols, cam: Camera, look: Look, app: AppearanceConfig, tmpl: ShapeTemplate, batched
) -> tuple:
    """Draw one street-shape object from its :func:`batch_street_shapes` entry (faces, then spheres)."""
    pts_all, facecol, vis, ext, fade = batched
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
    _, spheres = object_geometry(tmpl, obj)  # spheres come after every face (checked in with_level_of_detail)
    for sph in spheres:
        _draw_sphere(img, ids, k, tmpl, sph, cols, cam, look, app, fade, ops, us, vs)
    uu, vv = np.concatenate(us), np.concatenate(vs)
    return ops, (float(uu.min()), float(vv.min()), float(uu.max()), float(vv.max()))


def draw_object(
    img,
    ids,
    k,
    obj,
    cols,
    cam: Camera,
    look: Look,
    app: AppearanceConfig,
    tmpl: ShapeTemplate,
    batched=None,
) -> tuple[list, tuple[float, float, float, float]]:
    """Draw object ``k`` (id ``k + 1``); returns its fills (for occlusion) and its projected extent.
    ``batched``: its :func:`batch_street_shapes` entry (street shapes away from the near plane)."""
    if batched is not None:
        return _draw_batched_object(img, ids, k, obj, cols, cam, look, app, tmpl, batched)
    world, spheres = object_geometry(tmpl, obj)
    ops: list = []
    us, vs = [], []
    dist = math.sqrt(obj.position[0] ** 2 + obj.position[2] ** 2 + (obj.position[1] - obj.size[0] / 2) ** 2)
    fade = 1.0 - math.exp(-dist / look.fade_distance)
    fade_col = look.fade_colour
    if len(world):
        uv, depth = cam.project(world)
        near_ok = bool((depth >= NEAR).all())
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
            pts_all = to_fixed_point(uv)
        facing = facing.tolist()
    else:
        near_ok, facing, facecol = True, [], []
    for kind, idx in tmpl.draw:
        if kind == "face":
            if not facing[idx]:
                continue
            f = tmpl.faces[idx]
            if near_ok:
                pts = pts_all[f]
            else:
                pcf = clip_to_near_plane(cam.to_camera(world[f]))  # clipping works in the camera frame
                if len(pcf) < 3:
                    continue
                poly = camera_frame_to_pixels(pcf, cam)
                us.append(poly[:, 0])
                vs.append(poly[:, 1])
                pts = to_fixed_point(poly)
            cv2.fillConvexPoly(img, pts, facecol[idx], cv2.LINE_8, SHIFT)
            cv2.fillConvexPoly(ids, pts, k + 1, cv2.LINE_8, SHIFT)
            ops.append(("poly", pts))
        else:
            _draw_sphere(img, ids, k, tmpl, spheres[idx], cols, cam, look, app, fade, ops, us, vs)
    if us:
        uu, vv = np.concatenate(us), np.concatenate(vs)
        ext = (float(uu.min()), float(vv.min()), float(uu.max()), float(vv.max()))
    else:
        ext = (0.0, 0.0, 0.0, 0.0)
    return ops, ext
