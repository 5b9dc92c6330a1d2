"""The benchmark's table arithmetic: mean ± sample std over seeds, CSV rows, the gap summary and the
chart, from run records shaped like the ones ``run_bench`` stores (no training here)."""

import csv
import io

import numpy as np
import pytest

from sim2sg_core.adapt.bench import EVAL_SEEDS, split_seeds
from sim2sg_core.adapt.bench.report import write_outputs as _write_outputs
from sim2sg_core.adapt.bench.runner import _ordered
from sim2sg_core.adapt.config import load_bench_profile

CLASSES = ("car", "pedestrian")


def _run(env, seed, method, label, m, r):
    return {
        "env": env,
        "target_domain": "target",
        "seed": seed,
        "method": method,
        "label": label,
        "wall_seconds": 10.0 + seed,
        "metrics": {"map50": m, "recall@20": r, "per_class": {c: {"ap50": m} for c in CLASSES}},
    }


@pytest.fixture()
def runs():
    out = []
    for seed, (s, label, lp, f, o) in enumerate([(0.4, 0.45, 0.55, 0.7, 0.9), (0.2, 0.25, 0.45, 0.5, 0.8)]):
        out += [
            _run("drive", seed, "source_only", "Source only", s, s / 2),
            _run("drive", seed, "sim2sg_label", "Sim2SG: label alignment", label, label / 2),
            _run("drive", seed, "sim2sg_label_pred", "Sim2SG: + prediction alignment", lp, lp / 2),
            _run("drive", seed, "sim2sg_full", "Sim2SG: + appearance alignment (full)", f, f / 2),
            _run("drive", seed, "oracle", "Oracle (labelled target)", o, o / 2),
        ]
    return out


def test_tables_report_mean_std_gap_and_ablation_steps(tmp_path, runs):
    prof = load_bench_profile("full")
    methods = ["source_only", "sim2sg_label", "sim2sg_label_pred", "sim2sg_full", "oracle"]
    res = _write_outputs(prof, tmp_path, runs, ["drive"], methods, [0, 1], ["target"])
    md = (tmp_path / "table.md").read_text()
    # source only: mAP 0.4 and 0.2 -> 0.300 ± 0.141 (sample std)
    assert f"| Source only | 0.300 ± {np.std([0.4, 0.2], ddof=1):.3f}" in md
    # full - source = 0.6 - 0.3; oracle - source = 0.85 - 0.3 -> 55 %
    assert "mAP +0.300" in md and "Recall@20 +0.150" in md and "Closes 55%" in md
    assert "label alignment → + prediction alignment: mAP +0.150" in md
    rows = list(csv.DictReader(io.StringIO((tmp_path / "table.csv").read_text())))
    full_map = [r for r in rows if r["method"] == "sim2sg_full" and r["metric"] == "mAP50"][0]
    assert float(full_map["mean"]) == pytest.approx(0.6) and full_map["seeds"] == "2"
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [r["method"] for r in res["rows"]] == methods


def test_runs_from_parallel_workers_are_put_back_in_order(runs):
    shuffled = runs[5:] + runs[:5]
    assert [r["seed"] for r in _ordered(shuffled, ["drive"], [0, 1])] == [0] * 5 + [1] * 5


def test_profile_overrides_merge_and_typos_are_refused():
    from sim2sg_core.adapt.cli import _parse_sets
    from sim2sg_core.adapt.config import AdaptConfigError

    p = load_bench_profile("full", _parse_sets(["adapt.rounds=8", "eval_images=50"]))
    assert (p.adapt.rounds, p.eval_images, p.adapt.steps_per_round) == (8, 50, 60)
    assert p.budget_steps == p.source_steps + 8 * 60
    with pytest.raises(AdaptConfigError, match="roundz"):
        load_bench_profile("full", _parse_sets(["adapt.roundz=8"]))


def test_rows_carry_the_scene_graph_benchmark_modes_when_the_runs_have_them():
    from sim2sg_core.adapt.bench import summarise

    def sgb(v):
        return {mode: {"R@20": v, "mR@20": v / 2, "ngR@20": v + 0.1} for mode in ("PredCls", "SGCls", "SGDet")}

    new = [_run("drive", s, "oracle", "Oracle", 0.5, 0.4) for s in (0, 1)]
    for r, v in zip(new, (0.4, 0.6)):
        r["metrics"]["scene_graph"] = sgb(v)
    (row,) = summarise(new, ["drive"], ["oracle"])
    assert row["PredCls R@20"] == pytest.approx((0.5, np.std([0.4, 0.6], ddof=1)))
    assert row["SGDet mR@20"][0] == pytest.approx(0.25) and row["SGCls ngR@20"][0] == pytest.approx(0.6)
    # runs stored before the modes existed: the rows are as before
    (old,) = summarise([_run("drive", 0, "oracle", "Oracle", 0.5, 0.4)], ["drive"], ["oracle"])
    assert not any(" R@" in k or " mR@" in k for k in old)


