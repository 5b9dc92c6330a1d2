"""The benchmark's tables, CSV, results.json and chart, written from stored run records (trains nothing)."""

from __future__ import annotations

import copy
import csv
import io
import json
import math
from pathlib import Path
from typing import Optional

import numpy as np

from sim2sg_core.adapt.bench.label_audit import label_audit_lines
from sim2sg_core.adapt.bench.real_report import difficulty_table, pair_differences, pseudo_label_table
from sim2sg_core.adapt.bench.stats import fmt_mean_std, mean_std
from sim2sg_core.adapt.bench.splits import EVAL_SEEDS, SEED_STRIDE, vocab_of
from sim2sg_core.adapt.config import config_to_dict
from sim2sg_core.eval.bootstrap import paired_bootstrap
from sim2sg_core.utils.io import atomic_write_bytes, atomic_write_text


def json_default(o):
    """``json.dumps`` ``default=`` for NumPy scalars in run records."""
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o).__name__)


def summarise(runs: list[dict], envs, methods, k: int = 20) -> list[dict]:
    """One row per (env, method): mean/std over seeds of per-class AP, mAP, R@K and wall time
    (``runs`` of one target domain)."""
    rows = []
    for env in envs:
        for m in methods:
            rs = [r for r in runs if r["env"] == env and r["method"] == m]
            if not rs:
                continue
            per_class = rs[0]["metrics"]["per_class"]
            # classes absent from the evaluation labels have no AP (and are not in the mAP)
            classes = [c for c in per_class if per_class[c].get("num_gt", 1) > 0]
            row = {
                "env": env,
                "method": m,
                "label": rs[0]["label"],
                "seeds": len(rs),
                "classes": classes,
                "seed_list": [r["seed"] for r in rs],
                "absent": [c for c in per_class if c not in classes],
                "num_gt": {c: per_class[c].get("num_gt") for c in classes},
            }
            for c in classes:
                row[f"AP50/{c}"] = mean_std([r["metrics"]["per_class"][c]["ap50"] for r in rs])
            row["mAP50"] = mean_std([r["metrics"]["map50"] for r in rs])
            row[f"R@{k}"] = mean_std([r["metrics"][f"recall@{k}"] for r in rs])
            # Scene-Graph-Benchmark modes (results.json only; runs stored before them have none)
            if all("scene_graph" in r["metrics"] for r in rs):
                for mode in rs[0]["metrics"]["scene_graph"]:
                    for key in (f"R@{k}", f"mR@{k}", f"ngR@{k}"):
                        vals = [r["metrics"]["scene_graph"][mode].get(key) for r in rs]
                        if all(v is not None for v in vals):
                            row[f"{mode} {key}"] = mean_std(vals)
            row["wall_s"] = mean_std([r["wall_seconds"] for r in rs])
            row["steps"] = rs[0].get("budget_steps")
            rows.append(row)
    return rows


def gain_intervals(
    runs: list[dict], env: str, method: str, k: int, n_boot: int, baseline: str = "source_only"
) -> Optional[dict]:
    """Paired-bootstrap 95 % intervals of ``method`` − ``baseline`` (mAP and Recall@K) over the seeds both
    have, re-sampling seeds and evaluation images (:func:`sim2sg_core.eval.bootstrap.paired_bootstrap`);
    None when either lacks per-image records (runs stored before them)."""
    mine = {r["seed"]: r for r in runs if r["env"] == env and r["method"] == method}
    base = {r["seed"]: r for r in runs if r["env"] == env and r["method"] == baseline}
    seeds = sorted(set(mine) & set(base))
    if not seeds or method == baseline:
        return None
    pairs = []
    for s in seeds:
        paths = (Path(mine[s].get("records", "")), Path(base[s].get("records", "")))
        if not all(p.is_file() for p in paths):
            return None
        pairs.append(paths)
    # the tables are rewritten after every finished run; the intervals of unchanged records are reused
    key = (tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for pair in pairs for p in pair), k, n_boot)
    if key not in _GAIN_CACHE:
        recs = [tuple(dict(np.load(p)) for p in pair) for pair in pairs]
        _GAIN_CACHE[key] = {
            name: paired_bootstrap([m for m, _ in recs], [b for _, b in recs], metric, n_boot=n_boot)
            for name, metric in (("mAP50", "mAP"), (f"R@{k}", f"R@{k}"))
        }
    return copy.deepcopy(_GAIN_CACHE[key])


