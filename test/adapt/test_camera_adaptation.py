"""Adaptation through the real camera's calibration: AdaptConfig.camera_info, target sources that know
their camera (bag CameraInfo, camera_info.yaml beside a folder), the pose order, letterbox-matched
render sizes, and the calibrated camera recorded in the adapted checkpoint. Tiny runs only."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch

from sim2sg_core.adapt.config import AdaptConfigError, load_adapt_config
from sim2sg_core.adapt.sim2sg import Sim2SGAdapter, run_adaptation
from sim2sg_core.adapt.targets import ArrayTargetSource, BagTargetSource, ImageFolderSource
from sim2sg_core.sim import Camera, Simulator

REAL = Camera(fx=1266.417, fy=1266.417, cx=816.267, cy=491.507, width=1600, height=900, height_m=1.5, pitch=0.0)
INPUT = (160, 64)
TINY = dict(
    encoder_channels=(8, 8, 16, 16, 16),
    feature_channels=16,
    head_channels=16,
    relation_hidden=32,
    relation_roi_size=3,
    input_width=INPUT[0],
    input_height=INPUT[1],
)


def _yaml(cam: Camera) -> str:
    return (
        f"image_width: {cam.width}\nimage_height: {cam.height}\ncamera_name: front\n"
        f"camera_matrix:\n  rows: 3\n  cols: 3\n"
        f"  data: [{cam.fx}, 0.0, {cam.cx}, 0.0, {cam.fy}, {cam.cy}, 0.0, 0.0, 1.0]\n"
        "distortion_model: plumb_bob\n"
    )


def _checkpoint(path, resize_mode="stretch"):
    from sim2sg_core.model import SGModel
    from sim2sg_core.sim import load_environment
    from sim2sg_core.train.checkpoint import save_checkpoint
    from sim2sg_core.train.config import ExperimentConfig, ModelConfig, TrainConfig

    torch.manual_seed(0)
    cfg = ExperimentConfig(model=ModelConfig(resize_mode=resize_mode, **TINY), train=TrainConfig(env="drive"))
    vocab = load_environment("drive").vocab
    model = SGModel.from_config(cfg, vocab)
    save_checkpoint(path, model, cfg, vocab, INPUT, cfg.model.mean, cfg.model.std)
    return path


def _frames(n=4, size=(320, 180)):
    sim = Simulator("drive", "target", seed=3, camera=REAL.scaled(*size))
    return [sim.sample(i).image for i in range(n)]


def _cfg(**kw):
    cfg = load_adapt_config(
        overrides={
            "env": "drive",
            "rounds": 1,
            "warmup_rounds": 1,
            "steps_per_round": 2,
            "batch_size": 2,
            "source_pool_size": 4,
            "max_target_images": 4,
            "progress_bar": False,
            "num_threads": 1,
            "device": "cpu",
            "label_alignment": {"samples_per_round": 4},
        }
    )
    return dataclasses.replace(cfg, **kw)


def _adapter(ck, cfg, images, **kw):
    from sim2sg_core.train.checkpoint import load_checkpoint, model_from_checkpoint

    c = load_checkpoint(ck)
    return Sim2SGAdapter(
        model=model_from_checkpoint(c),
        vocab=c["vocab"],
        experiment_config=c["config"],
        input_size=c["input_size"],
        mean=c["mean"],
        std=c["std"],
        config=cfg.validate(),
        target_images=images,
        device="cpu",
        **kw,
    )


def test_adaptation_with_camera_info_records_the_camera(tmp_path):
    torch.set_num_threads(1)
    (tmp_path / "camera_info.yaml").write_text(_yaml(REAL))
    ck = _checkpoint(tmp_path / "init.pt")
    cfg = _cfg(camera_info=str(tmp_path / "camera_info.yaml"), camera_height=1.5, camera_pitch=0.0)
    out = tmp_path / "adapted.pt"
    res = run_adaptation(ck, ArrayTargetSource(_frames()), out, cfg)
    assert res.steps == 2
    rec = torch.load(out, weights_only=True)["extra"]["adaptation"]
    assert rec["camera_info"] == str(tmp_path / "camera_info.yaml")
    cal = Camera.from_dict(rec["calibrated_camera"])
    assert (cal.fx, cal.cx, cal.cy, cal.width, cal.height) == pytest.approx((REAL.fx, REAL.cx, REAL.cy, 1600, 900))
    used = Camera.from_dict(rec["target_camera"])  # scaled to the (stretch) render size = the model input
    assert (used.width, used.height) == INPUT
    assert (used.fx, used.cx, used.fy, used.cy) == pytest.approx(
        (REAL.fx * 0.1, REAL.cx * 0.1, REAL.fy * 64 / 900, REAL.cy * 64 / 900)
    )
    assert (rec["target_camera"]["height_m"], rec["target_camera"]["pitch"]) == pytest.approx((1.5, 0.0))


def test_pose_order_and_letterbox_render_size(tmp_path):
    (tmp_path / "cam.yaml").write_text(_yaml(REAL))
    images = _frames(2)
    ck = _checkpoint(tmp_path / "lb.pt", resize_mode="letterbox")
    # config pose wins over everything
    a = _adapter(
        ck,
        _cfg(camera_info=str(tmp_path / "cam.yaml"), camera_height=1.4, camera_pitch=0.01),
        images,
        target_camera_pose=(1.9, 0.05),
    )
    assert (a.camera.height_m, a.camera.pitch) == pytest.approx((1.4, 0.01))
    # letterbox: label-aligned scenes are rendered at the real frames' content size inside the input
    assert a.aligned_image_size() == (114, 64) and (a.camera.width, a.camera.height) == (114, 64)
    assert a.camera.fx == pytest.approx(a.camera.fy, rel=0.01) and a.camera.cx == pytest.approx(REAL.cx * 114 / 1600)
    scenes = a.aligner.synthesis_scenes(a.aligner.analyse([]), 2, 1.0, np.random.default_rng(0))
    imgs, graphs = a.aligner.render(scenes)
    assert imgs[0].shape == (64, 114, 3) and graphs[0].image_width == 114
    # the reported pose comes next, then the calibrated camera's own pose (the source mean for a YAML)
    b = _adapter(ck, _cfg(camera_info=str(tmp_path / "cam.yaml")), images, target_camera_pose=(1.9, 0.05))
    assert (b.camera.height_m, b.camera.pitch) == pytest.approx((1.9, 0.05))
    c = _adapter(ck, _cfg(camera_info=str(tmp_path / "cam.yaml")), images)
    assert (c.camera.height_m, c.camera.pitch) == pytest.approx(c.sim.content.camera.mean_pose)
    # a KITTI calib (sized by the target images) keeps the pitch its P2 encodes
    pitched = REAL.scaled(320, 180).with_pose(1.5, 0.03)
    (tmp_path / "calib.txt").write_text("P2: " + " ".join(f"{v:.12e}" for v in pitched.P.reshape(-1)) + "\n")
    d = _adapter(ck, _cfg(camera_info=str(tmp_path / "calib.txt")), images)
    assert d.calibrated_camera.width == 320 and d.camera.pitch == pytest.approx(0.03, abs=1e-6)
    # the target source's camera is used when no file is configured (its pose is not)
    e = _adapter(ck, _cfg(), images, target_camera=REAL.with_pose(9.0, 0.4))
    assert e.camera.fx == pytest.approx(REAL.fx * 114 / 1600)
    assert (e.camera.height_m, e.camera.pitch) == pytest.approx(e.sim.content.camera.mean_pose)
    # no calibration at all: as before, the simulator's camera at the model input
    f = _adapter(ck, _cfg(), images)
    assert f.camera == f.sim.camera.with_pose(*f.sim.content.camera.mean_pose)
    with pytest.raises(AdaptConfigError, match="does not exist"):
        _cfg(camera_info=str(tmp_path / "missing.yaml")).validate()
    with pytest.raises(AdaptConfigError, match="unknown type"):
        _cfg(camera_info=str(tmp_path / "lb.pt")).validate()


def test_target_sources_know_their_camera(tmp_path):
    frames = _frames(2, size=(160, 90))
    folder = tmp_path / "run" / "frames"
    folder.mkdir(parents=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:03d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    assert ImageFolderSource(folder).camera is None
    (tmp_path / "run" / "camera_info.yaml").write_text(_yaml(REAL))  # beside the folder (its parent)
    cam = ImageFolderSource(folder).camera
    assert (cam.fx, cam.cx, cam.width) == pytest.approx((REAL.fx, REAL.cx, 1600))
    from sim2sg_core.data.bags import write_image_bag

    small = REAL.scaled(160, 90)
    bag = write_image_bag(tmp_path / "bag", frames, topic="/front/image_raw", camera=small)
    bcam = BagTargetSource(bag, "/front/image_raw").camera
    assert (bcam.fx, bcam.cx, bcam.cy, bcam.width, bcam.height) == pytest.approx(
        (small.fx, small.cx, small.cy, 160, 90)
    )


def test_adapt_cli_camera_flags(tmp_path, capsys):
    from sim2sg_core.adapt.cli import main

    torch.set_num_threads(1)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(_frames(2, size=(160, 90))):
        cv2.imwrite(str(folder / f"{i:03d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    (tmp_path / "calib.yaml").write_text(_yaml(REAL))
    ck = _checkpoint(tmp_path / "init.pt")
    out = tmp_path / "a.pt"
    sets = [
        "rounds=1",
        "warmup_rounds=1",
        "steps_per_round=1",
        "batch_size=2",
        "source_pool_size=2",
        "label_alignment.samples_per_round=2",
        "progress_bar=false",
        "device=cpu",
        "num_threads=1",
    ]
    argv = [
        "adapt",
        "--init",
        str(ck),
        "--target",
        str(folder),
        "--out",
        str(out),
        "--camera-info",
        str(tmp_path / "calib.yaml"),
        "--camera-height",
        "1.45",
        "--camera-pitch",
        "0.01",
    ]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    rec = torch.load(out, weights_only=True)["extra"]["adaptation"]
    assert rec["camera_info"] == str(tmp_path / "calib.yaml")
    assert (rec["target_camera"]["height_m"], rec["target_camera"]["pitch"]) == pytest.approx((1.45, 0.01))
    assert rec["config"]["camera_info"] == str(tmp_path / "calib.yaml")
