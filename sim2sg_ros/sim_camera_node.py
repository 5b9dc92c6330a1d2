"""sim_camera_node: the simulator as a ROS camera (images + CameraInfo at a fixed rate).

Frame ``k`` shows simulator sample ``k mod cache_frames`` of ``(env, domain, seed)`` (or sample ``k``
with ``cache_frames: 0``), so a consumer can recover the exact label of every image it receives:
the optional ``stamp_log`` file pairs each published stamp with its sample index. Frames are
rendered and encoded once and re-stamped on publish, so the camera keeps its rate on a busy CPU.
"""

from __future__ import annotations

import time

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from sim2sg_ros import conversions
from sim2sg_ros.node_runtime import run_node
from sim2sg_ros.params import SIM_CAMERA_NODE, SIM_CAMERA_PARAMS, declare
from sim2sg_ros.topics import IMAGE_TOPIC, camera_info_topic, image_qos


def camera_info_msg(camera, frame_id: str) -> CameraInfo:
    """CameraInfo (plumb bob, no distortion) for a core ``sim2sg_core.sim.Camera``."""
    info = CameraInfo()
    info.header.frame_id = frame_id
    info.width, info.height = int(camera.width), int(camera.height)
    info.distortion_model = "plumb_bob"
    info.d = [0.0] * 5
    info.k = [float(camera.fx), 0.0, float(camera.cx), 0.0, float(camera.fy), float(camera.cy), 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [
        float(camera.fx),
        0.0,
        float(camera.cx),
        0.0,
        0.0,
        float(camera.fy),
        float(camera.cy),
        0.0,
        0.0,
        0.0,
        1.0,
        0.0,
    ]
    return info


class SimCameraNode(Node):
    """Parameters: :data:`sim2sg_ros.params.SIM_CAMERA_PARAMS`."""

    def __init__(self, **node_kwargs):
        super().__init__(SIM_CAMERA_NODE, **node_kwargs)
        self.params = p = declare(self, SIM_CAMERA_PARAMS)
        from sim2sg_core.sim import Simulator

        size = (int(p["width"]), int(p["height"])) if p["width"] and p["height"] else None
        self.sim = Simulator(env=p["env"], domain=p["domain"], seed=int(p["seed"]), image_size=size)
        qos = image_qos(p["reliable"], p["qos_depth"])
        topic = self.resolve_topic_name(IMAGE_TOPIC)
        if p["compressed"]:
            self.topic = topic + "/compressed"
            self._pub = self.create_publisher(CompressedImage, self.topic, qos)
        else:
            self.topic = topic
            self._pub = self.create_publisher(Image, self.topic, qos)
        self._info_pub = self.create_publisher(CameraInfo, camera_info_topic(topic), qos)
        self._info = camera_info_msg(self.sim.camera, p["frame_id"])
        self._cache: dict = {}
        if p["cache_frames"]:
            t0 = time.monotonic()
            for i in range(int(p["cache_frames"])):
                self._frame(i)
            self.get_logger().info(
                f"rendered {p['cache_frames']} frames of {p['env']}/{p['domain']} in {time.monotonic() - t0:.1f} s"
            )
        self._stamp_log = open(p["stamp_log"], "a", buffering=1) if p["stamp_log"] else None
        self.count = 0
        self._timer = self.create_timer(1.0 / float(p["rate"]), self._tick)
        self.get_logger().info(
            f"publishing {self.sim.image_size[0]}x{self.sim.image_size[1]} "
            f"{'compressed ' + p['compressed_format'] if p['compressed'] else p['encoding']} "
            f"images on {self.topic} at {p['rate']} Hz"
        )

    def sample_index(self, k: int) -> int:
        n = int(self.params["cache_frames"])
        return k % n if n else k

    def _frame(self, index: int):
        msg = self._cache.get(index)
        if msg is None:
            rgb = self.sim.sample(index).image
            p = self.params
            if p["compressed"]:
                msg = conversions.rgb_to_compressed_msg(rgb, p["compressed_format"])
            else:
                msg = conversions.rgb_to_image_msg(rgb, p["encoding"])
            msg.header.frame_id = p["frame_id"]
            if p["cache_frames"]:
                self._cache[index] = msg
        return msg

    def _tick(self) -> None:
        limit = int(self.params["num_frames"])
        if limit and self.count >= limit:
            self._timer.cancel()
            self.get_logger().info(f"published {self.count} frames; done")
            self.context.try_shutdown()  # ends spin(): the process exits with status 0
            return
        index = self.sample_index(self.count)
        msg = self._frame(index)
        stamp = self.get_clock().now().to_msg()
        msg.header.stamp = stamp
        self._info.header.stamp = stamp
        self._info_pub.publish(self._info)
        self._pub.publish(msg)
        if self._stamp_log is not None:
            self._stamp_log.write(f"{stamp.sec} {stamp.nanosec} {index}\n")
        self.count += 1

    def close(self) -> None:
        if self._stamp_log is not None:
            self._stamp_log.close()


def main(args=None) -> int:
    """``ros2 run sim2sg_ros sim_camera_node [--ros-args ...]``."""
    return run_node(SimCameraNode, args)


if __name__ == "__main__":
    import sys

    sys.exit(main())
