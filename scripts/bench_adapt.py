#!/usr/bin/env python3
"""Sim2SG benchmark (thin wrapper over ``python -m sim2sg_core bench``).

    scripts/bench_adapt.py --env drive --profile quick --out bench/quick
    scripts/bench_adapt.py --env drive --profile quick --out bench/quick_t2 --target-domain target2
    scripts/bench_adapt.py --env all --profile full --out bench/full

Writes table.md / table.csv (per-class AP@0.5, mAP, Recall@20, wall time; mean ± std over seeds),
chart.png and results.json; finished rows are cached under OUT/runs, so re-running resumes.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim2sg_core.adapt.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
