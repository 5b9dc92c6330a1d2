"""Play a rosbag2 bag (MCAP or sqlite3) onto ROS topics, with ``--clock`` publishing the bag's time on
``/clock``: what ``ros2 bag play --clock`` does, for machines without rosbag2 (pip-installed ROS).

    python -m sim2sg_ros.bag_play BAG [--clock] [--rate 1.0] [--loop] [--topics /camera/image_raw ...]

Messages go out in recording order, spaced by their recorded times divided by ``--rate``, exactly as recorded
(serialized CDR, headers and stamps untouched). With ``--clock``, ``/clock`` carries the recording time of
each message just before it (and every 25 ms in between), so nodes run with ``use_sim_time:=true`` see the
bag's time. Image topics use sensor-data QoS (best effort), everything else reliable. Waits up to
``--wait`` seconds for a subscriber on every played topic first; exits 0 when done.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from typing import Optional

from sim2sg_ros.node_runtime import EXIT_BAD_INPUT, EXIT_OK

CLOCK_PERIOD_S = 0.025  # /clock between messages (ros2 bag play's default --clock 40 Hz)


def message_class(msgtype: str):
    """``sensor_msgs/msg/Image`` → the rclpy message class."""
    pkg, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


def main(argv: Optional[list] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim2sg_ros.bag_play", description=__doc__.split("\n\n")[0])
    ap.add_argument("bag", help="bag folder (or its .mcap / .db3 file)")
    ap.add_argument("--clock", action="store_true", help="publish the bag's time on /clock")
    ap.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    ap.add_argument("--loop", action="store_true", help="play again from the start until interrupted")
    ap.add_argument("--topics", nargs="*", default=None, help="only these topics (default: all)")
    ap.add_argument("--wait", type=float, default=30.0, help="seconds to wait for subscribers before playing")
    args = ap.parse_args(argv)
    if args.rate <= 0:
        print("error: --rate must be positive", file=sys.stderr)
        return EXIT_BAD_INPUT

    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rosbags.rosbag2 import Reader
    from rosgraph_msgs.msg import Clock

    try:
        reader = Reader(args.bag)
        reader.open()
    except Exception as exc:  # noqa: BLE001 - rosbags' ReaderError, OSError: one sentence
        print(f"error: cannot open bag {args.bag}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    conns = [c for c in reader.connections if args.topics is None or c.topic in args.topics]
    if not conns:
        print(f"error: {args.bag} has none of the topics {args.topics}", file=sys.stderr)
        return EXIT_BAD_INPUT

    rclpy.init()
    node = rclpy.create_node("bag_play")
    try:
        pubs = {}
        for c in conns:
            image = c.msgtype.startswith("sensor_msgs/msg/") and "Image" in c.msgtype
            qos = QoSProfile(
                depth=10, reliability=ReliabilityPolicy.BEST_EFFORT if image else ReliabilityPolicy.RELIABLE
            )
            pubs[c.id] = node.create_publisher(message_class(c.msgtype), c.topic, qos)
        clock_pub = node.create_publisher(Clock, "/clock", 10) if args.clock else None
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline and not all(p.get_subscription_count() > 0 for p in pubs.values()):
            time.sleep(0.05)

        def tick(t_ns: int) -> None:
            if clock_pub is not None:
                msg = Clock()
                msg.clock.sec, msg.clock.nanosec = divmod(int(t_ns), 1_000_000_000)
                clock_pub.publish(msg)

        while True:
            t0_bag: Optional[int] = None
            t0_wall = time.monotonic()
            n = 0
            for conn, t_ns, raw in reader.messages(connections=conns):
                if t0_bag is None:
                    t0_bag = t_ns
                due = t0_wall + (t_ns - t0_bag) / 1e9 / args.rate
                while True:  # the clock runs on between messages
                    now = time.monotonic()
                    if now >= due:
                        break
                    tick(t0_bag + int((now - t0_wall) * args.rate * 1e9))
                    time.sleep(min(CLOCK_PERIOD_S, due - now))
                tick(t_ns)
                pubs[conn.id].publish(bytes(raw))  # serialized CDR, exactly as recorded
                n += 1
            print(f"bag_play: played {n} messages from {args.bag}", flush=True)
            if not args.loop:
                break
        time.sleep(0.2)  # let the last messages leave
    except KeyboardInterrupt:
        pass
    finally:
        reader.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
