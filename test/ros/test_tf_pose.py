"""The camera pose read from tf: the transform math (always), the tf2 lookup where tf2_ros imports."""

import math

import numpy as np
import pytest

from sim2sg_ros.tf_pose import pose_from_transform, quaternion_matrix, tf2_available


def _quat(axis, angle):
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    s = math.sin(angle / 2)
    return (*(axis * s), math.cos(angle / 2))


def _optical_in_base(pitch_down: float, yaw: float = 0.0):
    """Quaternion of an optical frame (z forward, x right, y down) in a z-up base frame (x forward),
    looking ``pitch_down`` below the horizon after turning ``yaw`` to the left."""
    # optical -> level body frame (x forward, y left, z up): columns are the optical axes in the base
    level = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    c, s = math.cos(pitch_down), math.sin(pitch_down)
    pitch = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])  # nose down about the base y axis
    cy, sy = math.cos(yaw), math.sin(yaw)
    yaw_m = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    r = yaw_m @ pitch @ level
    # rotation matrix -> quaternion (r is proper and well away from the 180 degree case here)
    w = math.sqrt(max(0.0, 1 + r[0, 0] + r[1, 1] + r[2, 2])) / 2
    return ((r[2, 1] - r[1, 2]) / (4 * w), (r[0, 2] - r[2, 0]) / (4 * w), (r[1, 0] - r[0, 1]) / (4 * w), w), r


@pytest.mark.parametrize("pitch, yaw", [(0.0, 0.0), (0.1, 0.0), (-0.05, 0.3), (0.6, -1.2)])
def test_height_and_pitch_of_an_optical_frame(pitch, yaw):
    q, r = _optical_in_base(pitch, yaw)
    np.testing.assert_allclose(quaternion_matrix(*q), r, atol=1e-12)
    height, got = pose_from_transform((0.4, -0.1, 1.52), q)
    assert height == pytest.approx(1.52) and got == pytest.approx(pitch, abs=1e-9)


def test_bad_quaternion_is_refused():
    with pytest.raises(ValueError, match="quaternion"):
        pose_from_transform((0, 0, 1), (0, 0, 0, 0))
    # an unnormalised quaternion is normalised
    assert pose_from_transform((0, 0, 1), tuple(2 * v for v in _optical_in_base(0.2)[0]))[1] == pytest.approx(0.2)


def test_tf_lookup_where_tf2_ros_imports():
    ok, reason = tf2_available()
    if not ok:
        pytest.skip(reason)
    rclpy = pytest.importorskip("rclpy")
    from geometry_msgs.msg import TransformStamped
    from sim2sg_ros.tf_pose import TfCameraPose

    rclpy.init()
    try:
        node = rclpy.create_node("tf_pose_test")
        pose = TfCameraPose(node, "base_footprint")
        assert pose.lookup("camera_optical_frame") is None  # nothing in tf yet
        t = TransformStamped()
        t.header.frame_id, t.child_frame_id = "base_footprint", "camera_optical_frame"
        t.transform.translation.z = 1.6
        q, _ = _optical_in_base(0.05)
        t.transform.rotation.x, t.transform.rotation.y, t.transform.rotation.z, t.transform.rotation.w = q
        pose.buffer.set_transform_static(t, "test")
        height, pitch = pose.lookup("camera_optical_frame")
        assert height == pytest.approx(1.6) and pitch == pytest.approx(0.05)
        node.destroy_node()
    finally:
        rclpy.shutdown()
