"""Scene-graph metrics as Scene-Graph-Benchmark (SGB) names them.

Triplet recall per image = fraction of ground-truth triplets (subject, predicate, object) hit by one
of the K highest-scoring predicted triplets; a hit needs equal subject class, object class and
predicate, and IoU ≥ 0.5 for both the subject and the object box. Images without ground-truth
relationships are left out of the per-image average (it is NaN if no image has any).

- ``R@K`` (graph constraint): at most one predicate per ordered pair of detections (its
  best-scoring one) competes for the K slots.
- ``ngR@K`` (no graph constraint): every predicted (pair, predicate) triplet competes, ranked by
  its score; prediction graphs then carry one relationship per predicate of a pair.
- ``mR@K`` / ``ngmR@K`` (mean recall): per predicate, the recall of its ground-truth triplets
  averaged over the images that contain it; then the mean over the predicates present in the
  ground truth (SGB divides by every predicate class, counting absent ones as 0; here absent
  predicates are left out, so the number does not depend on predicates the data never shows).

The evaluation modes (``evaluate.py``): PredCls (ground-truth boxes and classes given), SGCls
(ground-truth boxes given, classes predicted), SGDet (everything detected).

Ignoring (:mod:`sim2sg_core.eval.ignore`): ground-truth triplets with an end outside the chosen
difficulty are not counted; predicted triplets with an end that matches no real object (same
class, IoU ≥ 0.5) but an object outside the difficulty, an ignore region (≥ 0.5 of its area), or
that is lower than the difficulty's minimum height, are dropped before the top K is taken.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torchvision.ops import box_iou

from sim2sg_core.eval.detection import as_arrays
from sim2sg_core.eval.ignore import IOA_THRESHOLD, detection_in_ignore, get_difficulty, in_difficulty
from sim2sg_core.scene_graph import SceneGraph


def _ranked(graph: SceneGraph, graph_constraint: bool, usable: np.ndarray) -> list:
    """Candidate relationships, best first: one per ordered pair (its best predicate) under the graph
    constraint, else all; those with an end not ``usable`` (ignored) left out. Ties keep list order."""
    if graph_constraint:
        best: dict = {}
        for r in graph.relationships:
            key = (r.subject, r.object)
            if key not in best or r.score > best[key].score:
                best[key] = r
        cands = list(best.values())
    else:
        cands = list(graph.relationships)
    cands = [r for r in cands if usable[r.subject] and usable[r.object]]
    return sorted(cands, key=lambda r: -r.score)


def _usable_predictions(
    pred: SceneGraph, g: dict, inside: np.ndarray, diff, iou_threshold: float, ioa_threshold: float
) -> np.ndarray:
    """Per predicted object: False when it is ignored (matches no real object but an ignored one)."""
    p = as_arrays(pred)
    n = len(p["boxes"])
    if n == 0:
        return np.ones(0, dtype=bool)
    iou = box_iou(torch.from_numpy(p["boxes"]), torch.from_numpy(g["boxes"])).numpy()  # (P, G)
    close = (iou >= iou_threshold) & (p["labels"][:, None] == g["labels"][None, :])
    real = (close & inside[None, :]).any(1)
    on_ignored = (close & ~inside[None, :]).any(1) | detection_in_ignore(p["boxes"], g["ignore"], diff, ioa_threshold)
    return real | ~on_ignored


def scene_graph_recall(
    predictions: Sequence[SceneGraph],
    ground_truths: Sequence[SceneGraph],
    ks: Sequence[int] = (20, 50),
    iou_threshold: float = 0.5,
    graph_constraint: bool = True,
    difficulty=None,
    ioa_threshold: float = IOA_THRESHOLD,
) -> dict:
    """Recall@K and mean recall@K over predicates, with or without graph constraint.

    Returns ``{"R@K": float, "mR@K": float, "per_predicate@K": {predicate id: recall},
    "per_image@K": [recall per image, NaN without ground-truth relationships], "num_images": int}``
    (K from ``ks``); keys do not carry the ``ng`` prefix, the caller names the mode.
    """
    if len(predictions) != len(ground_truths):
        raise ValueError(f"{len(predictions)} predictions for {len(ground_truths)} ground-truth images")
    ks = [int(k) for k in ks]
    if any(k <= 0 for k in ks):
        raise ValueError(f"K must be positive, got {ks}")
    diff = get_difficulty(difficulty)
    per_k: dict[int, list[float]] = {k: [] for k in ks}
    per_image: dict[int, list[float]] = {k: [math.nan] * len(predictions) for k in ks}
    per_pred: dict[int, dict[int, list[float]]] = {k: {} for k in ks}
    for i, (pred, gt) in enumerate(zip(predictions, ground_truths)):
        g = as_arrays(gt)
        inside = in_difficulty(g["boxes"], g["truncation"], g["occlusion"], diff)
        rels = [r for r in gt.relationships if inside[r.subject] and inside[r.object]]
        if not rels:
            continue
        gs = np.array([r.subject for r in rels])
        go = np.array([r.object for r in rels])
        g_key = np.array([(g["labels"][r.subject], g["labels"][r.object], r.predicate_id) for r in rels])
        g_pred = g_key[:, 2]
        usable = _usable_predictions(pred, g, inside, diff, iou_threshold, ioa_threshold)
        ranked = _ranked(pred, graph_constraint, usable)
        pb = np.array([o.box for o in pred.objects], dtype=np.float64).reshape(-1, 4)
        p_lab = np.array([o.class_id for o in pred.objects], dtype=np.int64)
        obj_iou = box_iou(torch.from_numpy(pb), torch.from_numpy(g["boxes"])).numpy() >= iou_threshold  # (P, G)
        for k in ks:
            top = ranked[:k]
            if top:
                ps = np.array([r.subject for r in top])
                po = np.array([r.object for r in top])
                p_key = np.stack([p_lab[ps], p_lab[po], np.array([r.predicate_id for r in top])], 1)
                same = (g_key[:, None, :] == p_key[None, :, :]).all(-1)  # (G, K)
                hit = (same & obj_iou[ps][:, gs].T & obj_iou[po][:, go].T).any(1)
            else:
                hit = np.zeros(len(rels), dtype=bool)
            per_k[k].append(float(hit.mean()))
            per_image[k][i] = float(hit.mean())
            for pid in np.unique(g_pred):
                per_pred[k].setdefault(int(pid), []).append(float(hit[g_pred == pid].mean()))
    out: dict = {}
    for k in ks:
        out[f"R@{k}"] = float(np.mean(per_k[k])) if per_k[k] else math.nan
        pp = {pid: float(np.mean(v)) for pid, v in sorted(per_pred[k].items())}
        out[f"mR@{k}"] = float(np.mean(list(pp.values()))) if pp else math.nan
        out[f"per_predicate@{k}"] = pp
        out[f"per_image@{k}"] = per_image[k]
    out["num_images"] = len(per_k[ks[0]]) if ks else 0
    return out


def triplet_recall(
    predictions: Sequence[SceneGraph],
    ground_truths: Sequence[SceneGraph],
    ks: Sequence[int] = (20, 50),
    iou_threshold: float = 0.5,
    difficulty=None,
    ioa_threshold: float = IOA_THRESHOLD,
) -> dict:
    """Graph-constrained Recall@K: ``{"R@20": ..., "R@50": ..., "num_images": images with GT relationships}``."""
    r = scene_graph_recall(predictions, ground_truths, ks, iou_threshold, True, difficulty, ioa_threshold)
    out = {f"R@{k}": r[f"R@{k}"] for k in ks}
    out["num_images"] = r["num_images"]
    return out


def predicate_accuracy(predicted_ids: Sequence[int], true_ids: Sequence[int]) -> float:
    """PredCls: fraction of ground-truth relationships whose predicate (given GT boxes) is right."""
    p, t = np.asarray(predicted_ids), np.asarray(true_ids)
    if p.shape != t.shape:
        raise ValueError(f"{p.shape} predicted predicates for {t.shape} ground-truth ones")
    return float((p == t).mean()) if len(t) else math.nan
