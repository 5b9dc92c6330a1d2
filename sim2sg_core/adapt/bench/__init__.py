"""The Sim2SG benchmark: the paper's Table 1 for our environments (markdown + CSV + bar chart).

For each environment and seed: pre-render the labelled source training set, pre-train the shared
source model, then run every method of the profile (see :mod:`sim2sg_core.adapt.baselines`) under
the same step budget and evaluate on held-out *labelled* target images (the only place target
labels are used, apart from the oracle row). Unlabelled target images for adaptation come from a
different seed than the evaluation images; a real camera replaces the simulated target with its
unlabelled frames and a labelled folder.

- ``splits``: the simulator seeds of each data split, the real camera's data and camera;
- ``runner``: ``run_bench`` (pre-trainings, methods, evaluation, stored run records);
- ``report``: tables, CSV, results.json and chart from stored records, paired-bootstrap intervals;
- ``real_report``: the real-camera sections (KITTI difficulties, matched pairs, pseudo-labels per round);
- ``label_audit``: the real labels' registration check.
"""

from sim2sg_core.adapt.bench.label_audit import LABEL_AUDIT_FILE, audit_real_labels, label_audit_lines
from sim2sg_core.adapt.bench.report import gain_intervals, pairs_table, summarise, write_outputs
from sim2sg_core.adapt.bench.runner import evaluate_checkpoint, run_bench, stored_runs
from sim2sg_core.adapt.bench.splits import (
    DEFAULT_REAL_CAMERA_HEIGHT,
    EVAL_SEEDS,
    SEED_STRIDE,
    RealData,
    real_camera,
    real_setup,
    split_seeds,
)

__all__ = [
    "DEFAULT_REAL_CAMERA_HEIGHT",
    "EVAL_SEEDS",
    "LABEL_AUDIT_FILE",
    "SEED_STRIDE",
    "RealData",
    "audit_real_labels",
    "evaluate_checkpoint",
    "gain_intervals",
    "label_audit_lines",
    "pairs_table",
    "real_camera",
    "real_setup",
    "run_bench",
    "split_seeds",
    "stored_runs",
    "summarise",
    "write_outputs",
]
