"""Evaluation: detection AP@0.5/mAP (COCO interpolation), triplet Recall@K, PredCls accuracy."""
from sim2sg_core.eval.detection import average_precision, reference_average_precision
from sim2sg_core.eval.scene_graph import predicate_accuracy, reference_triplet_recall, triplet_recall

__all__ = ["average_precision", "predicate_accuracy", "reference_average_precision", "reference_triplet_recall",
           "triplet_recall"]
