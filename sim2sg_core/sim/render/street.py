"""Street backgrounds: rows of building facades with window grids along both sides, a skyline of
distant blocks and tree lines, the buildings' shadows on the street, and the ego vehicle's bonnet.
All unlabelled background, drawn only for appearances that set ``facades`` / ``hood``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import cv2
import numpy as np

from sim2sg_core.geometry import Camera
from sim2sg_core.sim.domains import AppearanceConfig
from sim2sg_core.sim.render.background import SHADOW_BIT
from sim2sg_core.sim.render.look import Look, draw_uniform, jitter_colour
from sim2sg_core.sim.render.raster import (
    NEAR,
    SCALE,
    SHIFT,
    camera_frame_to_pixels,
    clip_to_near_plane,
    to_fixed_point,
)


@dataclass
class Building:
    """One building of a facade row (level frame, m): its facade plane and window grid."""

    z0: float  # near end along the street
    z1: float  # far end
    x: float  # facade plane (setback included)
    height: float
    colour_index: int  # into the facades' ``colours``
    glass_index: int  # into ``window_colours``
    windows: bool
    shopfront: bool
    floor_height: float
    window_spacing: float
    window_width: float  # fraction of the spacing
    window_height: float  # fraction of the floor height
    colour_jitter: list  # RGB offset of this building's colours


@dataclass
class SkylineLayer:
    """A stepped silhouette of distant blocks or trees at one distance."""

    outline: np.ndarray  # (N, 3) level-frame polygon
    colour: tuple
    distance: float


@dataclass
class StreetPlan:
    """The random part of a street background, drawn once per image before anything is drawn (the
    building shadows are needed by the objects and the background)."""

    skyline: list[SkylineLayer] = field(default_factory=list)
    sides: list[tuple[float, list[Building]]] = field(default_factory=list)  # (side −1 left / +1 right, near to far)


def plan_facades(cam: Camera, app: AppearanceConfig, street_rng: np.random.Generator) -> StreetPlan:
    """Draw the skyline outlines and, per side, the buildings from near to far."""
    fc = app.facades
    assert fc is not None, "plan_facades is called for appearances with facades only"
    gy = cam.height_m
    plan = StreetPlan()
    if fc.skyline is not None:  # distant blocks and tree lines along the horizon: two stepped outlines
        for layer, d in enumerate(
            sorted((draw_uniform(street_rng, fc.skyline_distance) for _ in range(2)), reverse=True)
        ):
            n = 24
            w = street_rng.uniform(0.5, 1.5, n)
            xs = -1.4 * d + np.concatenate([[0.0], np.cumsum(w / w.sum() * 2.8 * d)])
            hs = fc.skyline[0] + (fc.skyline[1] - fc.skyline[0]) * street_rng.random(n) ** (1.5 + layer)
            top = np.repeat(gy - hs, 2)
            xx = np.repeat(xs, 2)[1:-1]
            outline = np.concatenate([np.stack([xx, top, np.full(2 * n, d)], 1), [[xs[-1], gy, d], [xs[0], gy, d]]])
            c = fc.colours[int(street_rng.integers(len(fc.colours)))] if layer == 0 else (92, 100, 84)
            plan.skyline.append(SkylineLayer(outline, c, d))
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
        if xr is None or street_rng.random() >= fc.probability:
            continue
        x_side = draw_uniform(street_rng, xr)
        z = draw_uniform(street_rng, fc.start)
        blds: list[Building] = []
        while z < fc.max_distance:
            # one batch of draws per building: gap?, windows?, shopfront?, colour, glass; sizes; jitter
            flags = street_rng.random(5)
            g, length, setback, h, fh, sp, ww, wh = (lo + span * street_rng.random(8)).tolist()
            if blds and flags[0] < fc.gap:
                z += g
            blds.append(
                Building(
                    z0=z,
                    z1=z + length,
                    x=x_side + sgn * setback,
                    height=h,
                    colour_index=int(flags[3] * len(fc.colours)),
                    glass_index=int(flags[4] * len(fc.window_colours)),
                    windows=bool(flags[1] < fc.windows),
                    shopfront=bool(flags[2] < fc.shopfront),
                    floor_height=fh,
                    window_spacing=sp,
                    window_width=ww,
                    window_height=wh,
                    colour_jitter=jitter_colour(street_rng, fc.colour_jitter).tolist(),
                )
            )
            z += length
        plan.sides.append((sgn, blds))
    return plan


def _column(buildings: list[Building], name: str, dtype: type = float) -> np.ndarray:
    """One field of every building as an array (the facade drawing is vectorised per side)."""
    return np.array([getattr(b, name) for b in buildings], dtype)


def draw_facade_shadows(mask: np.ndarray, cam: Camera, look: Look, plan: StreetPlan) -> None:
    """Ground shadows of the buildings (the sun shining over the roofs onto the street): per
    building the quad between its facade's foot and its roof edge projected along the sun."""
    tan_el = max(math.tan(look.sun_elevation), 0.15)
    away = -np.array([look.to_sun[0], look.to_sun[2]])
    away = away / (np.linalg.norm(away) + 1e-9)
    polys = []
    for sgn, blds in plan.sides:
        if away[0] * sgn > 0:  # the sun is over the street: the shadows fall behind the facades
            continue
        for b in blds:
            z0, z1, x = b.z0, b.z1, b.x
            dx, dz = away * (b.height / tan_el)
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
            quad = clip_to_near_plane(quad)
            if len(quad) >= 3:
                polys.append(to_fixed_point(camera_frame_to_pixels(quad, cam)))
    for poly in polys:  # may overlap: one convex fill each
        cv2.fillConvexPoly(mask, poly, SHADOW_BIT, cv2.LINE_8, SHIFT)


