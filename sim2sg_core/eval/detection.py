"""Detection metrics: per-class AP at IoU 0.5 and their mean (mAP).

Interpolation and matching follow COCO (pycocotools ``COCOeval`` at one IoU threshold, area
range 'all', at most ``max_dets`` detections per image and class): detections are matched
greedily in descending score order to the unmatched ground truth of highest IoU ≥ threshold, and
AP is the mean of the precision envelope sampled at 101 recall points. So results equal
``torchmetrics.detection.MeanAveragePrecision(iou_thresholds=[0.5], class_metrics=True)``
(tested). A second duplicate detection of an already matched object is a false positive.
Classes without any ground truth get AP = NaN and are left out of the mean.

Ignoring (see :mod:`sim2sg_core.eval.ignore`): a detection that matches no real object but a
ground-truth object outside the chosen ``difficulty`` (one detection per such object), or lies in
one of the labels' ``ignore_regions`` (intersection ≥ 0.5 of its area), or is lower than the
difficulty's minimum height, is dropped from the ranking: neither TP nor FP. Objects outside the
difficulty are not counted as ground truth. Without ignore regions and difficulty, nothing changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torchvision.ops import box_iou

from sim2sg_core.eval.ignore import IOA_THRESHOLD, detection_in_ignore, get_difficulty, in_difficulty
from sim2sg_core.scene_graph import SceneGraph

RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def as_arrays(item: Union[SceneGraph, dict]) -> dict:
    """SceneGraph or dict(boxes, labels[, scores, truncation, occlusion, ignore_boxes]) → numpy ``boxes``
    (N,4), ``labels`` (N,), ``scores`` (N,), ``truncation`` (N,), ``occlusion`` (N,), ``ignore`` (M,4)."""
    if isinstance(item, SceneGraph):
        boxes = np.array([o.box for o in item.objects], dtype=np.float64).reshape(-1, 4)
        labels = np.array([o.class_id for o in item.objects], dtype=np.int64)
        scores = np.array([o.score for o in item.objects], dtype=np.float64)
        trunc = np.array([o.truncation for o in item.objects], dtype=np.float64)
        occ = np.array([o.occlusion for o in item.objects], dtype=np.float64)
        ignore = np.array([g.box for g in item.ignore_regions], dtype=np.float64).reshape(-1, 4)
    else:

        def np_(v, dt):
            v = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
            return v.astype(dt)

        boxes = np_(item["boxes"], np.float64).reshape(-1, 4)
        labels = np_(item["labels"], np.int64).reshape(-1)
        n = len(labels)
        scores = np_(item["scores"], np.float64).reshape(-1) if "scores" in item else np.ones(n)
        trunc = np_(item["truncation"], np.float64).reshape(-1) if "truncation" in item else np.zeros(n)
        occ = np_(item["occlusion"], np.float64).reshape(-1) if "occlusion" in item else np.zeros(n)
        ignore = np_(item.get("ignore_boxes", np.zeros((0, 4))), np.float64).reshape(-1, 4)
        for name, arr in (("boxes", boxes), ("scores", scores), ("truncation", trunc), ("occlusion", occ)):
            if len(arr) != n:
                raise ValueError(f"{len(arr)} {name} for {n} labels")
    return {"boxes": boxes, "labels": labels, "scores": scores, "truncation": trunc, "occlusion": occ, "ignore": ignore}


def _interpolated_ap(tp: np.ndarray, counts: np.ndarray, num_gt: np.ndarray) -> np.ndarray:
    """COCO 101-point AP of score-sorted detections ``tp`` (n,), each counted ``counts[b]`` (B, n) times.

    One row per weighting, all rows at once: a bootstrap's draws, or one row of ones for plain AP.
    Counting a detection k times is the list with it repeated k times in a row. The recall points are
    read at true positives, and a false positive's precision is below its predecessor's, so the envelope
    only needs precision at the true positives: each one's true-positive count over the count of every
    detection up to it. An uncounted true positive repeats its predecessor's recall with a precision no
    higher, so it changes nothing."""
    num_gt = np.asarray(num_gt, dtype=np.float64)
    out = np.where(num_gt > 0, 0.0, math.nan)
    at = np.flatnonzero(tp)
    if len(at) == 0:
        return out
    counts = np.asarray(counts, dtype=np.float64)
    # detections counted up to each true positive: sums over (previous true positive, this one]
    seen = np.cumsum(np.add.reduceat(counts[:, : at[-1] + 1], np.r_[0, at[:-1] + 1], axis=1), axis=1)
    tps = np.cumsum(counts[:, at], axis=1)
    recall = tps / np.maximum(num_gt, 1.0)[:, None]
    precision = tps / np.maximum(seen, np.spacing(1))
    precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]  # monotone envelope
    n = len(at)
    for b in np.flatnonzero(num_gt > 0):
        idx = np.searchsorted(recall[b], RECALL_POINTS, side="left")
        out[b] = np.where(idx < n, precision[b, np.minimum(idx, n - 1)], 0.0).mean()
    return out


def _greedy_match(
    iou: np.ndarray, threshold: float, iou_ignored: Optional[np.ndarray] = None, may_ignore: Optional[np.ndarray] = None
) -> tuple[np.ndarray, np.ndarray]:
    """COCO matching for detections already sorted by score: (tp flag, ignored flag) per detection.

    A detection takes the unmatched real object of highest IoU ≥ threshold; failing that, the
    unmatched ignored object (``iou_ignored``) of highest IoU (→ ignored); failing that it is ignored
    where ``may_ignore`` says so (ignore region, too small), else a false positive."""
    n_det, n_gt = iou.shape
    iou_ignored = np.zeros((n_det, 0)) if iou_ignored is None else iou_ignored
    taken, taken_ign = np.zeros(n_gt, dtype=bool), np.zeros(iou_ignored.shape[1], dtype=bool)
    tp, ignored = np.zeros(n_det), np.zeros(n_det, dtype=bool)
    for d in range(n_det):
        cand = np.where(~taken & (iou[d] >= threshold))[0]
        if len(cand):
            g = cand[len(cand) - 1 - int(np.argmax(iou[d, cand][::-1]))]  # COCO keeps the last of equal IoUs
            taken[g] = True
            tp[d] = 1
            continue
        cand = np.where(~taken_ign & (iou_ignored[d] >= threshold))[0]
        if len(cand):
            taken_ign[cand[len(cand) - 1 - int(np.argmax(iou_ignored[d, cand][::-1]))]] = True
            ignored[d] = True
        elif may_ignore is not None and may_ignore[d]:
            ignored[d] = True
    return tp, ignored


@dataclass
class DetectionMatches:
    """Every ranked detection's match, once: what AP needs, and what a bootstrap re-weights.

    Per class ``c``: ``image[c]``, ``score[c]``, ``tp[c]`` for the detections that are not ignored,
    sorted by descending score (ties in image order, as COCO's concatenation); ``num_gt`` is
    (images, classes). Matching is per image, so re-sampling images only changes how often each
    image's detections and objects count: :meth:`ap` with ``weights`` (per-image multiplicities)
    equals AP on the list with images repeated that often (exactly when no two scores tie).
    """

    image: list
    score: list
    tp: list
    num_gt: np.ndarray
    num_det: np.ndarray
    num_ignored: np.ndarray

    @property
    def num_images(self) -> int:
        return int(self.num_gt.shape[0])

    def ap(self, weights: Optional[np.ndarray] = None) -> list:
        """Per-class AP (NaN for a class without ground truth) under per-image ``weights`` (None = 1)."""
        w = np.ones((1, self.num_images), np.int64) if weights is None else np.asarray(weights)[None]
        return self.ap_weighted(w)[0].tolist()

    def ap_weighted(self, weights: np.ndarray) -> np.ndarray:
        """Per-class AP (draws, classes) for each row of per-image multiplicities ``weights`` (draws, images).

        The same as AP on the list with each image repeated that often (exactly when no two scores tie),
        computed for all rows at once: what a bootstrap needs."""
        w = np.asarray(weights, dtype=np.int64)
        if w.ndim != 2 or w.shape[1] != self.num_images:
            raise ValueError(f"weights must be (draws, {self.num_images}), got {w.shape}")
        n_cls = self.num_gt.shape[1]
        out = np.empty((len(w), n_cls))
        for c in range(n_cls):
            out[:, c] = _interpolated_ap(self.tp[c], w[:, self.image[c]], w @ self.num_gt[:, c])
        return out

    def to_arrays(self) -> dict:
        """Flat numpy arrays (for ``np.savez``); :meth:`from_arrays` reads them back."""
        n_cls = self.num_gt.shape[1]
        cls = (
            np.concatenate([np.full(len(self.tp[c]), c, np.int64) for c in range(n_cls)])
            if n_cls
            else np.zeros(0, np.int64)
        )
        return {
            "det_class": cls,
            "det_image": np.concatenate(self.image) if n_cls else np.zeros(0, np.int64),
            "det_score": np.concatenate(self.score) if n_cls else np.zeros(0),
            "det_tp": np.concatenate(self.tp) if n_cls else np.zeros(0),
            "num_gt": self.num_gt,
            "num_det": self.num_det,
            "num_ignored": self.num_ignored,
        }

    @classmethod
    def from_arrays(cls, a) -> "DetectionMatches":
        n_cls = int(np.asarray(a["num_gt"]).shape[1])
        c = np.asarray(a["det_class"])
        pick = [c == k for k in range(n_cls)]
        image, score, tp = (np.asarray(a[k]) for k in ("det_image", "det_score", "det_tp"))
        return cls(
            image=[image[m] for m in pick],
            score=[score[m] for m in pick],
            tp=[tp[m] for m in pick],
            num_gt=np.asarray(a["num_gt"]),
            num_det=np.asarray(a["num_det"]),
            num_ignored=np.asarray(a["num_ignored"]),
        )


def match_detections(
    predictions: Sequence,
    ground_truths: Sequence,
    num_classes: int,
    iou_threshold: float = 0.5,
    max_dets: int = 100,
    difficulty=None,
    ioa_threshold: float = IOA_THRESHOLD,
) -> DetectionMatches:
    """COCO matching of every image's detections (see the module docstring); arguments as
    :func:`average_precision`."""
    if len(predictions) != len(ground_truths):
        raise ValueError(f"{len(predictions)} predictions for {len(ground_truths)} ground-truth images")
    diff = get_difficulty(difficulty)
    imgs: list[list] = [[] for _ in range(num_classes)]
    tps: list[list] = [[] for _ in range(num_classes)]
    scs: list[list] = [[] for _ in range(num_classes)]
    num_gt = np.zeros((len(predictions), num_classes), dtype=np.int64)
    num_det = np.zeros(num_classes, dtype=np.int64)
    num_ign = np.zeros(num_classes, dtype=np.int64)
    for i, (pred, gt) in enumerate(zip(predictions, ground_truths)):
        p, g = as_arrays(pred), as_arrays(gt)
        inside = in_difficulty(g["boxes"], g["truncation"], g["occlusion"], diff)
        for c in np.union1d(np.unique(p["labels"]), np.unique(g["labels"])):
            c = int(c)
            if not 0 <= c < num_classes:
                raise ValueError(f"class id {c} is outside the {num_classes} classes")
            of_c = g["labels"] == c
            gb, gb_ign = g["boxes"][of_c & inside], g["boxes"][of_c & ~inside]
            pm = p["labels"] == c
            pb, ps = p["boxes"][pm], p["scores"][pm]
            order = np.argsort(-ps, kind="mergesort")[:max_dets]
            pb, ps = pb[order], ps[order]
            num_gt[i, c] += len(gb)
            if len(pb) == 0:
                continue
            iou = box_iou(torch.from_numpy(pb), torch.from_numpy(gb)).numpy()
            iou_ign = box_iou(torch.from_numpy(pb), torch.from_numpy(gb_ign)).numpy()
            may_ignore = detection_in_ignore(pb, g["ignore"], diff, ioa_threshold)
            tp, ignored = _greedy_match(iou, iou_threshold, iou_ign, may_ignore)
            num_det[c] += len(pb)
            num_ign[c] += int(ignored.sum())
            tps[c].append(tp[~ignored])
            scs[c].append(ps[~ignored])
            imgs[c].append(np.full(int((~ignored).sum()), i, np.int64))
    image, score, tp_out = [], [], []
    for c in range(num_classes):
        sc = np.concatenate(scs[c]) if scs[c] else np.zeros(0)
        order = np.argsort(-sc, kind="mergesort")
        score.append(sc[order])
        tp_out.append((np.concatenate(tps[c]) if tps[c] else np.zeros(0))[order])
        image.append((np.concatenate(imgs[c]) if imgs[c] else np.zeros(0, np.int64))[order])
    return DetectionMatches(image=image, score=score, tp=tp_out, num_gt=num_gt, num_det=num_det, num_ignored=num_ign)


def average_precision(
    predictions: Sequence,
    ground_truths: Sequence,
    num_classes: int,
    iou_threshold: float = 0.5,
    max_dets: int = 100,
    difficulty=None,
    ioa_threshold: float = IOA_THRESHOLD,
) -> dict:
    """Per-class AP and mAP. ``predictions``/``ground_truths``: per image SceneGraph or dict of arrays.

    ``difficulty``: None (every labelled object) or ``"easy"|"moderate"|"hard"`` (KITTI).
    Returns ``{"ap": [per class AP or nan], "num_gt": [...], "num_det": [...], "num_ignored": [...],
    "map": float, ...}``; ``num_gt`` counts the objects inside the difficulty, ``num_det`` every
    detection ranked (at most ``max_dets`` per image and class), ``num_ignored`` those ignored.
    """
    m = match_detections(predictions, ground_truths, num_classes, iou_threshold, max_dets, difficulty, ioa_threshold)
    ap = m.ap()
    diff = get_difficulty(difficulty)
    return {
        "ap": ap,
        "num_gt": m.num_gt.sum(0).tolist(),
        "num_det": m.num_det.tolist(),
        "num_ignored": m.num_ignored.tolist(),
        "map": mean_ap(ap),
        "iou_threshold": iou_threshold,
        "interpolation": "COCO 101-point",
        "difficulty": diff.name if diff else None,
    }


def mean_ap(ap: Sequence[float]) -> float:
    """Mean over the classes that have ground truth (NaN when none has)."""
    valid = [a for a in ap if not math.isnan(a)]
    return float(np.mean(valid)) if valid else math.nan
