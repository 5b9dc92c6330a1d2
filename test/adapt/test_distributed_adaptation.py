"""torchrun data-parallel adaptation: 2 gloo processes split the target frames, gather every rank's
predictions before label alignment (the same pseudo-statistics as one process), step the model and the
discriminators together, and only rank 0 writes files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import pytest
import torch

from sim2sg_core.adapt.targets import SimTargetSource
from sim2sg_core.train.checkpoint import load_checkpoint

SIZE = (160, 64)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, torchrun_support):
    from sim2sg_core.__main__ import main

    root = tmp_path_factory.mktemp("ddp_adapt")
    cfg = root / "model.yaml"
    cfg.write_text(
        "model:\n  encoder_channels: [8, 16, 16, 24, 24]\n  feature_channels: 16\n  head_channels: 16\n"
        f"  input_width: {SIZE[0]}\n  input_height: {SIZE[1]}\n  relation_hidden: 32\n"
        "train:\n  amp: false\n  num_workers: 0\n  warmup_steps: 5\n"
    )
    torch.set_num_threads(1)
    assert (
        main(
            [
                "train",
                "--config",
                str(cfg),
                "--out",
                str(root / "src"),
                "--steps",
                "60",
                "--batch-size",
                "4",
                "--train-images",
                "64",
                "--eval-images",
                "0",
                "--device",
                "cpu",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    frames = root / "frames"
    frames.mkdir()
    for i, rgb in enumerate(SimTargetSource(env="drive", domain="target", seed=7, count=10, image_size=SIZE).load()):
        cv2.imwrite(str(frames / f"{i:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return {
        "root": root,
        "init": root / "src" / "model.pt",
        "frames": frames,
        "env": torchrun_support.write_logging_env(root),
        "support": torchrun_support,
    }


def _adapt(setup, nproc: int, out: Path):
    sets = [
        "rounds=2",
        "warmup_rounds=1",
        "steps_per_round=3",
        "batch_size=4",
        "target_batch_size=2",
        "source_pool_size=8",
        "label_alignment.samples_per_round=8",
        "label_alignment.score_threshold=0.05",
        "progress_bar=false",
        "device=cpu",
        "num_threads=1",
    ]
    cmd = [
        setup["support"].TORCHRUN,
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "sim2sg_core",
        "adapt",
        "--init",
        str(setup["init"]),
        "--target",
        str(setup["frames"]),
        "--out",
        str(out),
    ]
    for s in sets:
        cmd += ["--set", s]
    run = subprocess.run(cmd, env=setup["env"], cwd=setup["root"], capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    return load_checkpoint(out)


@pytest.mark.slow
def test_two_ranks_gather_the_pseudo_statistics_of_all_frames_and_one_rank_writes(setup):
    one = _adapt(setup, 1, setup["root"] / "one.pt")
    two = _adapt(setup, 2, setup["root"] / "two.pt")
    h1, h2 = (ck["extra"]["adaptation"]["history"] for ck in (one, two))
    # round 0 predicts with the same initial model on the same 10 frames: 5 per rank, gathered
    assert h1[0]["pseudo_objects"] > 0
    assert (h2[0]["pseudo_objects"], h2[0]["pseudo_class_counts"]) == (
        h1[0]["pseudo_objects"],
        h1[0]["pseudo_class_counts"],
    )
    assert one["step"] == two["step"] == 6 and two["extra"]["adaptation"]["target_images"] == 10
    init = load_checkpoint(setup["init"])["state_dict"]
    moved = max((two["state_dict"][k] - init[k]).abs().max().item() for k in init if init[k].is_floating_point())
    assert moved > 0
    writers = {}
    for rank, dst in setup["support"].writes(setup["root"]):
        if Path(dst).name.startswith("two.pt"):
            writers.setdefault(rank, []).append(Path(dst).name)
    assert set(writers) == {"0"} and "two.pt" in writers["0"] and "two.pt.resume" in writers["0"], writers
    assert not (setup["root"] / "two.pt.resume").exists()
