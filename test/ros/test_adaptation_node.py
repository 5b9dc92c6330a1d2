"""adaptation_node: real rosbag2 bags (MCAP + sqlite3) in, an adapted checkpoint out, as a separate process."""

from __future__ import annotations

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not importable: run `make setup` and `source scripts/env.sh`")

import yaml  # noqa: E402
from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402

pytestmark = pytest.mark.ros

TOPIC = "/camera/image_raw"


def _tiny_adapt_config(path, steps_per_round=3):
    """A real Sim2SG configuration (all three alignments on), scaled down to seconds."""
    cfg = {
        "adapt": {
            "env": "drive",
            "rounds": 2,
            "warmup_rounds": 1,
            "steps_per_round": steps_per_round,
            "batch_size": 2,
            "source_pool_size": 4,
            "max_target_images": 6,
            "checkpoint_every": 1,
            "device": "cpu",
            "num_threads": 1,
            "progress_bar": False,
            "label_alignment": {"samples_per_round": 4, "score_threshold": 0.0},
        }
    }
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.fixture
def bags(tmp_path):
    """The same target domain recorded twice: MCAP (rgb8) and sqlite3 (bgr8), 4 frames each."""
    from sim2sg_core.data.bags import write_image_bag
    from sim2sg_core.sim import Simulator

    sim = Simulator(env="drive", domain="target", seed=11, image_size=(320, 96))
    a = write_image_bag(
        tmp_path / "bag_mcap", [sim.sample(i) for i in range(4)], topic=TOPIC, storage="mcap", camera=sim.camera
    )
    b = write_image_bag(
        tmp_path / "bag_sqlite",
        [sim.sample(i) for i in range(4, 8)],
        topic=TOPIC,
        storage="sqlite3",
        encoding="bgr8",
        camera=sim.camera,
    )
    return [str(a), str(b)]


def _params(bags, init, out, adapt_config, **kw):
    p = {"bags": bags, "topic": TOPIC, "init_checkpoint": init, "output_checkpoint": out, "adapt_config": adapt_config}
    p.update(kw)
    return p


@pytest.mark.slow
def test_adaptation_node_writes_a_loadable_checkpoint_reports_progress_and_resumes(
    node_procs, ros_client, tiny_checkpoint, bags, tmp_path
):
    from sim2sg_core.train.checkpoint import load_checkpoint

    init, init_id = tiny_checkpoint("source.pt")
    out = tmp_path / "adapted" / "adapted.pt"
    cfg = _tiny_adapt_config(tmp_path / "adapt.yaml", steps_per_round=10)
    progress = []
    ros_client.node.create_subscription(DiagnosticStatus, "/adaptation_node/progress", progress.append, 100)

    def steps():
        return [int(ros_client.diag_values(s)["step"]) for s in progress]

    # 1. interrupted after a few steps: state saved, status 130
    rig = {"camera_height": 1.85, "camera_pitch": 0.05}  # the recorded camera's mount
    first = node_procs("adaptation_node", _params(bags, init, str(out), cfg, **rig))
    assert ros_client.spin_until(lambda: any(s >= 3 for s in steps()), 180, watch=[first]), first.log()[-3000:]
    rc = first.stop(timeout=60)
    log1 = first.log()
    assert rc == 130, log1[-3000:]
    assert not out.exists() and (tmp_path / "adapted" / "adapted.pt.resume").exists()
    assert "run the same command again to resume" in log1
    d = ros_client.diag_values(progress[-1])
    assert int(d["total"]) == 20 and 0.0 < float(d["fraction"]) < 1.0

    # 2. the same command resumes and finishes
    progress.clear()
    second = node_procs("adaptation_node", _params(bags, init, str(out), cfg, **rig), name="adaptation_node")
    assert second.wait(timeout=240) == 0, second.log()[-3000:]
    log2 = second.log()
    assert "resumed from step" in log2 and "wrote adapted checkpoint" in log2
    ros_client.spin_for(0.5)
    assert steps() and min(steps()) > 1 and max(steps()) == 20, "resumed run must not start from step 0"

    ck = load_checkpoint(out)  # loads: format, hash, vocabulary all verified
    assert ck["model_id"] != init_id
    info = ck["extra"]["adaptation"]
    assert info["init_model_id"] == init_id and info["target_images"] == 6
    assert TOPIC in info["target"] and "bag_mcap" in info["target"] and "bag_sqlite" in info["target"]
    assert (info["target_camera"]["height_m"], info["target_camera"]["pitch"]) == pytest.approx((1.85, 0.05))
    assert not (tmp_path / "adapted" / "adapted.pt.resume").exists()


@pytest.mark.slow
def test_topic_not_in_bag_fails_listing_the_image_topics(node_procs, tiny_checkpoint, bags, tmp_path):
    init, _ = tiny_checkpoint("source.pt")
    cfg = _tiny_adapt_config(tmp_path / "adapt.yaml")
    p = node_procs("adaptation_node", _params(bags[:1], init, str(tmp_path / "out.pt"), cfg, topic="/front/image"))
    assert p.wait(timeout=120) == 2
    log = p.log()
    assert "/front/image" in log and TOPIC in log, log[-2000:]
    assert "Traceback" not in log
    assert not (tmp_path / "out.pt").exists()


@pytest.mark.slow
def test_missing_bag_and_corrupt_bag_fail_with_one_sentence(node_procs, tiny_checkpoint, tmp_path):
    init, _ = tiny_checkpoint("source.pt")
    cfg = _tiny_adapt_config(tmp_path / "adapt.yaml")
    missing = node_procs(
        "adaptation_node", _params([str(tmp_path / "nope")], init, str(tmp_path / "o.pt"), cfg), name="adaptation_node"
    )
    corrupt_dir = tmp_path / "corrupt"
    corrupt_dir.mkdir()
    (corrupt_dir / "corrupt_0.mcap").write_bytes(b"\x89MCAP0\r\n" + b"\x00garbage" * 100)
    assert missing.wait(timeout=120) == 2
    assert "nope does not exist" in missing.log() and "Traceback" not in missing.log()
    corrupt = node_procs(
        "adaptation_node",
        _params([str(corrupt_dir / "corrupt_0.mcap")], init, str(tmp_path / "o.pt"), cfg),
        name="adaptation_node",
    )
    assert corrupt.wait(timeout=120) == 2, corrupt.log()[-3000:]
    assert "corrupt_0.mcap" in corrupt.log() and "Traceback" not in corrupt.log()
    assert not (tmp_path / "o.pt").exists()