#: gain_intervals' results by (record files with their mtimes and sizes, K, draws).
_GAIN_CACHE: dict = {}


def _fmt_ci(ci: Optional[dict]) -> str:
    if not ci or math.isnan(ci["diff"]):
        return "n/a"
    return f"{ci['diff']:+.3f} [{ci['low']:+.3f}, {ci['high']:+.3f}]"


def write_outputs(profile, out_dir: Path, runs, envs, methods, seeds, tdoms, missing=None) -> dict:
    """table.md, table.csv, results.json and the charts of ``runs``; ``missing`` (stored-only tables) lists
    the (env, target, method, seed) rows that were asked for but not stored."""
    k = int(getattr(profile, "recall_k", 20))
    real = any(t.startswith("real_") for t in tdoms)
    n_eval = runs[0]["metrics"].get("num_images", profile.eval_images) if runs else profile.eval_images
    split = (
        "the real camera's labelled frames"
        if real
        else f"`{profile.eval_split}` (simulator seed {EVAL_SEEDS[profile.eval_split]} + {SEED_STRIDE} × bench seed; "
        + ("settings may be chosen on it)" if profile.eval_split == "val" else "never used to choose settings)")
    )
    md = [
        f"# Sim2SG benchmark — profile `{profile.name}`, target domain(s) {', '.join(f'`{t}`' for t in tdoms)}",
        "",
        f"Evaluation split: {split}. Seeds: {list(seeds)} (mean ± sample std over the seeds a row has, its "
        "`seeds` column). Budget per method: "
        f"{profile.budget_steps} steps (source pre-training {profile.source_steps} + adaptation "
        f"{profile.adapt.total_steps}; domain randomisation trains {profile.budget_steps} steps from scratch, "
        f"the oracle fine-tunes the source model for {profile.adapt.total_steps}). Every phase steps through the "
        "one optimisation engine (AdamW, warm-up then cosine decay restarted per phase, NaN guard, gradient "
        "clipping): the same total budget for every row, no convergence criterion. "
        f"Images {profile.image_size or f'{profile.image_scale}x env default'}; "
        f"{profile.train_images} labelled training images, "
        f"{profile.target_images} unlabelled target images, {n_eval} labelled target "
        f"evaluation images. AP@0.5 (COCO 101-point), Recall@{k} (SGDet, graph constraint). "
        "Δ vs source only: mean over seeds with a 95 % paired-bootstrap interval (seeds and evaluation images "
        f"re-sampled together, {profile.bootstrap_samples} draws). Wall time = training (incl. shared source "
        "pre-training for adaptation rows) on this machine.",
        "",
    ]
    if real:
        md += [
            f"Real target: labelled source domain `{profile.source_domain}`, randomized domain "
            f"`{profile.randomized_domain}`, rendered through the real camera's calibration. "
            "Ground-truth relationships follow the same rule from the labelled boxes, placed on the ground "
            "through the calibration.",
            "",
            *label_audit_lines(out_dir),
        ]
    csv_buf = io.StringIO()
    writer = csv.writer(csv_buf)
    writer.writerow(["env", "target_domain", "method", "label", "seeds", "metric", "mean", "std"])
    all_rows: list[dict] = []
    for tdom in tdoms:
        truns = [r for r in runs if r.get("target_domain", tdom) == tdom]
        rows = summarise(truns, envs, methods, k)
        for r in rows:
            r["target_domain"] = tdom
        all_rows += rows
        for env in envs:
            er = [r for r in rows if r["env"] == env]
            if not er:
                continue
            for r in er:
                r["gain"] = gain_intervals(truns, env, r["method"], k, profile.bootstrap_samples)
            classes = er[0]["classes"]
            head = [f"AP@0.5 {c}" + (f" ({er[0]['num_gt'][c]} GT)" if real else "") for c in classes]
            md += [
                f"## {env} → `{tdom}`" if len(tdoms) > 1 else f"## {env}",
                "",
                "| Method | " + " | ".join(head) + f" | mAP@0.5 | Recall@{k} | Δ mAP vs source only [95 % CI] "
                f"| Δ Recall@{k} [95 % CI] | seeds | steps | wall (s) |",
                "|---|" + "---|" * (len(classes) + 7),
            ]
            for r in er:
                cells = [fmt_mean_std(r[f"AP50/{c}"], r["seeds"]) for c in classes]
                cells += [fmt_mean_std(r["mAP50"], r["seeds"]), fmt_mean_std(r[f"R@{k}"], r["seeds"])]
                gain = r["gain"] or {}
                cells += [_fmt_ci(gain.get("mAP50")), _fmt_ci(gain.get(f"R@{k}"))]
                cells += [str(r["seeds"]), str(r["steps"] or "")]
                wm, ws = r["wall_s"]
                cells.append(f"{wm:.0f}" + (f" ± {ws:.0f}" if r["seeds"] > 1 else ""))
                md.append(f"| {r['label']} | " + " | ".join(cells) + " |")
                for key in [f"AP50/{c}" for c in classes] + ["mAP50", f"R@{k}", "wall_s"]:
                    writer.writerow([env, tdom, r["method"], r["label"], r["seeds"], key, *r[key]])
                for key, ci in gain.items():
                    writer.writerow(
                        [
                            env,
                            tdom,
                            r["method"],
                            r["label"],
                            r["seeds"],
                            f"gain_{key}_vs_source_only",
                            ci["diff"],
                            "",
                            ci["low"],
                            ci["high"],
                        ]
                    )
            if er[0]["absent"]:
                md += [
                    "",
                    f"Classes with no labels in the evaluation set ({', '.join(er[0]['absent'])}) are left "
                    "out of the table and of the mAP.",
                ]
            md += ["", _gap_summary(er, k), ""]
            if real:
                eruns = [r for r in truns if r["env"] == env]
                md += difficulty_table(eruns, methods, k)
                pairs = [tuple(p.split("-", 1)) for p in profile.matched_pairs]
                md += pair_differences(eruns, pairs, vocab_of(env).classes, profile.bootstrap_samples)
                md += pseudo_label_table(eruns, methods)
    md += _gain_overview(all_rows, envs, methods, tdoms)
    if missing:
        md += ["## Rows not stored (not run)", "", *_missing_lines(missing), ""]
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "table.md", "\n".join(md) + "\n")
    atomic_write_text(out_dir / "table.csv", csv_buf.getvalue())
    atomic_write_text(
        out_dir / "results.json",
        json.dumps(
            {
                "profile": config_to_dict(profile),
                "target_domains": list(tdoms),
                "runs": runs,
                "gains_vs_source_only": [
                    {
                        "env": r["env"],
                        "target_domain": r["target_domain"],
                        "method": r["method"],
                        **(r.get("gain") or {}),
                    }
                    for r in all_rows
                    if r.get("gain")
                ],
            },
            indent=1,
            default=json_default,
        ),
    )
    for tdom in tdoms:
        rows = [r for r in all_rows if r["target_domain"] == tdom]
        if rows:
            _bar_chart(out_dir / ("chart.png" if len(tdoms) == 1 else f"chart_{tdom}.png"), rows, envs, k)
    return {"rows": all_rows, "runs": runs, "table": "\n".join(md)}


