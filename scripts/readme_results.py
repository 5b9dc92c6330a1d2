#!/usr/bin/env python3
"""The benchmark tables of the docs, written from the full benchmark's ``results.json`` (one command, no hand copy).

    python scripts/readme_results.py            # rewrite the blocks between the markers
    python scripts/readme_results.py --check    # exit 1 when a block is not what results.json gives

``docs/results/README.md`` holds the whole table; ``README.md`` a headline (source only against full Sim2SG per
environment and target, with the interval). The whole table lists, per environment and target, every method's
mAP@0.5 and Recall@20 (mean ± sample std over seeds) and its gain over source only with the 95 % paired-bootstrap
interval the benchmark computed. The split, seeds and budget come from the same file, so the docs cannot quote a
figure from another run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results" / "bench_full" / "results.json"
README = REPO / "docs" / "results" / "README.md"
HEADLINE_README = REPO / "README.md"
BEGIN, END = "<!-- bench-table:begin (scripts/readme_results.py) -->", "<!-- bench-table:end -->"
HEADLINE_BEGIN, HEADLINE_END = (
    "<!-- bench-headline:begin (scripts/readme_results.py) -->",
    "<!-- bench-headline:end -->",
)
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


def headline(results: dict, source: str) -> str:
    """README.md's short table: source only against full Sim2SG, mAP@0.5 per environment and target."""
    runs = results["runs"]
    gains = {(g["env"], g["target_domain"], g["method"]): g for g in results.get("gains_vs_source_only", [])}
    lines = [
        HEADLINE_BEGIN,
        "| environment | target | source only mAP@0.5 | Sim2SG (full) mAP@0.5 | Δ [95 % CI] | seeds |",
        "|---|---|---|---|---|---|",
    ]
    for env in results["profile"]["envs"]:
        for tdom in results["target_domains"]:
            pick = {
                m: [r for r in runs if r["env"] == env and r["target_domain"] == tdom and r["method"] == m]
                for m in ("source_only", "sim2sg_full")
            }
            if not all(pick.values()):
                continue
            g = gains.get((env, tdom, "sim2sg_full"))
            lines.append(
                f"| {env} | {tdom} | {_mean_std([r['metrics']['map50'] for r in pick['source_only']])} "
                f"| {_mean_std([r['metrics']['map50'] for r in pick['sim2sg_full']])} "
                f"| {_interval(g['mAP50']) if g else 'n/a'} | {len(pick['sim2sg_full'])} |"
            )
    lines += ["", f"(`{source}`, profile `{results['profile']['name']}`.)", HEADLINE_END]
    return "\n".join(lines)


def replace_block(text: str, new_block: str, begin: str = BEGIN, end: str = END) -> str:
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise ValueError(f"the file must hold the markers {begin!r} and {end!r} once each, in that order")
    start, stop = text.index(begin), text.index(end) + len(end)
    return text[:start] + new_block + text[stop:]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--readme", type=Path, default=README, help="the file holding the whole table")
    ap.add_argument("--headline-readme", type=Path, default=HEADLINE_README, help="the file holding the headline")
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 if a file is stale")
    args = ap.parse_args(argv)
    results = json.loads(args.results.read_text())
    try:
        source = str(args.results.resolve().relative_to(REPO))
    except ValueError:
        source = str(args.results)
    stale = 0
    for path, new_block, begin, end in (
        (args.readme, block(results, source), BEGIN, END),
        (args.headline_readme, headline(results, source), HEADLINE_BEGIN, HEADLINE_END),
    ):
        text = path.read_text()
        new = replace_block(text, new_block, begin, end)
        if args.check:
            if new != text:
                print(f"{path}: the benchmark table is not what {source} gives; run scripts/readme_results.py")
                stale = 1
            continue
        if new != text:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(new)
            tmp.replace(path)  # atomic
        print(f"{path}: benchmark table from {source}")
    return stale


if __name__ == "__main__":
    sys.exit(main())