def test_split_seeds_are_disjoint_and_profiles_use_their_split():
    seen: dict = {}
    for bench_seed in range(200):
        for kind, sd in split_seeds(bench_seed).items():
            assert sd not in seen, f"bench seed {bench_seed} {kind} reuses {seen.get(sd)}"
            seen[sd] = (bench_seed, kind)
    assert set(split_seeds(0)) == {"train", "target", "val", "test"} and set(EVAL_SEEDS) == {"val", "test"}
    assert load_bench_profile("quick").eval_split == "val" and load_bench_profile("full").eval_split == "test"
    assert load_bench_profile("full").target_domains == ["target", "target3"]
    with pytest.raises(ValueError):
        split_seeds(-1)


def _records(tmp_path, name, seed, quality):
    """Per-image records of a detector that finds a ``quality`` share of 40 images' single car exactly."""
    from sim2sg_core.adapt.bench.runner import _save_npz
    from sim2sg_core.eval.detection import match_detections
    from sim2sg_core.eval.scene_graph import scene_graph_recall
    from sim2sg_core.scene_graph import SceneGraph, SceneObject

    rng = np.random.default_rng(seed)
    gts = [SceneGraph(objects=[SceneObject("car", 0, (10.0, 10.0, 50.0, 40.0))]) for _ in range(40)]
    hit = rng.random(40) < quality
    preds = [
        SceneGraph(
            objects=[
                SceneObject(
                    "car", 0, (10.0, 10.0, 50.0, 40.0) if h else (200.0, 10, 240, 40), float(rng.uniform(0.1, 1))
                )
            ]
        )
        for h in hit
    ]
    rec = match_detections(preds, gts, 2).to_arrays()
    rec["recall@20"] = np.asarray(scene_graph_recall(preds, gts, (20,))["per_image@20"])
    path = tmp_path / f"{name}_{seed}_{quality}.npz"
    _save_npz(str(path), rec)
    return str(path)


def test_two_targets_get_their_own_sections_and_bootstrap_intervals(tmp_path):
    prof = load_bench_profile("full")
    prof.bootstrap_samples = 200
    runs = []
    for tdom, gain in (("target", 0.5), ("target3", 0.0)):
        for seed in (0, 1, 2):
            for method, label, q in (("source_only", "Source only", 0.3), ("sim2sg_full", "Full", 0.3 + gain)):
                r = _run("drive", seed, method, label, q, q / 2)
                r["target_domain"], r["budget_steps"] = tdom, 540
                r["records"] = (
                    _records(tmp_path, f"{tdom}_{method}", seed, q)
                    if gain or method == "source_only"
                    else _records(tmp_path, f"{tdom}_source_only", seed, 0.3)
                )  # identical to source only
                runs.append(r)
    res = _write_outputs(
        prof, tmp_path, runs, ["drive"], ["source_only", "sim2sg_full"], [0, 1, 2], ["target", "target3"]
    )
    md = (tmp_path / "table.md").read_text()
    assert "## drive → `target`" in md and "## drive → `target3`" in md and "Evaluation split: `test`" in md
    rows = {(r["target_domain"], r["method"]): r for r in res["rows"]}
    big = rows[("target", "sim2sg_full")]["gain"]["mAP50"]
    assert big["diff"] > 0.3 and 0 < big["low"] <= big["diff"] <= big["high"]
    same = rows[("target3", "sim2sg_full")]["gain"]["mAP50"]
    assert same["diff"] == 0.0 and same["low"] == 0.0 and same["high"] == 0.0
    assert rows[("target", "source_only")]["gain"] is None  # no interval against itself
    assert (tmp_path / "chart_target.png").exists() and (tmp_path / "chart_target3.png").exists()
    csv_rows = list(csv.DictReader(io.StringIO((tmp_path / "table.csv").read_text())))
    assert any(r["metric"] == "gain_mAP50_vs_source_only" and r["target_domain"] == "target3" for r in csv_rows)
    # runs stored before per-image records existed: no interval, the table says n/a
    for r in runs:
        r.pop("records")
    _write_outputs(prof, tmp_path, runs, ["drive"], ["source_only", "sim2sg_full"], [0, 1, 2], ["target"])
    assert "| n/a | n/a |" in (tmp_path / "table.md").read_text()


