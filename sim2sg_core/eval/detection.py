"""Detection metrics: per-class AP at IoU 0.5 and their mean (mAP).

Interpolation and matching follow COCO (pycocotools ``COCOeval`` at one IoU threshold, area
range 'all', at most ``max_dets`` detections per image and class): detections are matched
greedily in descending score order to the unmatched ground truth of highest IoU ≥ threshold, and
AP is the mean of the precision envelope sampled at 101 recall points. So results equal
``torchmetrics.detection.MeanAveragePrecision(iou_thresholds=[0.5], class_metrics=True)``
(tested). A second duplicate detection of an already matched object is a false positive.
Classes without any ground truth get AP = NaN and are left out of the mean.
"""
from __future__ import annotations

import math
from typing import Sequence, Union

import numpy as np
import torch
from torchvision.ops import box_iou

from sim2sg_core.scene_graph import SceneGraph

RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def as_arrays(item: Union[SceneGraph, dict]) -> dict:
    """SceneGraph or dict(boxes, labels[, scores]) → numpy ``boxes`` (N,4), ``labels`` (N,), ``scores`` (N,)."""
    if isinstance(item, SceneGraph):
        boxes = np.array([o.box for o in item.objects], dtype=np.float64).reshape(-1, 4)
        labels = np.array([o.class_id for o in item.objects], dtype=np.int64)
        scores = np.array([o.score for o in item.objects], dtype=np.float64)
    else:
        def np_(v, dt):
            v = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
            return v.astype(dt)
        boxes = np_(item["boxes"], np.float64).reshape(-1, 4)
        labels = np_(item["labels"], np.int64).reshape(-1)
        scores = np_(item["scores"], np.float64).reshape(-1) if "scores" in item else np.ones(len(labels))
    return {"boxes": boxes, "labels": labels, "scores": scores}


def _interpolated_ap(tp: np.ndarray, scores: np.ndarray, num_gt: int) -> float:
    if num_gt == 0:
        return math.nan
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-scores, kind="mergesort")
    tps = np.cumsum(tp[order])
    fps = np.cumsum(1 - tp[order])
    recall = tps / num_gt
    precision = tps / np.maximum(tps + fps, np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # monotone envelope
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    q = np.where(idx < len(precision), precision[np.minimum(idx, len(precision) - 1)], 0.0)
    return float(q.mean())


def _greedy_match(iou: np.ndarray, threshold: float) -> np.ndarray:
    """COCO matching for detections already sorted by score: tp flag per detection."""
    n_det, n_gt = iou.shape
    taken = np.zeros(n_gt, dtype=bool)
    tp = np.zeros(n_det)
    for d in range(n_det):
        cand = np.where(~taken & (iou[d] >= threshold))[0]
        if len(cand):
            g = cand[len(cand) - 1 - int(np.argmax(iou[d, cand][::-1]))]  # COCO keeps the last of equal IoUs
            taken[g] = True
            tp[d] = 1
    return tp


def average_precision(predictions: Sequence, ground_truths: Sequence, num_classes: int,
                      iou_threshold: float = 0.5, max_dets: int = 100) -> dict:
    """Per-class AP and mAP. ``predictions``/``ground_truths``: per image SceneGraph or dict of arrays.

    Returns ``{"ap": [per class AP or nan], "num_gt": [...], "num_det": [...], "map": float}``.
    """
    if len(predictions) != len(ground_truths):
        raise ValueError(f"{len(predictions)} predictions for {len(ground_truths)} ground-truth images")
    tps = [[] for _ in range(num_classes)]
    scs = [[] for _ in range(num_classes)]
    num_gt = np.zeros(num_classes, dtype=np.int64)
    for pred, gt in zip(predictions, ground_truths):
        p, g = as_arrays(pred), as_arrays(gt)
        for c in np.union1d(np.unique(p["labels"]), np.unique(g["labels"])):
            c = int(c)
            if not 0 <= c < num_classes:
                raise ValueError(f"class id {c} is outside the {num_classes} classes")
            gb = g["boxes"][g["labels"] == c]
            pm = p["labels"] == c
            pb, ps = p["boxes"][pm], p["scores"][pm]
            order = np.argsort(-ps, kind="mergesort")[:max_dets]
            pb, ps = pb[order], ps[order]
            num_gt[c] += len(gb)
            if len(pb) == 0:
                continue
            if len(gb):
                iou = box_iou(torch.from_numpy(pb), torch.from_numpy(gb)).numpy()
                tp = _greedy_match(iou, iou_threshold)
            else:
                tp = np.zeros(len(pb))
            tps[c].append(tp)
            scs[c].append(ps)
    ap, num_det = [], []
    for c in range(num_classes):
        tp = np.concatenate(tps[c]) if tps[c] else np.zeros(0)
        sc = np.concatenate(scs[c]) if scs[c] else np.zeros(0)
        ap.append(_interpolated_ap(tp, sc, int(num_gt[c])))
        num_det.append(int(len(sc)))
    valid = [a for a in ap if not math.isnan(a)]
    return {"ap": ap, "num_gt": num_gt.tolist(), "num_det": num_det,
            "map": float(np.mean(valid)) if valid else math.nan, "iou_threshold": iou_threshold,
            "interpolation": "COCO 101-point"}


# ---- slow reference (pure Python, written for obviousness; tests compare it with the above) ----

def _iou_py(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def reference_average_precision(predictions: Sequence, ground_truths: Sequence, num_classes: int,
                                iou_threshold: float = 0.5, max_dets: int = 100) -> list:
    aps = []
    for c in range(num_classes):
        records, total_gt = [], 0
        for _img, (pred, gt) in enumerate(zip(predictions, ground_truths)):
            p, g = as_arrays(pred), as_arrays(gt)
            gts = [list(b) for b, label in zip(g["boxes"], g["labels"]) if label == c]
            dets = sorted([(float(s), list(b))
                           for b, s, label in zip(p["boxes"], p["scores"], p["labels"]) if label == c],
                          key=lambda d: -d[0])[:max_dets]
            total_gt += len(gts)
            used = [False] * len(gts)
            for s, b in dets:
                best, best_iou = -1, iou_threshold
                for j, gb in enumerate(gts):
                    if used[j]:
                        continue
                    v = _iou_py(b, gb)
                    if v >= best_iou:
                        best, best_iou = j, v
                if best >= 0:
                    used[best] = True
                records.append((s, 1 if best >= 0 else 0))
        if total_gt == 0:
            aps.append(math.nan)
            continue
        records.sort(key=lambda r: -r[0])
        precisions, recalls, tp = [], [], 0
        for i, (_, hit) in enumerate(records):
            tp += hit
            precisions.append(tp / (i + 1))
            recalls.append(tp / total_gt)
        total = 0.0
        for r in RECALL_POINTS:
            total += max([p for p, rc in zip(precisions, recalls) if rc >= r], default=0.0)
        aps.append(total / 101)
    return aps
