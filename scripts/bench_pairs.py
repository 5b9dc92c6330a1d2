#!/usr/bin/env python3
"""Paired differences between any two benchmark rows, from the rows a bench run stored (trains nothing).

    python scripts/bench_pairs.py --out runs/bench_full_engine \
        --pairs sim2sg_full-sim2sg_full_no_fda,sim2sg_after_dr-dr_then_continued [--target-domain target]

The table's Δ column compares every row with source only; a leave-one-out or a matched control needs the two
rows themselves compared. Each cell is the mean over the seeds both rows have of A − B (mAP@0.5), with the same
95 % paired-bootstrap interval as the benchmark tables (seeds and evaluation images re-sampled together).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sim2sg_core.adapt.baselines import get_method
from sim2sg_core.adapt.bench import gain_intervals, stored_runs
from sim2sg_core.adapt.config import load_bench_profile


def table(out: Path, pairs: list[tuple[str, str]], tdom: str, envs: list[str], seeds: list[int], n_boot: int) -> str:
    methods = sorted({m for pair in pairs for m in pair})
    for m in methods:
        get_method(m)  # unknown names fail here, with the known ones listed
    runs, _ = stored_runs(out, [(e, s) for e in envs for s in seeds], methods, [tdom])
    lines = [
        f"Δ mAP@0.5, A − B on the seeds both rows have [95 % paired-bootstrap CI] (seeds); target `{tdom}`, "
        f"rows stored in `{out}`",
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="the bench --out folder holding the stored rows")
    ap.add_argument("--pairs", required=True, help="comma-separated A-B pairs of method names")
    ap.add_argument("--profile", default="full", help="the bench profile the rows were run with (its envs, seeds)")
    ap.add_argument("--target-domain", dest="tdom", default="target")
    ap.add_argument("--seeds", default="", help="comma-separated seeds (default: the profile's)")
    ap.add_argument("--draws", type=int, default=0, help="bootstrap draws (default: the profile's)")
    args = ap.parse_args(argv)
    pairs = []
    for item in args.pairs.split(","):
        a, sep, b = item.strip().partition("-")
        if not sep or not a or not b:
            ap.error(f"a pair is METHOD_A-METHOD_B, got {item!r}")
        pairs.append((a, b))
    if not (args.out / "runs").is_dir():
        ap.error(f"{args.out} holds no stored bench rows (no runs/ folder)")
    prof = load_bench_profile(args.profile)
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else prof.seeds
    md = table(args.out, pairs, args.tdom, prof.envs, seeds, args.draws or prof.bootstrap_samples)
    sys.stdout.write(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