def test_stored_only_tables_come_from_the_stored_rows_and_list_the_missing_ones(tmp_path, runs):
    import json

    from sim2sg_core.adapt.bench import run_bench
    from sim2sg_core.adapt.bench.runner import _row_file

    prof = load_bench_profile("full")
    for r in runs:  # rows stored by earlier commands: two seeds, the oracle only for seed 0
        if r["method"] != "oracle" or r["seed"] == 0:
            path = _row_file(tmp_path, r["env"], r["target_domain"], r["seed"], r["method"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(r))
    methods = ["source_only", "sim2sg_full", "oracle", "bn_target"]
    res = run_bench(
        prof, tmp_path, envs=["drive"], methods=methods, seeds=[0, 1], target_domain="target", stored_only=True
    )
    assert [(r["method"], r["seeds"]) for r in res["rows"]] == [("source_only", 2), ("sim2sg_full", 2), ("oracle", 1)]
    md = (tmp_path / "table.md").read_text()
    assert "| seeds | steps | wall (s) |" in md
    assert "- drive → `target`, `oracle`: seeds [1]" in md and "- drive → `target`, `bn_target`: seeds [0, 1]" in md
    assert not (tmp_path / "runs" / "drive" / "target" / "seed0" / "bn_target.json").exists()  # nothing trained
    with pytest.raises(FileNotFoundError, match="no stored benchmark rows"):
        run_bench(prof, tmp_path / "empty", envs=["drive"], methods=methods, seeds=[0], stored_only=True)


def test_the_overview_reads_each_rows_gain_across_environments(tmp_path, runs):
    clevr = [{**r, "env": "clevr"} for r in runs if r["method"] in ("source_only", "sim2sg_full")]
    prof = load_bench_profile("full")
    _write_outputs(
        prof, tmp_path, runs + clevr, ["drive", "clevr"], ["source_only", "sim2sg_full", "oracle"], [0, 1], ["target"]
    )
    md = (tmp_path / "table.md").read_text()
    overview = md[md.index("## Δ mAP@0.5 vs source only") :]
    assert "| Method | drive → `target` | clevr → `target` |" in overview
    # no per-image records in these runs: the cells say so, with the seed count; clevr has no oracle row
    assert "| Sim2SG: + appearance alignment (full) | n/a (2) | n/a (2) |" in overview
    assert "| Oracle (labelled target) | n/a (2) |  |" in overview and "| Source only |" not in overview


def test_pairs_script_compares_two_stored_rows_directly(tmp_path):
    """bench --pairs: A − B on the seeds both rows have, from the stored rows (a leave-one-out or a matched
    control, which the table's Δ vs source only cannot show); a row not stored says so. Trains nothing."""
    import json

    from sim2sg_core.adapt.bench.runner import _row_file
    from sim2sg_core.adapt.cli import main

    for seed in (0, 1, 2):
        for method, q in (("sim2sg_full", 0.9), ("sim2sg_full_no_fda", 0.3)):
            r = _run("drive", seed, method, method, q, q / 2)
            r["target_domain"], r["budget_steps"] = "target", 540
            r["records"] = _records(tmp_path, method, seed, q)
            path = _row_file(tmp_path, "drive", "target", seed, method)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(r))
    args = ["bench", "--profile", "full", "--env", "all", "--seeds", "0,1,2", "--target-domain", "target"]
    assert main([*args, "--out", str(tmp_path), "--pairs", "sim2sg_full-sim2sg_full_no_fda", "--set",
                 "bootstrap_samples=200"]) == 0  # fmt: skip
    md = (tmp_path / "pairs.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| `sim2sg_full` − `sim2sg_full_no_fda`"))
    drive, clevr, _dining = [c.strip() for c in row.split("|")[2:5]]
    diff, low = float(drive.split()[0]), float(drive.split("[")[1].split(",")[0])
    assert diff > 0.3 and low > 0 and drive.endswith("(3)")
    assert clevr == "not stored"
    with pytest.raises(ValueError, match="unknown method"):
        main([*args, "--out", str(tmp_path), "--pairs", "sim2sg_full-no_such_row"])