def _gain_overview(rows: list[dict], envs, methods, tdoms) -> list[str]:
    """One table of every row's Δ mAP vs source only [95 % CI] across environments and targets (what each
    ingredient earns where), when there is more than one section to read across."""
    cols = [(e, t) for t in tdoms for e in envs if any(r["env"] == e and r["target_domain"] == t for r in rows)]
    by = {(r["env"], r["target_domain"], r["method"]): r for r in rows}
    lines = []
    for m in methods:
        cells = []
        for e, t in cols:
            r = by.get((e, t, m))
            cells.append("" if r is None else f"{_fmt_ci((r.get('gain') or {}).get('mAP50'))} ({r['seeds']})")
        if m != "source_only" and any(cells):
            label = next(r["label"] for (_, _, mm), r in by.items() if mm == m)
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if len(cols) < 2 or not lines:
        return []
    head = " | ".join(f"{e} → `{t}`" for e, t in cols)
    return [
        "## Δ mAP@0.5 vs source only [95 % CI] (seeds), every environment",
        "",
        f"| Method | {head} |",
        "|---|" + "---|" * len(cols),
        *lines,
        "",
    ]


def _missing_lines(missing: list[tuple[str, str, str, int]]) -> list[str]:
    """One line per (env, target, method) with the seeds it lacks."""
    lacking: dict[tuple[str, str, str], list[int]] = {}
    for env, tdom, method, seed in missing:
        lacking.setdefault((env, tdom, method), []).append(seed)
    return [f"- {env} → `{tdom}`, `{method}`: seeds {seeds}" for (env, tdom, method), seeds in lacking.items()]