def draw_facades(
    img,
    cam: Camera,
    look: Look,
    app: AppearanceConfig,
    plan: StreetPlan,
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
    assert fc is not None, "draw_facades is called for appearances with facades only"
    gy = cam.height_m  # the ground plane (level frame, y down)
    fade_col = np.asarray(look.fade_colour, float)
    lam_sky = look.ambient + 0.5 * look.diffuse
    for layer in plan.skyline:
        fade = 1.0 - math.exp(-layer.distance / look.fade_distance)
        col = np.clip(np.asarray(layer.colour, float) * lam_sky * (1 - fade) + fade_col * fade, 0, 255)
        uv, zz = cam.project(layer.outline)
        if (zz > NEAR).all():
            cv2.fillPoly(img, [to_fixed_point(uv)], col.tolist(), cv2.LINE_8, SHIFT)
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

    for sgn, blds in plan.sides:
        if not blds:
            continue
        far_to_near = blds[::-1]
        z0, z1 = _column(far_to_near, "z0"), _column(far_to_near, "z1")
        x, h = _column(far_to_near, "x"), _column(far_to_near, "height")
        ci, wi = _column(far_to_near, "colour_index", int), _column(far_to_near, "glass_index", int)
        win, shop = _column(far_to_near, "windows", bool), _column(far_to_near, "shopfront", bool)
        fh, sp = _column(far_to_near, "floor_height"), _column(far_to_near, "window_spacing")
        ww, wh = _column(far_to_near, "window_width"), _column(far_to_near, "window_height")
        jit = _column(far_to_near, "colour_jitter")
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
        hidden = np.zeros(len(far_to_near), bool)
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
    corners = np.concatenate([g[0] for g in groups])
    uv, depth = cam.project(corners.reshape(-1, 3))
    ok = np.asarray((depth.reshape(-1, 4) >= NEAR).all(axis=1))
    pts = to_fixed_point(np.where(ok[:, None, None], uv.reshape(-1, 4, 2), 0.0))
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
                    pcf = clip_to_near_plane(cam.to_camera(corners[j]))
                    if len(pcf) >= 3:
                        polys.append(to_fixed_point(camera_frame_to_pixels(pcf, cam)))
            i += n
            if polys:
                cv2.fillPoly(img, polys, colour, cv2.LINE_8, SHIFT)
                if strength is not None and wall:
                    cv2.fillPoly(strength, polys, facade_strength, cv2.LINE_8, SHIFT)


def draw_hood(img, ids, hood, look: Look, street_rng: np.random.Generator) -> bool:
    """The ego vehicle's bonnet: a wide arc across the bottom (clears the instance ids it covers)."""
    if hood.probability <= 0 or street_rng.random() >= hood.probability:
        return False
    H, W = img.shape[:2]
    hc = draw_uniform(street_rng, hood.height) * H
    curve = draw_uniform(street_rng, hood.curve)
    xs = np.linspace(0.0, W, 17)
    t = 2.0 * xs / W - 1.0
    ys = H - hc * (1.0 - curve * t * t)
    pts = np.concatenate([np.stack([xs, ys], 1), [[W, H + 1], [0, H + 1]]])
    pts = np.round(pts * SCALE).astype(np.int32)
    colour = np.asarray(hood.colours[int(street_rng.integers(len(hood.colours)))], float)
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
