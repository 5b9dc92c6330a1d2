"""Simulated time: a recorded rosbag2 bag played with --clock through perception_node run with use_sim_time."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not importable: run `make setup` and `source scripts/env.sh`")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402

pytestmark = pytest.mark.ros

W, H = 320, 96
#: the recording's time: 2001-09-09, far from this machine's clock, so a mixed-up clock cannot pass
START_NS = 1_000_000_000 * 1_000_000_000
N_FRAMES, RATE = 16, 8.0


@pytest.mark.slow
def test_bag_with_clock_through_the_node_on_simulated_time(tmp_path, node_env, node_procs, ros_client, tiny_checkpoint):
    """Graph stamps are the recorded image stamps; the node's clock is the bag's (diagnostics stamps, the graph's
    age at publication); processing time and latency stay the small wall-clock figures; after the bag ends (the
    simulated clock stands still) diagnostics keep coming and say no frames arrive."""
    from sim2sg_core.data.bags import write_image_bag
    from sim2sg_core.sim import Simulator
    from sim2sg_ros.msg import SceneGraph

    sim = Simulator(env="drive", domain="target", seed=2, image_size=(W, H))
    period = int(1e9 / RATE)
    stamps = [START_NS + k * period for k in range(N_FRAMES)]
    bag = write_image_bag(
        tmp_path / "drive_bag",
        [(s, sim.sample(k % 4).image) for k, s in enumerate(stamps)],
        camera=sim.camera,
        frame_id="camera_optical_frame",
        rate_hz=RATE,
    )
    ckpt, model_id = tiny_checkpoint()
    graphs, diags = [], []
    ros_client.node.create_subscription(SceneGraph, "/scene_graph", graphs.append, 50)
    ros_client.node.create_subscription(
        DiagnosticArray, "/diagnostics", lambda m: diags.extend((m.header.stamp, s) for s in m.status), 50
    )
    per = node_procs(
        "perception_node",
        {
            "checkpoint": ckpt,
            "device": "cpu",
            "num_threads": 1,
            "use_sim_time": True,
            "diagnostics_period": 0.3,
            "frame_timeout": 1.0,
            "qos_depth": 5,
        },
    )
    assert ros_client.spin_until(lambda: diags, 90, watch=[per]), per.log()[-3000:]
    log = open(tmp_path / "play.log", "w")
    play = subprocess.Popen(
        [sys.executable, "-m", "sim2sg_ros.bag_play", str(bag), "--clock", "--wait", "60"],
        env=node_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        assert ros_client.spin_until(lambda: play.poll() is not None, 120, watch=[per])
        assert play.returncode == 0, (tmp_path / "play.log").read_text()
        ros_client.spin_for(1.0)
    finally:
        if play.poll() is None:
            play.kill()
        log.close()
    assert "played" in (tmp_path / "play.log").read_text()

    got = [ros_client.stamp_ns(g.header.stamp) for g in graphs]
    assert len(got) >= N_FRAMES // 2, f"{len(got)} of {N_FRAMES} frames came out\n{per.log()[-3000:]}"
    assert set(got) <= set(stamps) and got == sorted(got), "graph stamps must be the recorded image stamps"
    assert all(g.model_id == model_id and g.header.frame_id == "camera_optical_frame" for g in graphs)
    assert all(0.0 < g.processing_time < 5.0 for g in graphs), [g.processing_time for g in graphs]

    # the node's clock is the bag's: diagnostics published while the bag played carry its time
    during = [(t, s) for t, s in diags if ros_client.stamp_ns(t) >= START_NS]
    assert during, "no diagnostics stamped with the bag's time: the node is not on simulated time"
    assert all(ros_client.stamp_ns(t) <= stamps[-1] + 10**9 for t, _ in during)
    values = [ros_client.diag_values(s) for _, s in during if ros_client.diag_values(s)["header_age_mean_ms"] != "nan"]
    assert values
    age = float(values[-1]["header_age_mean_ms"])
    assert math.isfinite(age) and -200.0 < age < 2000.0, f"a graph's age on the simulated clock: {age} ms"
    latency = float(values[-1]["latency_mean_ms"])
    assert 0.0 < latency < 5000.0

    # the bag is over and simulated time stands still: diagnostics (steady clock) go on and turn to WARN
    n = len(diags)
    assert ros_client.spin_until(
        lambda: (
            len(diags) > n and diags[-1][1].level == DiagnosticStatus.WARN and "no frames for" in diags[-1][1].message
        ),
        30,
        watch=[per],
    ), diags[-1][1].message
    assert per.alive()
