"""Evaluation: detection AP@0.5/mAP (COCO interpolation) with ignore regions and KITTI difficulties, and
the Scene-Graph-Benchmark recalls (R@K, ngR@K, mR@K) of the PredCls / SGCls / SGDet modes. The slow plain-Python
references the tests check them against live in ``test/eval/reference_metrics.py``."""

from sim2sg_core.eval.detection import average_precision
from sim2sg_core.eval.ignore import DIFFICULTIES, in_difficulty
from sim2sg_core.eval.scene_graph import (
    predicate_accuracy,
    scene_graph_recall,
    triplet_recall,
)

__all__ = [
    "DIFFICULTIES",
    "average_precision",
    "in_difficulty",
    "predicate_accuracy",
    "scene_graph_recall",
    "triplet_recall",
]
