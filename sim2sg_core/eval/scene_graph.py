"""Scene-graph metrics: triplet Recall@K (graph constraint) and PredCls predicate accuracy.

Recall@K per image = fraction of ground-truth triplets (subject, predicate, object) hit by one of
the K highest-scoring predicted triplets; a hit needs equal subject class, object class and
predicate, and IoU ≥ 0.5 for both the subject and the object box. Graph constraint: at most one
predicate per ordered pair of detections (the best-scoring one). Images without ground-truth
relationships are left out of the per-image average (it is NaN if no image has any).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torchvision.ops import box_iou

from sim2sg_core.eval.detection import _iou_py
from sim2sg_core.scene_graph import SceneGraph


def _pred_triplets(graph: SceneGraph, k: int) -> list:
    best: dict = {}
    for r in graph.relationships:
        key = (r.subject, r.object)
        if key not in best or r.score > best[key].score:
            best[key] = r
    rels = sorted(best.values(), key=lambda r: -r.score)
    return rels[:k]


def triplet_recall(predictions: Sequence[SceneGraph], ground_truths: Sequence[SceneGraph],
                   ks: Sequence[int] = (20, 50), iou_threshold: float = 0.5) -> dict:
    """``{"R@20": ..., "R@50": ..., "num_images": images with GT relationships}``."""
    if len(predictions) != len(ground_truths):
        raise ValueError(f"{len(predictions)} predictions for {len(ground_truths)} ground-truth images")
    per_k = {k: [] for k in ks}
    for pred, gt in zip(predictions, ground_truths):
        if not gt.relationships:
            continue
        g_s = np.array([gt.objects[r.subject].box for r in gt.relationships], dtype=np.float64)
        g_o = np.array([gt.objects[r.object].box for r in gt.relationships], dtype=np.float64)
        g_key = np.array([(gt.objects[r.subject].class_id, gt.objects[r.object].class_id, r.predicate_id)
                          for r in gt.relationships])
        for k in ks:
            top = _pred_triplets(pred, k)
            if not top:
                per_k[k].append(0.0)
                continue
            p_s = np.array([pred.objects[r.subject].box for r in top], dtype=np.float64)
            p_o = np.array([pred.objects[r.object].box for r in top], dtype=np.float64)
            p_key = np.array([(pred.objects[r.subject].class_id, pred.objects[r.object].class_id, r.predicate_id)
                              for r in top])
            same = (g_key[:, None, :] == p_key[None, :, :]).all(-1)  # (G, K)
            iou_s = box_iou(torch.from_numpy(g_s), torch.from_numpy(p_s)).numpy()
            iou_o = box_iou(torch.from_numpy(g_o), torch.from_numpy(p_o)).numpy()
            hit = (same & (iou_s >= iou_threshold) & (iou_o >= iou_threshold)).any(1)
            per_k[k].append(float(hit.mean()))
    out = {f"R@{k}": (float(np.mean(v)) if v else math.nan) for k, v in per_k.items()}
    out["num_images"] = len(next(iter(per_k.values()))) if per_k else 0
    return out


def predicate_accuracy(predicted_ids: Sequence[int], true_ids: Sequence[int]) -> float:
    """PredCls: fraction of ground-truth relationships whose predicate (given GT boxes) is right."""
    p, t = np.asarray(predicted_ids), np.asarray(true_ids)
    if p.shape != t.shape:
        raise ValueError(f"{p.shape} predicted predicates for {t.shape} ground-truth ones")
    return float((p == t).mean()) if len(t) else math.nan


# ---- slow reference (pure Python; the box IoU is detection.py's reference one) ----


def reference_triplet_recall(predictions, ground_truths, ks=(20, 50), iou_threshold=0.5) -> dict:
    out = {}
    for k in ks:
        recalls = []
        for pred, gt in zip(predictions, ground_truths):
            if not gt.relationships:
                continue
            per_pair = {}
            for r in pred.relationships:
                if (r.subject, r.object) not in per_pair or r.score > per_pair[(r.subject, r.object)].score:
                    per_pair[(r.subject, r.object)] = r
            top = sorted(per_pair.values(), key=lambda r: -r.score)[:k]
            hits = 0
            for g in gt.relationships:
                gs, go = gt.objects[g.subject], gt.objects[g.object]
                for r in top:
                    ps, po = pred.objects[r.subject], pred.objects[r.object]
                    if (ps.class_id == gs.class_id and po.class_id == go.class_id and r.predicate_id == g.predicate_id
                            and _iou_py(ps.box, gs.box) >= iou_threshold and _iou_py(po.box, go.box) >= iou_threshold):
                        hits += 1
                        break
            recalls.append(hits / len(gt.relationships))
        out[f"R@{k}"] = sum(recalls) / len(recalls) if recalls else math.nan
    return out
