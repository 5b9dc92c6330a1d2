"""Scene descriptions: what the generator produces, the renderer draws and reconstruction recovers.

The camera (:class:`sim2sg_core.geometry.Camera`) is re-exported here for older imports.

Frames. The *level* camera frame has x right, y down, z forward (metres) with the flat ground at
``y = camera.height_m``. The real camera is pitched down by ``camera.pitch`` radians about x, so a
level-frame point ``p`` has camera coordinates ``R(pitch) @ p``. Object positions (and hence the
label positions used by the relationship rule) are level-frame bottom centres, so ``position[1]``
equals the camera height for an object standing on the ground.

Yaw follows KITTI ``rotation_y``: the object's length axis points along ``(cos yaw, 0, -sin yaw)``;
a car driving away from the camera has yaw = -pi/2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from sim2sg_core.geometry import Camera  # re-exported: sim2sg_core.sim.scene.Camera stays importable


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
        return {
            "class_name": self.class_name,
            "position": [float(v) for v in self.position],
            "size": [float(v) for v in self.size],
            "yaw": float(self.yaw),
            "colour_index": int(self.colour_index),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ObjectSpec":
        return cls(
            class_name=d["class_name"],
            position=vec3(d["position"]),
            size=vec3(d["size"]),
            yaw=float(d.get("yaw", 0.0)),
            colour_index=int(d.get("colour_index", 0)),
        )


@dataclass
class SceneDescription:
    """Camera + objects + a seed for the appearance draws (lighting, jitter, noise)."""

    camera: Camera
    objects: list[ObjectSpec] = field(default_factory=list)
    seed: int = 0
    env: str = ""

    def to_dict(self) -> dict:
        return {
            "env": self.env,
            "seed": int(self.seed),
            "camera": self.camera.to_dict(),
            "objects": [o.to_dict() for o in self.objects],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "SceneDescription":
        return cls(
            camera=Camera.from_dict(d["camera"]),
            objects=[ObjectSpec.from_dict(o) for o in d.get("objects", [])],
            seed=int(d.get("seed", 0)),
            env=d.get("env", ""),
        )


__all__ = ["Camera", "ObjectSpec", "SceneDescription"]
