"""Trainer: schedule, NaN guard, resume after an interruption; config files; CLI."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from toy_data import VOCAB, ToyDataset, tiny_config, toy_sample

from sim2sg_core.model import SGModel
from sim2sg_core.train.checkpoint import load_checkpoint
from sim2sg_core.train.config import ConfigError, load_config
from sim2sg_core.train.trainer import Trainer, TrainingDivergedError, WarmupCosine

REPO = Path(__file__).resolve().parents[2]


def make_trainer(tmp_path, **over):
    torch.manual_seed(0)
    cfg = tiny_config(**over)
    return Trainer(SGModel.from_config(cfg, VOCAB), cfg, VOCAB, tmp_path, device="cpu", progress=False)


def test_warmup_then_cosine_to_zero():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    s = WarmupCosine(opt, base_lr=1.0, warmup_steps=10, total_steps=100)
    lrs = []
    for step in range(100):
        s.step_count = step
        lrs.append(s.apply())
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0, rel=0.03)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and lrs[-1] < 0.01
    s.step_count, s.total_seconds, s.elapsed = 10, 60.0, 30.0  # time budget half used -> half annealed
    assert s.apply() == pytest.approx(0.5)


def test_nan_loss_stops_with_a_clear_error(tmp_path):
    tr = make_trainer(tmp_path)
    supervised = tr.compute_losses
    tr.compute_losses = lambda b: {**supervised(b), "broken": supervised(b)["heatmap"] * float("nan")}
    batch = next(iter(tr.make_loader(ToyDataset(2), batch_size=2)))
    with pytest.raises(TrainingDivergedError, match=r"loss became nan at step 0 .*broken=nan"):
        tr.train_step(batch)


@pytest.mark.slow
def test_resume_after_interruption_continues_the_step_count(tmp_path):
    ds = ToyDataset(4)
    calls = {"n": 0}

    tr = make_trainer(tmp_path, steps=8, checkpoint_every=2, batch_size=2, log_every=1)
    supervised = tr.compute_losses

    def crash_at_step_5(batch):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt  # the process is stopped mid-run
        return supervised(batch)

    tr.compute_losses = crash_at_step_5
    with pytest.raises(KeyboardInterrupt):
        tr.fit(tr.make_loader(ds))
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 4
    tr2 = make_trainer(tmp_path, steps=8, checkpoint_every=2, batch_size=2, log_every=1)
    assert tr2.resume() and tr2.step == 4
    assert tr2.optimizer.state_dict()["state"]  # AdamW moments came back too
    summary = tr2.fit(tr2.make_loader(ds))
    assert summary["steps"] == 8
    final = load_checkpoint(tmp_path / "model.pt", expect_vocab=VOCAB)
    assert final["step"] == 8 and final["optimizer"] is None
    steps = [h["step"] for h in final["extra"]["history"]]
    assert steps == list(range(1, 9))  # 1-4 before the interruption, 5-8 after it


def test_config_files(tmp_path):
    cfg = load_config(REPO / "config" / "model" / "default.yaml")
    assert cfg.model.input_width == 480 and cfg.train.env == "drive"
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  input_widht: 320\n")
    with pytest.raises(ConfigError, match=rf"{bad}: model: unknown field\(s\) \['input_widht'\]"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.yaml")


@pytest.mark.slow
def test_cli_help_and_predict(tmp_path, capsys):
    import cv2

    from sim2sg_core.__main__ import main

    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "sim2sg_core", "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0 and "train" in out.stdout and "predict" in out.stdout and "examples" in out.stdout
    tr = make_trainer(tmp_path / "run", steps=1, batch_size=2)
    tr.fit(tr.make_loader(ToyDataset(2)))
    img = tmp_path / "scene.png"
    cv2.imwrite(str(img), cv2.cvtColor(toy_sample(0)[0], cv2.COLOR_RGB2BGR))
    rc = main(
        [
            "predict",
            "--ckpt",
            str(tmp_path / "run" / "model.pt"),
            str(img),
            "--out",
            str(tmp_path / "pred"),
            "--score-threshold",
            "0.0",
            "--max-objects",
            "3",
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    graph = json.loads((tmp_path / "pred" / "scene.json").read_text())
    assert len(graph["objects"]) == 3 and graph["model_id"]
    annotated = cv2.imread(str(tmp_path / "pred" / "scene_annotated.png"))
    assert annotated.shape == (64, 160, 3)
    assert cv2.imread(str(tmp_path / "pred" / "scene_graph.png")) is not None
    capsys.readouterr()
    assert main(["predict", "--ckpt", str(img), str(img)]) == 2
    assert f"checkpoint {img}" in capsys.readouterr().err
    assert main(["predict", "--ckpt", str(tmp_path / "run" / "model.pt"), str(tmp_path / "missing.png")]) == 2
    assert "error: cannot read image" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_trains_through_a_real_camera(tmp_path, capsys):
    """``train --camera-info``: the simulator renders through the given calibration (at its 16:9 aspect,
    640 wide) and the run's checkpoint records that input geometry."""
    from sim2sg_core.__main__ import _train_camera, build_parser, main

    y = tmp_path / "camera_info.yaml"
    y.write_text(
        "image_width: 1600\nimage_height: 900\ncamera_matrix:\n  rows: 3\n  cols: 3\n"
        "  data: [1266.4, 0, 816.3, 0, 1266.4, 491.5, 0, 0, 1]\n"
    )
    args = build_parser().parse_args(
        ["train", "--out", str(tmp_path / "r"), "--camera-info", str(y), "--camera-height", "1.4"]
    )
    cam = _train_camera(args)
    assert cam.size == (640, 360) and cam.height_m == 1.4
    assert abs(cam.fx - 1266.4 * 0.4) < 1e-6 and abs(cam.cx - 816.3 * 0.4) < 1e-6
    from sim2sg_core.train.trainer import open_dataset

    ds, _ = open_dataset("drive:source", 2, 0, camera=cam, camera_pose_from_camera=True)
    rgb, graph = ds[0]
    assert rgb.shape == (360, 640, 3) and (graph.image_width, graph.image_height) == (640, 360)
    rc = main(
        [
            "train",
            "--config",
            str(REPO / "config" / "model" / "real_camera.yaml"),
            "--out",
            str(tmp_path / "r"),
            "--camera-info",
            str(y),
            "--steps",
            "1",
            "--batch-size",
            "2",
            "--train-images",
            "2",
            "--eval-images",
            "0",
            "--num-workers",
            "0",
            "--device",
            "cpu",
            "--threads",
            "1",
        ]
    )
    from sim2sg_core.train.checkpoint import load_checkpoint

    ck = load_checkpoint(tmp_path / "r" / "model.pt")
    assert rc == 0 and ck["resize_mode"] == "letterbox" and ck["crop_bottom"] == pytest.approx(0.11)
    capsys.readouterr()
    assert main(["train", "--out", str(tmp_path / "x"), "--camera-height", "1.5"]) == 2
    assert "need --camera-info" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "x"), "--camera-info", str(tmp_path / "nope.yaml")]) == 2
    assert re.search("error: --camera-info: .*nope.yaml", capsys.readouterr().err)
