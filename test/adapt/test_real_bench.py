"""`bench --target FOLDER --camera-info YAML --eval-data KITTI`: the real-camera path end to end.

The "real" camera here is a 16:9 camera of its own (not the simulator's 640x192 KITTI geometry): its
frames are rendered in the simulator's target domain, written as an unlabelled image folder with a
ROS camera_info.yaml beside it, and as a labelled KITTI folder with 2-D-only labels (3-D fields zero,
as in real 2-D datasets). Tiny budgets: this checks the plumbing, not the accuracy.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import yaml

from sim2sg_core.adapt.bench import RealData, run_bench
from sim2sg_core.adapt.config import load_bench_profile
from sim2sg_core.model.predictor import Predictor
from sim2sg_core.sim import Simulator
from sim2sg_core.sim.scene import Camera

CAM = Camera(fx=300.0, fy=300.0, cx=166.0, cy=88.0, width=320, height=180, height_m=1.5, pitch=0.0)


def _camera_info_yaml(cam: Camera) -> dict:
    return {
        "image_width": cam.width,
        "image_height": cam.height,
        "camera_name": "front",
        "camera_matrix": {"rows": 3, "cols": 3, "data": [cam.fx, 0, cam.cx, 0, cam.fy, cam.cy, 0, 0, 1]},
        "distortion_model": "plumb_bob",
        "distortion_coefficients": {"rows": 1, "cols": 5, "data": [0] * 5},
    }


@pytest.fixture(scope="module")
def real_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    sim = Simulator("drive", "target", seed=77, camera=CAM, camera_pose_from_camera=True)
    (root / "unlabelled").mkdir()
    for d in ("image_2", "label_2", "calib"):
        (root / "dev" / d).mkdir(parents=True)
    (root / "camera_info.yaml").write_text(yaml.safe_dump(_camera_info_yaml(CAM)))
    for i in range(14):
        s = sim.sample(i)
        bgr = cv2.cvtColor(s.image, cv2.COLOR_RGB2BGR)
        if i < 8:
            cv2.imwrite(str(root / "unlabelled" / f"u{i:03d}.jpg"), bgr)
            continue
        stem = f"{i:06d}"
        cv2.imwrite(str(root / "dev" / "image_2" / f"{stem}.png"), bgr)
        (root / "dev" / "calib" / f"{stem}.txt").write_text(
            f"P2: {CAM.fx} 0 {CAM.cx} 0 0 {CAM.fy} {CAM.cy} 0 0 0 1 0\n"
        )
        lines = [
            f"{o.class_name.capitalize()} 0 0 0 {o.box[0]:.2f} {o.box[1]:.2f} {o.box[2]:.2f} {o.box[3]:.2f} "
            "0 0 0 0 0 0 0"
            for o in s.graph.objects
            if o.class_name in ("car", "pedestrian")
        ]
        (root / "dev" / "label_2" / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.slow
def test_real_bench_writes_tables_and_loadable_checkpoints(tmp_path, real_dirs):
    prof = load_bench_profile(
        "real",
        {
            "source_domain": "source",
            "randomized_domain": "randomized",
            "source_steps": 4,
            "train_images": 8,
            "target_images": 8,
            "image_size": [320, 180],
            "model": {
                "encoder": "small",
                "input_width": 256,
                "input_height": 128,
                "resize_mode": "letterbox",
                "crop_bottom": 0.05,
                "mean": [0.485, 0.456, 0.406],
                "std": [0.229, 0.224, 0.225],
            },
            "adapt": {
                "rounds": 1,
                "warmup_rounds": 0,
                "steps_per_round": 2,
                "batch_size": 2,
                "target_batch_size": 2,
                "source_pool_size": 4,
                "label_alignment": {"samples_per_round": 4},
            },
        },
    )
    real = RealData(target=str(real_dirs / "unlabelled"), eval_data=str(real_dirs / "dev"))
    methods = ["source_only", "sim2sg_full", "sim2sg_dr"]
    res = run_bench(prof, tmp_path, methods=methods, seeds=[0], progress=False, real=real)
    assert real.camera_info.endswith("camera_info.yaml")  # found beside the target folder
    md = (tmp_path / "table.md").read_text()
    n_car = sum(
        len([ln for ln in p.read_text().splitlines() if ln.startswith("Car")])
        for p in (real_dirs / "dev" / "label_2").glob("*.txt")
    )
    assert f"AP@0.5 car ({n_car} GT)" in md and "Recall@50" in md
    assert "left out of the table and of the mAP" in md
    assert "DR + Sim2SG (full)" in md and "DR + Sim2SG − source only" in md
    # the evaluation labels were checked for registration before any AP, and the table quotes the check
    audit = json.loads((tmp_path / "label_audit.json").read_text())
    assert audit["boxes"] == n_car and audit["frames"] >= 1 and 0.0 <= audit["auc"] <= 1.0
    assert "Label registration check" in md and f"{audit['auc']:.3f}" in md
    assert [r["method"] for r in res["rows"]] == methods
    rec = json.loads((tmp_path / "runs" / "drive" / "real_unlabelled" / "seed0" / "sim2sg_full.json").read_text())
    assert rec["metrics"]["num_images"] == 6
    # the adapted model lifted its pseudo labels through the real camera
    ck = __import__("torch").load(
        tmp_path / "checkpoints" / "sim2sg_full_seed0.pt", map_location="cpu", weights_only=False
    )
    tc = ck["extra"]["adaptation"]["target_camera"]
    assert tc["height_m"] == pytest.approx(1.5) and tc["fx"] / tc["width"] == pytest.approx(CAM.fx / CAM.width)
    for m in methods:
        pred = Predictor.from_checkpoint(tmp_path / "checkpoints" / f"{m}_seed0.pt", device="cpu")
        g = pred.predict([np.zeros((900, 1600, 3), np.uint8)])[0]
        assert (g.image_width, g.image_height) == (1600, 900)
    # the DR row pre-trained on the randomized domain; source-only on the source domain
    pre = sorted(p.name for p in (tmp_path / "runs" / "drive").iterdir() if p.name.endswith("_pretrain"))
    assert pre == ["seed0_randomized_real_unlabelled_pretrain", "seed0_source_real_unlabelled_pretrain"]


def test_real_bench_refuses_rows_that_need_target_labels(tmp_path, real_dirs):
    prof = load_bench_profile("real")
    real = RealData(target=str(real_dirs / "unlabelled"), eval_data=str(real_dirs / "dev"))
    with pytest.raises(ValueError, match="labelled target"):
        run_bench(prof, tmp_path, methods=["oracle"], seeds=[0], progress=False, real=real)
    with pytest.raises(FileNotFoundError, match="camera info"):
        run_bench(
            prof,
            tmp_path,
            methods=["source_only"],
            seeds=[0],
            progress=False,
            real=RealData(
                target=str(real_dirs / "unlabelled"),
                eval_data=str(real_dirs / "dev"),
                camera_info=str(tmp_path / "missing.yaml"),
            ),
        )
