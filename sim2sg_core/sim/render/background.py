"""The background: sky gradient and ground regions (default ground, zones such as road, sidewalks, lane
dashes, a table top) as a per-pixel region/distance label map cached per camera, coloured per image
through a lookup table (one ``cv2.LUT`` instead of per-pixel shading)."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Optional

import cv2
import numpy as np

from sim2sg_core.geometry import Camera
from sim2sg_core.sim.domains import AppearanceConfig, EnvironmentConfig, GroundLayout
from sim2sg_core.sim.render.look import Look, draw_uniform
from sim2sg_core.sim.render.raster import NEAR, SHIFT, camera_frame_to_pixels, clip_to_near_plane, to_fixed_point

LEVELS = 16  # distance / gradient levels per background region
MAX_REGIONS = 8  # sky, ground, up to 6 zones → labels < 128
SHADOW_BIT = 128  # layout label bit: ground in shadow


class Background:
    """Layouts and background images of one environment, cached per camera (and appearance)."""

    def __init__(self, env: EnvironmentConfig, *, cache_size: int = 64):
        self.env = env
        self._layouts: OrderedDict = OrderedDict()
        self._images: OrderedDict = OrderedDict()
        self._cache_size = cache_size
        if len(env.zones) + 2 > MAX_REGIONS:
            raise ValueError(
                f"{env.source_path}: at most {MAX_REGIONS - 2} ground zones are supported, got {len(env.zones)}"
            )
        zmin, zmax = 1.0, max(env.max_ground_distance, 2.0)
        self.level_z = np.geomspace(zmin, zmax, LEVELS - 1)  # distance of each ground level

    def layout(self, cam: Camera, ground: Optional[GroundLayout] = None) -> np.ndarray:
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
        level_row = np.searchsorted(self.level_z, np.where(ground_row, zrow, np.inf)).astype(np.uint8)
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
        """:meth:`layout` for a domain's own ground: the zones are filled as projected ground
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
        corners = np.concatenate(quads)
        uv, depth = cam.project(corners.reshape(-1, 3))
        ok = np.asarray((depth.reshape(-1, 4) >= NEAR).all(axis=1))
        pix = to_fixed_point(np.where(ok[:, None, None], uv.reshape(-1, 4, 2), 0.0))
        owners = np.asarray(owner)
        for i in range(len(zones)):
            sel = owners == i
            polys = list(pix[sel & ok])
            for j in np.flatnonzero(sel & ~ok).tolist():
                quad = clip_to_near_plane(cam.to_camera(corners[j]))
                if len(quad) >= 3:
                    polys.append(to_fixed_point(camera_frame_to_pixels(quad, cam)))
            if polys:
                cv2.fillPoly(region, polys, 2 + i, cv2.LINE_8, SHIFT)

    def region_names(self, app: AppearanceConfig) -> list:
        """Colour names of layout regions 1, 2, ... (ground, zones)."""
        if app.ground is not None:
            return [app.ground.colour] + [z.colour for z in app.ground.zones]
        return [self.env.ground_colour] + [z.colour for z in self.env.zones]

    def colour_table(self, look: Look, shadow: float, app: Optional[AppearanceConfig] = None) -> np.ndarray:
        """(256, 1, 3) colour table for layout labels; labels with the shadow bit are darkened."""
        lut = np.zeros((256, 3), np.float64)
        alpha_ground = 1.0 - np.exp(-self.level_z / look.fade_distance)
        alpha = np.concatenate([alpha_ground, [1.0]])[:, None]  # (LEVELS, 1)
        names = (
            self.region_names(app) if app is not None else [self.env.ground_colour] + [z.colour for z in self.env.zones]
        )
        for r, name in enumerate(names, start=1):
            lut[r * LEVELS : (r + 1) * LEVELS] = look.colours[name] * (1 - alpha) + look.fade_colour * alpha
        if self.env.sky:
            k = np.linspace(0.0, 1.0, LEVELS)[:, None]
            lut[0:LEVELS] = look.colours["sky_horizon"] * (1 - k) + look.colours["sky_top"] * k
        lut[SHADOW_BIT:] = lut[:SHADOW_BIT] * (1.0 - shadow)
        return np.clip(np.round(lut), 0, 255).astype(np.uint8).reshape(256, 1, 3)

    def image(
        self, cam: Camera, look: Look, app: AppearanceConfig, shadow_mask: Optional[np.ndarray] = None
    ) -> np.ndarray:
        """This image's background; cached per camera and appearance when nothing in it is drawn per image."""
        fixed = (
            not app.random_colours
            and app.colour_jitter == 0
            and app.fade_distance[0] == app.fade_distance[1]
            and shadow_mask is None
        )
        key = (id(app), cam.width, cam.height, cam.fx, cam.fy, cam.cx, cam.cy, cam.height_m, cam.pitch)
        if fixed:
            hit = self._images.get(key)
            if hit is not None and hit[0] is app:
                return hit[1].copy()
        layout = self.layout(cam, app.ground)
        if shadow_mask is not None:
            layout = cv2.bitwise_or(layout, shadow_mask)
        img = cv2.LUT(cv2.merge([layout, layout, layout]), self.colour_table(look, look.shadows, app))
        if fixed:
            self._images[key] = (app, img.copy())
            if len(self._images) > self._cache_size:
                self._images.popitem(last=False)
        return img

    def texture_strength(self, cam: Camera, app: AppearanceConfig, street_rng) -> np.ndarray:
        """Per-pixel texture strength (float32 H×W) of the background: ground regions by colour name
        (fading with distance) and sky; facades are filled in as they are drawn, objects by class
        afterwards (:func:`class_texture_strength`); the sensor multiplies it with the texture bank."""
        table = np.zeros(256, np.float32)
        falloff = np.concatenate([1.0 / (1.0 + self.level_z / 30.0), [0.0]]).astype(np.float32)
        for r, name in enumerate(["sky"] + self.region_names(app)):
            rr = app.region_texture.get(name)
            if rr is not None:
                table[r * LEVELS : (r + 1) * LEVELS] = draw_uniform(street_rng, rr) * (1.0 if r == 0 else falloff)
        table[SHADOW_BIT:] = table[:SHADOW_BIT]
        return cv2.LUT(self.layout(cam, app.ground), table.reshape(256, 1))


def class_texture_strength(
    strength: np.ndarray, ids: np.ndarray, objs, app: AppearanceConfig, street_rng
) -> np.ndarray:
    """Objects' pixels take their class's texture strength (0 for classes without one)."""
    per_cls = {c: draw_uniform(street_rng, r) for c, r in sorted(app.class_texture.items())}
    if not objs:
        return strength
    per_obj = np.array([0.0] + [per_cls.get(o.class_name, 0.0) for o in objs], np.float32)
    on = ids > 0
    strength[on] = per_obj[ids[on]]
    return strength
