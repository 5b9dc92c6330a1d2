"""A SceneGraph published by one OS process arrives intact in another, over real DDS."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy not importable: run `make setup` and `source scripts/env.sh`")

HERE = Path(__file__).parent


@pytest.mark.parametrize("n_objects,n_rels", [(1, 0), (300, 2000)])
def test_scene_graph_crosses_processes_intact(tmp_path, ros_env, graph_factory, n_objects, n_rels):
    graph = graph_factory.make_graph(n_objects, n_rels, seed=7)
    src = tmp_path / "graph.json"
    src.write_text(json.dumps(graph.to_dict()))
    pub = subprocess.Popen(
        [sys.executable, str(HERE / "publish_graph.py"), str(src), "1700000001", "42"],
        env=ros_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        echo = subprocess.run(
            [sys.executable, "-m", "sim2sg_ros.graph_echo", "--json", "--reliable", "--count", "1", "--timeout", "60"],
            env=ros_env,
            capture_output=True,
            text=True,
            timeout=90,
        )
    finally:
        pub.terminate()
        pub_out = pub.communicate(timeout=20)[0]
    assert echo.returncode == 0, f"echo failed: {echo.stderr}\npublisher said: {pub_out}"
    got = json.loads(echo.stdout.strip().splitlines()[-1])
    assert got["stamp_ns"] == 1700000001 * 10**9 + 42 and got["frame_id"] == "camera"
    assert got["model_version"] == "test"
    want = json.loads(json.dumps(graph.to_dict()))
    # boxes and scores travel as float32
    for o in want["objects"] + want["relationships"]:
        o["score"] = pytest.approx(o["score"], rel=1e-6)
    for o in want["objects"]:
        o["box"] = pytest.approx(o["box"], rel=1e-6)
    for key in ("objects", "relationships", "image_width", "image_height", "model_id", "vocab"):
        assert got[key] == want[key], key


@pytest.mark.slow
def test_different_domains_do_not_cross(tmp_path, ros_env, another_ros_domain_id, graph_factory):
    """The per-test domain isolation is real: a subscriber on another domain hears nothing."""
    src = tmp_path / "graph.json"
    src.write_text(json.dumps(graph_factory.make_graph(1, 0).to_dict()))
    pub = subprocess.Popen(
        [sys.executable, str(HERE / "publish_graph.py"), str(src), "1", "0"],
        env=ros_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    other = dict(ros_env, ROS_DOMAIN_ID=str(another_ros_domain_id))
    try:
        echo = subprocess.run(
            [sys.executable, "-m", "sim2sg_ros.graph_echo", "--json", "--reliable", "--count", "1", "--timeout", "4"],
            env=other,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        pub.terminate()
        pub.wait(timeout=20)
    assert echo.returncode == 1 and "timed out" in echo.stderr
