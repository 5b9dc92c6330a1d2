"""Scene descriptions: what the generator produces, the renderer draws and reconstruction recovers.

Frames. The *level* camera frame has x right, y down, z forward (metres) with the flat ground at
``y = camera.height_m``. The real camera is pitched down by ``camera.pitch`` radians about x, so a
level-frame point ``p`` has camera coordinates ``R(pitch) @ p``. Object positions (and hence the
label positions used by the relationship rule) are level-frame bottom centres, so ``position[1]``
equals the camera height for an object standing on the ground.

Yaw follows KITTI ``rotation_y``: the object's length axis points along ``(cos yaw, 0, -sin yaw)``;
a car driving away from the camera has yaw = -pi/2.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Iterable

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
    def from_fov(cls, width: int, height: int, hfov_deg: float, height_m: float = 1.65,
                 pitch: float = 0.0) -> "Camera":
        """Square pixels, principal point at the image centre; fx from the horizontal field of view."""
        f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(fx=f, fy=f, cx=width / 2.0, cy=height / 2.0, width=int(width), height=int(height),
                   height_m=float(height_m), pitch=float(pitch))

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
        return replace(self, fx=self.fx * sx, fy=self.fy * sy, cx=self.cx * sx, cy=self.cy * sy,
                       width=width, height=height)

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


def vec3(values: Iterable[float]) -> tuple[float, float, float]:
    """Exactly three numbers (a position or a (height, width, length) size) as a float 3-tuple."""
    a, b, c = (float(v) for v in values)
    return a, b, c


@dataclass
class ObjectSpec:
    """One object of a scene: class, level-frame bottom-centre position, size (h, w, l), yaw.

    ``colour_index`` picks the body colour from the rendering appearance's palette, so the same
    scene can be drawn in another domain's appearance (label alignment).
    """

    class_name: str
    position: tuple[float, float, float]
    size: tuple[float, float, float]
    yaw: float = 0.0
    colour_index: int = 0

    def to_dict(self) -> dict:
        return {"class_name": self.class_name, "position": [float(v) for v in self.position],
                "size": [float(v) for v in self.size], "yaw": float(self.yaw),
                "colour_index": int(self.colour_index)}

    @classmethod
    def from_dict(cls, d: dict) -> "ObjectSpec":
        return cls(class_name=d["class_name"], position=vec3(d["position"]),
                   size=vec3(d["size"]), yaw=float(d.get("yaw", 0.0)),
                   colour_index=int(d.get("colour_index", 0)))


@dataclass
class SceneDescription:
    """Camera + objects + a seed for the appearance draws (lighting, jitter, noise)."""

    camera: Camera
    objects: list[ObjectSpec] = field(default_factory=list)
    seed: int = 0
    env: str = ""

    def to_dict(self) -> dict:
        return {"env": self.env, "seed": int(self.seed), "camera": self.camera.to_dict(),
                "objects": [o.to_dict() for o in self.objects]}

    @classmethod
    def from_dict(cls, d: dict) -> "SceneDescription":
        return cls(camera=Camera.from_dict(d["camera"]),
                   objects=[ObjectSpec.from_dict(o) for o in d.get("objects", [])],
                   seed=int(d.get("seed", 0)), env=d.get("env", ""))


__all__ = ["Camera", "ObjectSpec", "SceneDescription"]
