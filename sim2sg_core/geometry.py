"""Pinhole camera geometry: ROS-free, simulator-free (numpy only).

Frames. The *level* camera frame has x right, y down, z forward (metres) with the flat ground at
``y = camera.height_m``. The real camera is pitched down by ``camera.pitch`` radians about x, so a
level-frame point ``p`` has camera coordinates ``R(pitch) @ p``. Pixel coordinates are continuous,
pixel ``i`` spanning ``[i, i+1)``.

:class:`Camera` is what the simulator renders through, what calibrations (``data/calibration.py``,
KITTI ``P2``) become and what label alignment lifts boxes with. ``sim2sg_core.sim.Camera`` and
``sim2sg_core.sim.scene.Camera`` are the same class (re-exported there).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Camera:
    """Pinhole camera at the origin of the level frame, pitched down by ``pitch`` radians."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    height_m: float = 1.65
    pitch: float = 0.0

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float, height_m: float = 1.65, pitch: float = 0.0) -> "Camera":
        """Square pixels, principal point at the image centre; fx from the horizontal field of view."""
        f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(
            fx=f,
            fy=f,
            cx=width / 2.0,
            cy=height / 2.0,
            width=int(width),
            height=int(height),
            height_m=float(height_m),
            pitch=float(pitch),
        )

    def with_pose(self, height_m: float, pitch: float) -> "Camera":
        return replace(self, height_m=float(height_m), pitch=float(pitch))

    def scaled(self, width: int, height: int) -> "Camera":
        """The same camera at another image size: intrinsics scaled per axis (``fx*sx, cx*sx,
        fy*sy, cy*sy``), pose kept. Pixel coordinates are continuous with pixel ``i`` spanning
        ``[i, i+1)``, so a resized image and this camera agree exactly. Different per-axis factors
        (another aspect ratio) give non-square pixels — what a per-axis image resize does too."""
        width, height = int(width), int(height)
        if width <= 0 or height <= 0:
            raise ValueError(f"Camera.scaled: image size must be positive, got {width}x{height}")
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        return replace(
            self, fx=self.fx * sx, fy=self.fy * sy, cx=self.cx * sx, cy=self.cy * sy, width=width, height=height
        )

    @property
    def hfov_deg(self) -> float:
        """Horizontal field of view in degrees (exact for an off-centre principal point:
        ``atan(cx/fx) + atan((width-cx)/fx)``)."""
        return math.degrees(math.atan2(self.cx, self.fx) + math.atan2(self.width - self.cx, self.fx))

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.width), int(self.height)

    @property
    def rotation(self) -> np.ndarray:
        """Level frame → camera frame rotation (3×3)."""
        c, s = math.cos(self.pitch), math.sin(self.pitch)
        return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def P(self) -> np.ndarray:
        """3×4 projection of *level-frame* points (what KITTI calls P2 for its label locations)."""
        return self.K @ np.hstack([self.rotation, np.zeros((3, 1))])

    @property
    def horizon_v(self) -> float:
        """Image row of the horizon (may lie outside the image)."""
        return self.cy - self.fy * math.tan(self.pitch)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """Level-frame points (N, 3) → camera-frame points (N, 3)."""
        p = np.asarray(points, dtype=np.float64)
        c, s = math.cos(self.pitch), math.sin(self.pitch)
        out = np.empty_like(p)
        out[..., 0] = p[..., 0]
        out[..., 1] = c * p[..., 1] - s * p[..., 2]
        out[..., 2] = s * p[..., 1] + c * p[..., 2]
        return out

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Level-frame points (N, 3) → pixel coordinates (N, 2) and camera depth (N,)."""
        pc = self.to_camera(points)
        z = pc[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.fx * pc[..., 0] / z + self.cx
            v = self.fy * pc[..., 1] / z + self.cy
        return np.stack([u, v], axis=-1), z

    def backproject_to_ground(self, u, v) -> np.ndarray:
        """Pixel(s) → level-frame ground points (..., 3); NaN for pixels at or above the horizon."""
        u = np.asarray(u, dtype=np.float64)
        v = np.asarray(v, dtype=np.float64)
        c, s = math.cos(self.pitch), math.sin(self.pitch)
        dx = (u - self.cx) / self.fx
        dcy = (v - self.cy) / self.fy
        dy = c * dcy + s
        dz = -s * dcy + c
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(dy > 1e-9, self.height_m / dy, np.nan)
        y = np.where(np.isfinite(t), self.height_m, np.nan)
        return np.stack([t * dx, y, t * dz], axis=-1)

    def to_dict(self) -> dict:
        return {k: float(v) if isinstance(v, float) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "Camera":
        return cls(**{k: d[k] for k in ("fx", "fy", "cx", "cy", "width", "height", "height_m", "pitch")})


__all__ = ["Camera"]
