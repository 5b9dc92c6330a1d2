"""`bench --profile kitti` end to end on a tiny KITTI-layout folder.

The "KITTI" data here is rendered by the simulator through a small KITTI-like camera (KITTI's intrinsics
scaled to 320 wide; each labelled frame's calib a few pixels different, as KITTI's recording days are), written
in KITTI's layout with full 3-D labels, truncation and occlusion, plus a `Van` and a `DontCare` line. The
profile's data paths are replaced by these folders; the budgets are tiny (plumbing, not accuracy).
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import yaml
from reference_metrics import reference_kitti_level_counts

from sim2sg_core.adapt.bench import RealData, run_bench
from sim2sg_core.adapt.config import load_bench_profile
from sim2sg_core.data.kitti import write_kitti
from sim2sg_core.eval.ignore import DIFFICULTIES
from sim2sg_core.sim import Simulator
from sim2sg_core.sim.scene import Camera

SCALE = 320 / 1242
CAM = Camera(
    fx=721.5377 * SCALE, fy=721.5377 * SCALE, cx=609.5593 * SCALE, cy=172.854 * SCALE,
    width=320, height=97, height_m=1.65, pitch=0.0,
)  # fmt: skip


@pytest.fixture(scope="module")
def kitti_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("kitti")
    sim = Simulator("drive", "street_eu", seed=21, camera=CAM)
    (root / "unlabelled").mkdir()
    info = {
        "image_width": CAM.width,
        "image_height": CAM.height,
        "camera_matrix": {"rows": 3, "cols": 3, "data": [CAM.fx, 0, CAM.cx, 0, CAM.fy, CAM.cy, 0, 0, 1]},
        "distortion_model": "plumb_bob",
        "distortion_coefficients": {"rows": 1, "cols": 5, "data": [0] * 5},
    }
    (root / "camera_info.yaml").write_text(yaml.safe_dump(info))
    for i in range(6):
        cv2.imwrite(str(root / "unlabelled" / f"u{i:03d}.jpg"), cv2.cvtColor(sim.sample(i).image, cv2.COLOR_RGB2BGR))
    # labelled frames: each with its own calibration (the principal point a few pixels apart)
    for i in range(6, 11):
        s = sim.sample(i)
        cam = Camera(**{**CAM.to_dict(), "cy": CAM.cy + (i - 8)})
        write_kitti(root / "dev", [(s.image, s.graph, cam)], start_index=i)
    # a van (ignored for car, as KITTI's evaluation does) and a DontCare region in the first labelled frame
    first = root / "dev" / "label_2" / "000006.txt"
    first.write_text(
        first.read_text().rstrip("\n")
        + "\nVan 0.00 0 -1.60 20.00 40.00 60.00 70.00 2.00 1.90 4.80 -8.00 1.65 12.00 -1.57"
        + "\nDontCare -1 -1 -10 250.00 40.00 300.00 55.00 -1 -1 -1 -1000 -1000 -1000 -10\n"
    )
    return root


def test_kitti_profile_end_to_end(tmp_path, kitti_dirs):
    prof = load_bench_profile(
        "kitti",
        {
            "source_steps": 3,
            "train_images": 6,
            "target_images": 6,
            "keep_every": 2,
            "image_size": [320, 97],
            "bootstrap_samples": 50,
            "model": {"encoder": "small", "input_width": 320, "input_height": 96},
            "adapt": {
                "rounds": 2,
                "warmup_rounds": 1,
                "steps_per_round": 2,
                "batch_size": 2,
                "target_batch_size": 2,
                "source_pool_size": 4,
                "max_target_images": 6,
                "label_alignment": {"samples_per_round": 4, "score_threshold": 0.0},
            },
        },
    )
    assert prof.source_domain == "street_eu" and prof.camera_height == pytest.approx(1.65)
    assert prof.real is not None and prof.real.eval_data.endswith("kitti/dev")  # the shared folder by default
    real = RealData(target=str(kitti_dirs / "unlabelled"), eval_data=str(kitti_dirs / "dev"))
    methods = ["source_only", "sim2sg_full"]
    run_bench(prof, tmp_path, methods=methods, seeds=[0], progress=False, real=real)
    md = (tmp_path / "table.md").read_text()

    # AP per KITTI level, the header's GT counts equal to a count straight from the label lines (the van and
    # the DontCare region are not cars)
    ref = reference_kitti_level_counts(kitti_dirs / "dev" / "label_2", "Car")
    assert ref["hard"] >= ref["easy"] and ref["hard"] > 0
    for level, n in ref.items():
        assert f"car {level} ({n} GT)" in md
    n_car = sum(
        ln.startswith("Car ")
        for p in (kitti_dirs / "dev" / "label_2").glob("*.txt")
        for ln in p.read_text().splitlines()
    )
    assert f"AP@0.5 car ({n_car} GT)" in md
    assert "### Matched pairs" in md and "| `sim2sg_full` − `source_only` |" in md

    row_dir = tmp_path / "runs" / "drive" / "real_unlabelled" / "seed0"
    rec = json.loads((row_dir / "sim2sg_full.json").read_text())
    assert set(rec["metrics"]["difficulties"]) == set(DIFFICULTIES)
    assert rec["metrics"]["difficulties"]["hard"]["num_gt"]["car"] == ref["hard"]
    # label alignment's pseudo-objects per round are in the row (threshold 0: every prediction counts)
    assert [r["round"] for r in rec["adaptation_rounds"]] == [0, 1] and rec["target_frames"] == 6
    assert rec["adaptation_rounds"][0]["pseudo_objects"] == sum(
        rec["adaptation_rounds"][0]["pseudo_class_counts"].values()
    )
    records = np.load(row_dir / "sim2sg_full.records.npz")
    assert {"hard.det_tp", "easy.num_gt", "det_tp"} <= set(records.files)
    assert int(records["hard.num_gt"][:, 0].sum()) == ref["hard"]
    # the learning-curve snapshots of the shared source pre-training
    pre = tmp_path / "runs" / "drive" / "seed0_source_real_unlabelled_pretrain"
    assert (pre / "step000002.pt").is_file() and (pre / "model.pt").is_file()

    # re-evaluating the stored rows trains nothing and measures the same
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "checkpoints").glob("*.pt")}
    run_bench(prof, tmp_path, methods=methods, seeds=[0], progress=False, real=real, stored_only=True, reevaluate=True)
    again = json.loads((row_dir / "sim2sg_full.json").read_text())
    assert json.dumps(again["metrics"]["difficulties"]) == json.dumps(rec["metrics"]["difficulties"])  # NaN too
    assert again["adaptation_rounds"] == rec["adaptation_rounds"] and again["train_seconds"] == rec["train_seconds"]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
