"""Child process for the cross-process test: publish one SceneGraph (from a JSON file) until killed.

Usage: python publish_graph.py GRAPH.json STAMP_SEC STAMP_NANOSEC
"""

import json
import sys

import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header

from sim2sg_core.scene_graph import SceneGraph
from sim2sg_ros.conversions import scene_graph_to_msg
from sim2sg_ros.msg import SceneGraph as SceneGraphMsg


def main():
    graph = SceneGraph.from_dict(json.load(open(sys.argv[1])))
    header = Header(frame_id="camera")
    header.stamp.sec, header.stamp.nanosec = int(sys.argv[2]), int(sys.argv[3])
    rclpy.init()
    node = rclpy.create_node("test_graph_publisher")
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    pub = node.create_publisher(SceneGraphMsg, "/scene_graph", qos)
    msg = scene_graph_to_msg(graph, header, model_version="test")
    node.create_timer(0.2, lambda: pub.publish(msg))
    print("publishing", flush=True)
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
