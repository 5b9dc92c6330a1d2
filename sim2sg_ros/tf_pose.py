"""The camera's mounting height and pitch from tf (``base_frame`` → the image's ``frame_id``).

Ground positions need the camera's height above the ground and its downward pitch. On a robot they
live in tf: the transform from a ground-level base frame (REP 105's ``base_footprint``) to the camera's
optical frame (z forward, y down). Where ``tf2_ros`` imports (a stock ROS 2 install), :class:`TfCameraPose`
looks it up; where it does not (the pip-installed ROS on our CI), :func:`tf2_available` says so and the
node keeps its ``camera_height`` / ``camera_pitch`` parameters.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np


def tf2_available() -> tuple[bool, str]:
    """(importable, reason when not)."""
    try:
        import tf2_ros  # noqa: F401  - optional: present on a stock ROS 2 install, not in the pip wheels
    except ImportError as exc:
        return False, f"tf2_ros is not importable ({exc}); using the camera_height/camera_pitch parameters"
    return True, ""


def quaternion_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    """3x3 rotation of a unit quaternion (normalised first; a zero quaternion is an error)."""
    q = np.array([x, y, z, w], dtype=np.float64)
    n = float(np.linalg.norm(q))
    if not math.isfinite(n) or n < 1e-9:
        raise ValueError(f"invalid rotation quaternion {q.tolist()}")
    x, y, z, w = q / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def pose_from_transform(translation, rotation_xyzw) -> tuple[float, float]:
    """(height m, pitch rad, positive looking down) of an optical camera frame given its pose in a
    ground-level base frame (z up): the height is the camera origin's z; the pitch is the angle of the
    optical axis (the camera frame's +z) below the base frame's horizontal plane. Roll is ignored."""
    t = np.asarray(translation, dtype=np.float64).reshape(3)
    axis = quaternion_matrix(*rotation_xyzw) @ np.array([0.0, 0.0, 1.0])
    pitch = math.atan2(-axis[2], math.hypot(axis[0], axis[1]))
    return float(t[2]), float(pitch)


class TfCameraPose:
    """Looks up ``base_frame`` → camera frame on a node (tf2_ros must be importable)."""

    def __init__(self, node, base_frame: str):
        import tf2_ros  # optional dependency (see tf2_available)

        self.base_frame = base_frame
        self.buffer = tf2_ros.Buffer()
        self.listener = tf2_ros.TransformListener(self.buffer, node)

    def lookup(self, camera_frame: str) -> Optional[tuple[float, float]]:
        """(height, pitch) from the latest transform, or None while tf has none (not an error: tf fills up)."""
        from rclpy.time import Time

        try:
            tr = self.buffer.lookup_transform(self.base_frame, camera_frame, Time())
        except Exception:  # noqa: BLE001 - tf2's lookup/extrapolation/connectivity errors: not known yet
            return None
        t, r = tr.transform.translation, tr.transform.rotation
        return pose_from_transform((t.x, t.y, t.z), (r.x, r.y, r.z, r.w))


__all__ = ["TfCameraPose", "pose_from_transform", "quaternion_matrix", "tf2_available"]
