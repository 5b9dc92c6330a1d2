#!/usr/bin/env python3
"""The README's benchmark table, written from the full benchmark's ``results.json`` (one command, no hand copy).

    python scripts/readme_results.py            # rewrite the block between the README's markers
    python scripts/readme_results.py --check    # exit 1 when the README's block is not what results.json gives

The block lists, per environment and target, every method's mAP@0.5 and Recall@20 (mean ± sample std over
seeds) and its gain over source only with the 95 % paired-bootstrap interval the benchmark computed. The split,
seeds and budget come from the same file, so the README cannot quote a figure from another run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results" / "bench_full" / "results.json"
README = REPO / "README.md"
BEGIN, END = "<!-- bench-table:begin (scripts/readme_results.py) -->", "<!-- bench-table:end -->"
#: The rows the README shows: the method against its baselines. The ablation rows stay in the results folder's
#: table.md (named in the block).
README_METHODS = (
    "source_only",
    "domain_randomization",
    "sim2sg_full",
    "sim2sg_dr",
    "sim2sg_after_dr",
    "dr_then_continued",
    "oracle",
)


def _mean_std(values: list[float]) -> str:
    a = np.asarray(values, dtype=np.float64)
    return f"{a.mean():.3f} ± {a.std(ddof=1):.3f}" if len(a) > 1 else f"{a.mean():.3f}"


def _interval(g: dict) -> str:
    return f"{g['diff']:+.3f} [{g['low']:+.3f}, {g['high']:+.3f}]"


def block(results: dict, source: str) -> str:
    """The README block for ``results`` (a bench ``results.json``; ``source`` names it in the text)."""
    profile, runs = results["profile"], results["runs"]
    gains = {(g["env"], g["target_domain"], g["method"]): g for g in results.get("gains_vs_source_only", [])}
    envs = [e for e in profile["envs"] if any(r["env"] == e for r in runs)]
    methods = [m for m in profile["methods"] if m in README_METHODS and any(r["method"] == m for r in runs)]
    others = sorted({r["method"] for r in runs} - set(methods))
    seeds = sorted({r["seed"] for r in runs})
    budget = sorted({r["budget_steps"] for r in runs})
    splits = sorted({r["eval_split"] for r in runs})
    lines = [
        BEGIN,
        f"Profile `{profile['name']}`, evaluation split `{'`, `'.join(splits)}`, seeds {seeds}, "
        f"{'/'.join(map(str, budget))} training steps per method; mAP@0.5 and Recall@20 (SGDet) as mean ± std over "
        f"seeds; Δ vs source only with its 95 % paired-bootstrap interval over the seeds both rows have. From "
        f"`{source}`"
        + (f"; its `table.md` also has the rows {', '.join(f'`{m}`' for m in others)}." if others else "."),
        "",
        "| environment | target | method | mAP@0.5 | Recall@20 | Δ mAP [95 % CI] | Δ Recall@20 [95 % CI] | seeds "
        "| steps |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for env in envs:
        for tdom in results["target_domains"]:
            for m in methods:
                rows = [r for r in runs if r["env"] == env and r["target_domain"] == tdom and r["method"] == m]
                if not rows:
                    continue
                g = gains.get((env, tdom, m))
                lines.append(
                    f"| {env} | {tdom} | {rows[0]['label']} "
                    f"| {_mean_std([r['metrics']['map50'] for r in rows])} "
                    f"| {_mean_std([r['metrics']['recall@20'] for r in rows])} "
                    f"| {_interval(g['mAP50']) if g else 'n/a'} | {_interval(g['R@20']) if g else 'n/a'} "
                    f"| {len(rows)} | {'/'.join(str(b) for b in sorted({r['budget_steps'] for r in rows}))} |"
                )
    lines.append(END)
    return "\n".join(lines)


def replace_block(text: str, new_block: str) -> str:
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"the README must hold the markers {BEGIN!r} and {END!r} once each, in that order")
    start, stop = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + new_block + text[stop:]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--readme", type=Path, default=README)
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 if the README is stale")
    args = ap.parse_args(argv)
    results = json.loads(args.results.read_text())
    try:
        source = str(args.results.resolve().relative_to(REPO))
    except ValueError:
        source = str(args.results)
    text = args.readme.read_text()
    new = replace_block(text, block(results, source))
    if args.check:
        if new != text:
            print(f"{args.readme}: the benchmark table is not what {source} gives; run scripts/readme_results.py")
            return 1
        return 0
    if new != text:
        tmp = args.readme.with_name(args.readme.name + ".tmp")
        tmp.write_text(new)
        tmp.replace(args.readme)  # atomic
    print(f"{args.readme}: benchmark table from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
