"""Rasterisation primitives shared by every drawing stage: fixed-point OpenCV coordinates, near-plane
clipping and the projection of points already in the camera frame."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from sim2sg_core.geometry import Camera

SHIFT = 4  # sub-pixel bits for OpenCV fills
SCALE = float(1 << SHIFT)
NEAR = 0.2  # near clipping plane (m)
#: OpenCV fills are inclusive of the polygon outline, so a raster box is the projected extent grown
#: by about half a pixel on every side (measured mean 0.5 px); reconstruction undoes it.
RASTER_PAD = 0.5


def to_fixed_point(uv: np.ndarray) -> np.ndarray:
    """Pixel coordinates → OpenCV fixed-point polygon points (SHIFT bits)."""
    return np.round((uv - 0.5) * SCALE).astype(np.int32)


def camera_frame_to_pixels(pc: np.ndarray, cam: Camera) -> np.ndarray:
    """Camera-frame points (..., 3) → pixel coordinates (..., 2).

    For polygons clipped at the near plane: clipping happens in the camera frame, and
    :meth:`Camera.project` takes level-frame points (going back to the level frame would round
    differently). Level-frame points use :meth:`Camera.project` (the same arithmetic)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.stack([cam.fx * pc[..., 0] / pc[..., 2] + cam.cx, cam.fy * pc[..., 1] / pc[..., 2] + cam.cy], -1)


def clip_to_near_plane(poly_cam: np.ndarray) -> np.ndarray:
    """The part of a camera-frame polygon in front of the near plane (rare: objects and quads that
    reach behind the camera)."""
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


def project_sphere(cam: Camera, centre: np.ndarray, radius: float) -> Optional[tuple[float, float, float]]:
    """Image centre (u, v) and radius (px) of a sphere's outline; None if it reaches the near plane."""
    uv, depth = cam.project(centre[None])
    z = depth[0]
    if z < NEAR + radius:
        return None
    rp = cam.fx * radius / math.sqrt(max(z**2 - radius**2, 1e-6))
    return uv[0, 0], uv[0, 1], rp
