"""Several cameras on one robot: one perception node per camera namespace from one params file (the bring-up),
and one camera driver dying and coming back while the others keep going (real DDS, separate processes)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

rclpy = pytest.importorskip("rclpy", reason="rclpy not importable: run `make setup` and `source scripts/env.sh`")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402

from sim2sg_ros import bringup  # noqa: E402
from sim2sg_ros.params import PERCEPTION_NODE, SIM_CAMERA_NODE, read_params_yaml  # noqa: E402

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"
W, H = 320, 96


def test_parse_cameras_takes_launch_and_shell_spellings():
    for spelling in (
        "front,left,rear",
        "[front, left, rear]",
        "['front', 'left', '/rear/']",
        ["front", "left", "rear"],
    ):
        assert bringup.parse_cameras(spelling) == ["front", "left", "rear"]
    assert bringup.parse_cameras("") == [] and bringup.parse_cameras("[]") == [] and bringup.parse_cameras(None) == []
    assert bringup.parse_cameras("robot/front") == ["robot/front"]
    with pytest.raises(ValueError, match="not a valid ROS name"):
        bringup.parse_cameras("front,2nd")
    with pytest.raises(ValueError, match="repeat"):
        bringup.parse_cameras("front,front")


def test_bringup_starts_one_node_pair_per_camera_from_one_params_file(tmp_path):
    cmds = bringup.perception_commands(
        str(CONFIG / "perception.yaml"),
        checkpoint="m.pt",
        use_sim_camera=True,
        cameras="[front, left, rear]",
        workdir=str(tmp_path),
    )
    assert [(c.name, c.namespace) for c in cmds] == [
        (n, ns) for ns in ("front", "left", "rear") for n in ("sim_camera_node", "perception_node")
    ]
    files = {c.params_file for c in cmds}
    assert len(files) == 1, "one shared parameter file"
    shared = yaml.safe_load(Path(files.pop()).read_text())
    assert shared["/**/perception_node"]["ros__parameters"] == read_params_yaml(
        CONFIG / "perception.yaml", PERCEPTION_NODE
    )
    assert shared["/**/sim_camera_node"]["ros__parameters"] == read_params_yaml(
        CONFIG / "perception.yaml", SIM_CAMERA_NODE
    )
    seed = read_params_yaml(CONFIG / "perception.yaml", SIM_CAMERA_NODE)["seed"]
    cams = [c for c in cmds if c.name == "sim_camera_node"]
    assert [c.overrides["seed"] for c in cams] == [seed, seed + 1, seed + 2]  # three different image streams
    for c in cmds:
        argv = c.argv()
        assert f"__ns:=/{c.namespace}" in argv
    assert all(c.overrides == {"checkpoint": str(Path("m.pt").resolve())} for c in cmds if c.name == PERCEPTION_NODE)


def test_bringup_rviz_without_rviz2_says_so_and_starts_the_rest(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no rviz2 on this PATH
    cmds = bringup.perception_commands(str(CONFIG / "perception.yaml"), rviz=True)
    assert [c.name for c in cmds] == ["perception_node"]
    assert "rviz2 is not installed" in capsys.readouterr().out
    fake = tmp_path / "rviz2"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    cmds = bringup.perception_commands(str(CONFIG / "perception.yaml"), rviz=True)
    from sim2sg_core.paths import config_path

    assert cmds[-1].argv() == [str(fake), "-d", str(config_path("sim2sg.rviz"))]
    assert cmds[-1].argv()[-1].endswith("config/sim2sg.rviz")


class Cameras:
    """Graphs per namespace (arrival time, stamp) and the latest diagnostics per perception node."""

    def __init__(self, client, namespaces):
        from sim2sg_ros.msg import SceneGraph

        self.graphs = {ns: [] for ns in namespaces}
        self.diag: dict = {}
        for ns in namespaces:
            client.node.create_subscription(
                SceneGraph, f"/{ns}/scene_graph", lambda m, ns=ns: self.graphs[ns].append((time.monotonic(), m)), 10
            )
        client.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 20)

    def _on_diag(self, msg) -> None:
        for s in msg.status:
            ns = s.name.split("/", 1)[0]
            if s.name.endswith("perception_node: scene graph pipeline"):
                self.diag[ns] = s

    def level(self, ns):
        s = self.diag.get(ns)
        return s.level if s is not None else None

    def message(self, ns) -> str:
        s = self.diag.get(ns)
        return s.message if s is not None else ""


@pytest.mark.slow
def test_a_camera_dies_and_comes_back_the_others_never_stop(
    tmp_path, node_env, ros_client, node_procs, tiny_checkpoint
):
    """Bring-up with cameras front and rear (one shared params file) + two camera drivers. Killing the front driver
    (SIGKILL) turns the front node's diagnostics to WARN "no frames for N s" while the rear graphs keep coming; a
    new front driver brings the front graphs and OK back. No node dies."""
    ckpt, model_id = tiny_checkpoint()
    params = yaml.safe_load((CONFIG / "perception.yaml").read_text())
    params[PERCEPTION_NODE]["ros__parameters"].update(
        checkpoint=ckpt, device="cpu", num_threads=1, diagnostics_period=0.3, frame_timeout=1.0
    )
    pfile = tmp_path / "robot.yaml"
    pfile.write_text(yaml.safe_dump(params))
    cams = Cameras(ros_client, ("front", "rear"))
    log = open(tmp_path / "bringup.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim2sg_ros.bringup", "perception", "--params", str(pfile), "--cameras", "front,rear"],
        env=node_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def camera(ns: str, seed: int):
        p = {"env": "drive", "domain": "target", "seed": seed, "rate": 5.0, "width": W, "height": H}
        return node_procs("sim_camera_node", dict(p, cache_frames=2, frame_id=f"{ns}_optical"), namespace=ns)

    def bringup_log() -> str:
        log.flush()
        return (tmp_path / "bringup.log").read_text()[-4000:]

    try:
        front, rear = camera("front", 1), camera("rear", 2)
        ok = ros_client.spin_until(
            lambda: all(len(cams.graphs[ns]) >= 3 for ns in cams.graphs) or proc.poll() is not None,
            150,
            watch=[front, rear],
        )
        assert ok and proc.poll() is None, bringup_log()
        # the shared file reached both namespaced nodes: its checkpoint is what they serve
        assert {m.model_id for ns in cams.graphs for _, m in cams.graphs[ns]} == {model_id}
        assert {m.header.frame_id for _, m in cams.graphs["front"]} == {"front_optical"}
        assert ros_client.spin_until(
            lambda: cams.level("front") == DiagnosticStatus.OK and cams.level("rear") == DiagnosticStatus.OK, 30
        ), (cams.message("front"), cams.message("rear"))

        front.proc.kill()  # the driver dies without a goodbye
        front.proc.wait(timeout=10)
        t_kill = time.monotonic()
        assert ros_client.spin_until(
            lambda: cams.level("front") == DiagnosticStatus.WARN and "no frames for" in cams.message("front"),
            30,
            watch=[rear],
        ), cams.message("front")
        assert "front/camera/image_raw" in cams.message("front")
        n_rear = len(cams.graphs["rear"])
        ros_client.spin_for(1.5)
        assert len(cams.graphs["rear"]) > n_rear, "the rear camera stopped with the front one"
        assert cams.level("rear") == DiagnosticStatus.OK, cams.message("rear")
        assert proc.poll() is None, bringup_log()

        front = camera("front", 1)  # the driver comes back
        t_back = time.monotonic()
        assert ros_client.spin_until(
            lambda: any(t > t_back for t, _ in cams.graphs["front"]) and cams.level("front") == DiagnosticStatus.OK,
            120,
            watch=[front, rear],
        ), (cams.message("front"), bringup_log())
        # front graphs stopped while its driver was gone; rear graphs came all along
        during = [t for t, _ in cams.graphs["front"] if t_kill + 1.0 < t < t_back]
        assert not during
        rear_times = [t for t, _ in cams.graphs["rear"] if t > t_kill]
        assert rear_times and rear_times[0] < t_back and rear_times[-1] > t_back
        assert proc.poll() is None, bringup_log()

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, bringup_log()
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