def _gap_summary(rows: list[dict], k: int) -> str:
    by = {r["method"]: r for r in rows}
    if "source_only" not in by or "sim2sg_full" not in by:
        return ""
    s, f = by["source_only"], by["sim2sg_full"]
    parts = [
        f"Full Sim2SG − source only: mAP {f['mAP50'][0] - s['mAP50'][0]:+.3f}, "
        f"Recall@{k} {f[f'R@{k}'][0] - s[f'R@{k}'][0]:+.3f}."
    ]
    if "sim2sg_dr" in by:
        d = by["sim2sg_dr"]
        parts.append(
            f"DR + Sim2SG − source only: mAP {d['mAP50'][0] - s['mAP50'][0]:+.3f}, "
            f"Recall@{k} {d[f'R@{k}'][0] - s[f'R@{k}'][0]:+.3f}."
        )
    if "oracle" in by:
        gap = by["oracle"]["mAP50"][0] - s["mAP50"][0]
        if gap > 0:
            parts.append(
                f"Closes {100 * (f['mAP50'][0] - s['mAP50'][0]) / gap:.0f}% of the source-only → oracle mAP gap."
            )
    ladder = [m for m in ("sim2sg_label", "sim2sg_label_pred", "sim2sg_full") if m in by]
    if len(ladder) > 1:
        steps = [
            f"{by[a]['label'].split(': ')[-1]} → {by[b]['label'].split(': ')[-1]}: mAP "
            f"{by[b]['mAP50'][0] - by[a]['mAP50'][0]:+.3f}, "
            f"Recall@{k} {by[b][f'R@{k}'][0] - by[a][f'R@{k}'][0]:+.3f}"
            for a, b in zip(ladder, ladder[1:])
        ]
        parts.append("Ablation steps: " + "; ".join(steps) + ".")
    return " ".join(parts)


def _bar_chart(path: Path, rows, envs, k: int) -> None:
    import matplotlib  # deferred: plotting only for the chart (and the Agg backend must be chosen first)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: after matplotlib.use("Agg")

    envs = [e for e in envs if any(r["env"] == e for r in rows)]
    fig, axes = plt.subplots(1, len(envs), figsize=(6 * len(envs), 4.5), squeeze=False)
    for ax, env in zip(axes[0], envs):
        er = [r for r in rows if r["env"] == env]
        x = np.arange(len(er))
        for j, (key, name) in enumerate((("mAP50", "mAP@0.5"), (f"R@{k}", f"Recall@{k}"))):
            means = [r[key][0] for r in er]
            stds = [r[key][1] for r in er]
            ax.bar(x + (j - 0.5) * 0.38, means, 0.38, yerr=stds, capsize=3, label=name)
        ax.set_xticks(x)
        ax.set_xticklabels([r["label"] for r in er], rotation=35, ha="right", fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_title(env)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def pairs_table(runs: list[dict], pairs: list[tuple[str, str]], tdom: str, envs, n_boot: int, source: str) -> str:
    """Markdown: A − B mAP@0.5 for each (A, B) pair and environment, the mean over the seeds both rows have with
    the tables' 95 % paired bootstrap (a leave-one-out or a matched control, where the table's Δ column only
    compares with source only)."""
    lines = [
        f"Δ mAP@0.5, A − B on the seeds both rows have [95 % paired-bootstrap CI] (seeds); target `{tdom}`, "
        f"rows stored in `{source}`",
        "",
        "| A − B | " + " | ".join(envs) + " |",
        "|---|" + "---|" * len(envs),
    ]
    for a, b in pairs:
        cells = []
        for env in envs:
            g = gain_intervals(runs, env, a, k=20, n_boot=n_boot, baseline=b)
            if g is None:
                cells.append("not stored")
                continue
            m = g["mAP50"]
            cells.append(f"{m['diff']:+.3f} [{m['low']:+.3f}, {m['high']:+.3f}] ({m['seeds']})")
        lines.append(f"| `{a}` − `{b}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
