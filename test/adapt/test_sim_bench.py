"""A tiny simulator benchmark end to end: two targets share the training that never sees the target, the
profile's evaluation split is the one rendered, and every row keeps per-image records whose bootstrap
interval reaches the table."""

import json

import numpy as np
import pytest

import sim2sg_core.adapt.bench.runner as bench_runner
from sim2sg_core.adapt.bench import run_bench, split_seeds
from sim2sg_core.adapt.config import load_bench_profile

TINY = {
    "image_size": [96, 32],
    "source_steps": 3,
    "train_images": 6,
    "target_images": 6,
    "eval_images": 5,
    "bootstrap_samples": 20,
    "num_threads": 1,
    "model": {
        "encoder_channels": [8, 16, 24, 32, 48],
        "feature_channels": 32,
        "head_channels": 32,
        "relation_hidden": 64,
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
}


@pytest.mark.slow
def test_two_targets_share_target_free_training_and_keep_records(tmp_path, monkeypatch):
    prof = load_bench_profile("quick", {**TINY, "target_domains": ["target", "target3"], "eval_split": "test"})
    rendered = []
    real_render = bench_runner.render_split

    def spy(env, domain, seed, count, image_size, camera=None):  # records what is rendered, renders it
        rendered.append((domain, seed))
        return real_render(env, domain, seed, count, image_size, camera=camera)

    monkeypatch.setattr(bench_runner, "render_split", spy)
    res = run_bench(
        prof, tmp_path, methods=["source_only", "domain_randomization", "sim2sg_full"], seeds=[0], progress=False
    )
    seeds = split_seeds(0)
    # evaluation images come from the test split of each target, never from val
    assert ("target", seeds["test"]) in rendered and ("target3", seeds["test"]) in rendered
    assert all(sd != seeds["val"] for _, sd in rendered)
    # the source pre-training and domain randomisation ran once for both targets
    shared = sorted(p.name for p in (tmp_path / "runs" / "drive").iterdir() if p.name.startswith("seed0_"))
    assert shared == ["seed0_domain_randomization_randomized_train", "seed0_source_pretrain"]
    assert len(res["runs"]) == 6 and {r["target_domain"] for r in res["runs"]} == {"target", "target3"}
    for r in res["runs"]:
        rec = np.load(r["records"])
        assert rec["num_gt"].shape == (5, 4) and r["eval_split"] == "test"
    assert (tmp_path / "checkpoints" / "target3" / "sim2sg_full_seed0.pt").exists()
    md = (tmp_path / "table.md").read_text()
    assert "## drive → `target3`" in md and "Δ mAP vs source only [95 % CI]" in md
    gains = json.loads((tmp_path / "results.json").read_text())["gains_vs_source_only"]
    assert {(g["target_domain"], g["method"]) for g in gains} == {
        (t, m) for t in ("target", "target3") for m in ("domain_randomization", "sim2sg_full")
    }
    # re-running reads every row back instead of training again
    again = run_bench(
        prof, tmp_path, methods=["source_only", "domain_randomization", "sim2sg_full"], seeds=[0], progress=False
    )
    assert [r["checkpoint"] for r in again["runs"]] == [r["checkpoint"] for r in res["runs"]]


def test_a_row_started_from_the_dr_model_reuses_it_and_counts_its_steps(tmp_path):
    import torch

    prof = load_bench_profile("quick", TINY)
    res = run_bench(prof, tmp_path, methods=["domain_randomization", "dr_then_continued"], seeds=[0], progress=False)
    dr, cont = res["runs"]
    # no second, shorter randomized pre-training: the row starts from the DR row's finished model
    shared = sorted(p.name for p in (tmp_path / "runs" / "drive").iterdir() if p.name.startswith("seed0_"))
    assert shared == ["seed0_domain_randomization_randomized_train"]
    dr_dir = tmp_path / "runs" / "drive" / shared[0]
    assert cont["pretrain_seconds"] == pytest.approx(float((dr_dir / "train_seconds.txt").read_text()), abs=0.05)
    assert (dr["budget_steps"], cont["budget_steps"]) == (prof.budget_steps, prof.budget_steps + prof.adapt.total_steps)
    # and it trained on from there: same architecture, other weights
    a = torch.load(dr["checkpoint"], map_location="cpu", weights_only=False)["state_dict"]
    b = torch.load(cont["checkpoint"], map_location="cpu", weights_only=False)["state_dict"]
    assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())
