"""Topic names and QoS profiles of every sim2sg node, in one place.

Names are relative, so a namespace (``-r __ns:=/cam_front``, or ``PushRosNamespace`` in a launch file)
moves a whole camera pipeline: ``/cam_front/camera/image_raw`` in, ``/cam_front/scene_graph`` out; in the
root namespace they resolve to ``/camera/image_raw`` and ``/scene_graph``. Remap the image topic to
use another camera (``-r camera/image_raw:=/my/camera/image``); its ``camera_info`` and ``compressed``
siblings follow it, as image_transport does. ``/diagnostics`` stays absolute: diagnostic aggregators
listen there.
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

#: Camera images in (sensor_msgs/Image; CompressedImage on ``<IMAGE_TOPIC>/compressed``).
IMAGE_TOPIC = "camera/image_raw"
#: sensor_msgs/CameraInfo, beside the image topic.
CAMERA_INFO_NAME = "camera_info"
#: sim2sg_ros/SceneGraph out.
SCENE_GRAPH_TOPIC = "scene_graph"
#: Annotated image for people (published only while someone subscribes).
DEBUG_IMAGE_TOPIC = "~/debug_image"
#: visualization_msgs/MarkerArray of the graph in 3-D (computed only while someone subscribes).
MARKERS_TOPIC = "~/markers"
DIAGNOSTICS_TOPIC = "/diagnostics"
#: Depth of the SceneGraph publisher / subscribers (reliable: planners should not miss graphs).
SCENE_GRAPH_DEPTH = 10


def camera_info_topic(image_topic: str) -> str:
    """The CameraInfo topic beside a *resolved* image topic (image_transport's rule):
    ``/cam_front/camera/image_raw`` → ``/cam_front/camera/camera_info``."""
    return image_topic.rsplit("/", 1)[0] + "/" + CAMERA_INFO_NAME


def image_qos(reliable: bool, depth: int) -> QoSProfile:
    """Sensor-data QoS (best effort, keep last ``depth``, volatile) unless ``reliable``."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=int(depth),
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.VOLATILE,
    )


def scene_graph_qos() -> QoSProfile:
    """Reliable, keep last :data:`SCENE_GRAPH_DEPTH`: what the node publishes and graph_echo reads."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=SCENE_GRAPH_DEPTH,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )


def markers_qos() -> QoSProfile:
    """Reliable, keep last 1 (each array replaces the previous one whole: DELETEALL first)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )
