"""The real-camera sections of a benchmark table: AP per KITTI difficulty with the ground-truth counts, each
matched pair's difference on it with a paired-bootstrap interval, and how many pseudo-objects per class label
alignment received in each round (the evidence it re-fits the simulator's content from).

Everything here reads the stored run records (``runs/.../<method>.json`` and ``<method>.records.npz``), so a
table can be rebuilt without training.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from sim2sg_core.adapt.bench.stats import fmt_mean_std, mean_std, valid
from sim2sg_core.eval.bootstrap import paired_bootstrap
from sim2sg_core.eval.ignore import DIFFICULTIES

#: The classes a KITTI evaluation folder labels (vegetation / house have no KITTI labels).
REAL_CLASSES = ("car", "pedestrian")


def adaptation_rounds(history: Sequence[dict]) -> list[dict]:
    """Per analysis round of an adaptation: the pseudo-objects per class label alignment / self-training
    received (``[{"round", "pseudo_objects", "pseudo_class_counts"}]``; rounds without analysis are skipped)."""
    rounds: list[dict] = []
    for info in history:
        if "pseudo_objects" not in info and "pseudo_class_counts" not in info:
            continue
        rounds.append(
            {
                "round": int(info.get("round", len(rounds))),
                "pseudo_objects": int(info.get("pseudo_objects", 0)),
                "pseudo_class_counts": {str(k): int(v) for k, v in (info.get("pseudo_class_counts") or {}).items()},
            }
        )
    return rounds


def _cell(values: list) -> str:
    v = valid(values)
    return fmt_mean_std(mean_std(v), len(v))


def difficulty_table(runs: list[dict], methods: Sequence[str], recall_k: int) -> list[str]:
    """Markdown: per method, car / pedestrian AP@0.5 for KITTI easy / moderate / hard and SGDet Recall@K per
    level (mean ± std over seeds), the ground-truth count of each level in the header. Empty when the runs'
    labels carry no difficulty fields."""
    with_levels = [r for r in runs if (r.get("metrics") or {}).get("difficulties")]
    if not with_levels:
        return []
    levels = list(DIFFICULTIES)
    first = with_levels[0]["metrics"]["difficulties"]
    head: list[str] = []
    keys: list[tuple[str, str, Optional[str]]] = []
    for c in REAL_CLASSES:
        for lv in levels:
            n = first[lv]["num_gt"].get(c)
            if n is None:
                continue
            head.append(f"{c} {lv} ({n} GT)")
            keys.append((lv, "ap50", c))
    for lv in levels:
        head.append(f"R@{recall_k} {lv}")
        keys.append((lv, f"SGDet R@{recall_k}", None))
    lines = [
        "### AP@0.5 per KITTI difficulty",
        "",
        "KITTI's levels (easy: box height ≥ 40 px, fully visible, truncation ≤ 0.15; moderate: ≥ 25 px, partly "
        "occluded, ≤ 0.30; hard: ≥ 25 px, largely occluded, ≤ 0.50); objects outside a level, `DontCare` regions "
        "and the types the class map ignores (`Van` for `car`, as in KITTI's evaluation) are neither true nor "
        "false positives. The paper reports car AP on hard. Mean ± std over seeds.",
        "",
        "| Method | " + " | ".join(head) + " | seeds |",
        "|---|" + "---|" * (len(head) + 1),
    ]
    for m in methods:
        rs = [r for r in with_levels if r["method"] == m]
        if not rs:
            continue
        cells = []
        for lv, key, cls in keys:
            per_level = [r["metrics"]["difficulties"][lv][key] for r in rs]
            vals = per_level if cls is None else [v.get(cls) for v in per_level]
            cells.append(_cell(vals))
        lines.append(f"| {rs[0]['label']} | " + " | ".join(cells) + f" | {len(rs)} |")
    return lines + [""]


def _records(run: dict) -> Optional[dict]:
    path = Path(run.get("records", ""))
    return dict(np.load(path)) if path.is_file() else None


def pair_differences(
    runs: list[dict], pairs: Sequence[tuple[str, str]], vocab_classes: Sequence[str], n_boot: int
) -> list[str]:
    """Markdown: for each (A, B) pair, A − B car / pedestrian AP@0.5 on KITTI hard and on every labelled object,
    mean over the seeds both rows have with a 95 % paired-bootstrap interval (seeds and frames re-sampled)."""
    out = []
    for a, b in pairs:
        mine = {r["seed"]: r for r in runs if r["method"] == a}
        base = {r["seed"]: r for r in runs if r["method"] == b}
        seeds = sorted(set(mine) & set(base))
        loaded = [(_records(mine[s]), _records(base[s])) for s in seeds]
        recs = [(m, bb) for m, bb in loaded if m is not None and bb is not None]
        if not seeds or len(recs) != len(seeds):
            continue
        cells = []
        for c in REAL_CLASSES:
            if c not in vocab_classes:
                continue
            metric = f"AP/{list(vocab_classes).index(c)}"
            for level in ("hard", None):
                try:
                    ci = paired_bootstrap(
                        [m for m, _ in recs], [bb for _, bb in recs], metric, n_boot=n_boot, difficulty=level
                    )
                except ValueError:  # records stored before the per-level matches
                    cells.append("n/a")
                    continue
                cells.append(
                    "n/a" if math.isnan(ci["diff"]) else f"{ci['diff']:+.3f} [{ci['low']:+.3f}, {ci['high']:+.3f}]"
                )
        out.append(f"| `{a}` − `{b}` | " + " | ".join(cells) + f" | {len(seeds)} |")
    if not out:
        return []
    head = [f"{c} {lv}" for c in REAL_CLASSES if c in vocab_classes for lv in ("hard", "all")]
    return [
        "### Matched pairs (A − B, AP@0.5 [95 % paired-bootstrap CI])",
        "",
        "| A − B | " + " | ".join(head) + " | seeds |",
        "|---|" + "---|" * (len(head) + 1),
        *out,
        "",
    ]


def pseudo_label_table(runs: list[dict], methods: Sequence[str]) -> list[str]:
    """Markdown: per adaptation row and round, the pseudo-objects per class the analysis received, as a mean
    per unlabelled frame (seeds averaged)."""
    lines = []
    for m in methods:
        rs = [r for r in runs if r["method"] == m and r.get("adaptation_rounds")]
        if not rs or not any(rd["pseudo_objects"] for r in rs for rd in r["adaptation_rounds"]):
            continue
        for rd_i in range(max(len(r["adaptation_rounds"]) for r in rs)):
            per = [r["adaptation_rounds"][rd_i] for r in rs if rd_i < len(r["adaptation_rounds"])]
            frames = [max(int(r.get("target_frames") or 0), 1) for r in rs if rd_i < len(r["adaptation_rounds"])]
            cells = []
            for c in REAL_CLASSES:
                per_frame = [p["pseudo_class_counts"].get(c, 0) / f for p, f in zip(per, frames)]
                cells.append(f"{np.mean(per_frame):.2f}")
            lines.append(f"| {rs[0]['label']} | {rd_i} | " + " | ".join(cells) + f" | {len(per)} |")
    if not lines:
        return []
    return [
        "### Pseudo-labels label alignment received (confident objects per unlabelled frame, per round)",
        "",
        "| Method | round | " + " | ".join(REAL_CLASSES) + " | seeds |",
        "|---|---|" + "---|" * (len(REAL_CLASSES) + 1),
        *lines,
        "",
    ]
