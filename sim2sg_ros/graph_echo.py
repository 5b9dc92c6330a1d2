"""Print the SceneGraphs arriving on a topic (a `ros2 topic echo` for machines without ros2cli).

    python -m sim2sg_ros.graph_echo [--topic scene_graph] [--count N] [--json] [--timeout S]

One line per message (stamp, objects, relationships, first triplets), or one JSON object per line
with --json (the core SceneGraph's dict plus the header), for scripts and tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from sim2sg_ros.topics import SCENE_GRAPH_DEPTH, SCENE_GRAPH_TOPIC


def graph_record(msg) -> dict:
    """The message as a plain dict: header plus the core SceneGraph's dict."""
    from sim2sg_ros.conversions import msg_to_scene_graph

    d = msg_to_scene_graph(msg).to_dict()
    d["stamp_ns"] = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
    d["frame_id"] = msg.header.frame_id
    d["model_version"] = msg.model_version
    return d


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--topic",
        default=SCENE_GRAPH_TOPIC,
        help=f"SceneGraph topic (default {SCENE_GRAPH_TOPIC}, i.e. /{SCENE_GRAPH_TOPIC}; "
        "/cam_front/scene_graph for a namespaced camera)",
    )
    ap.add_argument("--count", type=int, default=0, help="exit after N messages (0: run until Ctrl-C)")
    ap.add_argument(
        "--timeout",
        type=float,
        default=0.0,
        help="exit with status 1 after S seconds without reaching --count (0: wait forever)",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object per message")
    ap.add_argument("--reliable", action="store_true", help="subscribe with reliable QoS (default best effort)")
    args = ap.parse_args(argv)

    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy, HistoryPolicy
    from sim2sg_ros.msg import SceneGraph

    rclpy.init()
    node = rclpy.create_node("scene_graph_echo")
    qos = QoSProfile(
        depth=SCENE_GRAPH_DEPTH,
        history=HistoryPolicy.KEEP_LAST,
        reliability=ReliabilityPolicy.RELIABLE if args.reliable else ReliabilityPolicy.BEST_EFFORT,
    )
    received = 0

    def on_graph(msg):
        nonlocal received
        received += 1
        if args.json:
            print(json.dumps(graph_record(msg)), flush=True)
        else:
            names = list(msg.class_names)
            trip = [
                f"{msg.objects[r.subject_index].class_name} {r.predicate} {msg.objects[r.object_index].class_name}"
                for r in msg.relationships[:3]
            ]
            print(
                f"[{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}] {len(msg.objects)} objects, "
                f"{len(msg.relationships)} relationships ({msg.model_id or 'no model id'}; classes {names})"
                + (f": {'; '.join(trip)}" if trip else ""),
                flush=True,
            )

    node.create_subscription(SceneGraph, args.topic, on_graph, qos)
    start = time.monotonic()
    status = 0
    try:
        while rclpy.ok() and (args.count <= 0 or received < args.count):
            rclpy.spin_once(node, timeout_sec=0.1)
            if args.timeout and time.monotonic() - start > args.timeout:
                print(
                    f"graph_echo: timed out after {args.timeout:.1f} s with {received} of {args.count} "
                    f"messages on {args.topic}",
                    file=sys.stderr,
                )
                status = 1
                break
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())
