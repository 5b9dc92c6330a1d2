"""Label-free evidence that boxes on real frames hold vehicles: a registration check for real labels and a
plausibility check for a detector's boxes.

An independent scorer (the ImageNet classifier, ``model.imagenet_prior.VehicleScorer.score_crops``) gives
each box a vehicle probability. Each box is compared with *same-row controls*: boxes of the same size at
the same image rows but at random columns, so they see the same kind of content (road, kerbs, parked
rows, facades) at the same scale. The rank AUC of boxes against controls is 0.5 when the boxes point at
vehicles no more often than chance placement would, and rises towards 1 the more they do. A 95 % interval
comes from resampling whole frames.

Used two ways (``scripts/audit_real_labels.py``):
- on a labelled folder's ground-truth boxes, an AUC near 0.5 says the labels are not registered to the
  images (then AP measured against them says little about a detector);
- on a model's confident detections, it is a label-free proxy for precision on real frames.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

#: ``score(image_rgb_uint8, boxes_xyxy (N, 4)) -> (N,)`` vehicle probability per box.
ScoreFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def clip_boxes(boxes_xyxy, image_width: int, image_height: int, min_side: float = 2.0) -> np.ndarray:
    """Boxes clipped to the image, those with a side under ``min_side`` pixels after clipping dropped."""
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4).copy()
    b = b[np.isfinite(b).all(1)]
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, image_width - 1)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, image_height - 1)
    keep = (b[:, 2] - b[:, 0] >= min_side) & (b[:, 3] - b[:, 1] >= min_side)
    return b[keep]


def same_row_controls(boxes_xyxy, image_width: int, rng: np.random.Generator, draws: int = 5) -> np.ndarray:
    """``draws`` control boxes per box (``(N * draws, 4)``, box-major): same width, same rows, a column drawn
    uniformly so that the control lies inside the image."""
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    rep = np.repeat(b, draws, axis=0)
    width = rep[:, 2] - rep[:, 0]
    x0 = rng.uniform(0.0, 1.0, len(rep)) * np.maximum(image_width - 1 - width, 0.0)
    out = rep.copy()
    out[:, 0] = x0
    out[:, 2] = x0 + width
    return out


def rank_auc(positive, negative) -> float:
    """Probability that a positive outscores a negative, ties counting half (Mann–Whitney U / (n m));
    nan when either side is empty."""
    p = np.asarray(positive, dtype=np.float64).reshape(-1)
    n = np.asarray(negative, dtype=np.float64).reshape(-1)
    if len(p) == 0 or len(n) == 0:
        return float("nan")
    allv = np.concatenate([p, n])
    _, inverse, counts = np.unique(allv, return_inverse=True, return_counts=True)
    # average rank (1-based) of each distinct value: ranks before it + (count + 1) / 2
    avg_rank = np.cumsum(counts) - (counts - 1) / 2.0
    ranks = avg_rank[inverse]
    u = ranks[: len(p)].sum() - len(p) * (len(p) + 1) / 2.0
    return float(u / (len(p) * len(n)))


@dataclasses.dataclass
class EvidenceResult:
    """Boxes against their same-row controls, over a set of frames."""

    frames: int
    boxes: int
    controls: int
    mean_box_score: float
    mean_control_score: float
    auc: float
    auc_ci95: tuple[float, float]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def vehicle_evidence(
    score: ScoreFn,
    frames: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    draws: int = 5,
    seed: int = 0,
    bootstrap: int = 1000,
) -> EvidenceResult:
    """Score every frame's boxes and their same-row controls; AUC with a frame-bootstrap 95 % interval.

    ``frames``: ``(image RGB uint8 (H, W, 3), boxes (N, 4) xyxy pixels)``; boxes are clipped to the image
    and slivers dropped; a frame with no box left adds nothing.
    """
    rng = np.random.default_rng(seed)
    pos: list[np.ndarray] = []
    neg: list[np.ndarray] = []
    for image, boxes in frames:
        h, w = image.shape[:2]
        b = clip_boxes(boxes, w, h)
        if len(b) == 0:
            continue
        controls = same_row_controls(b, w, rng, draws)
        pos.append(np.asarray(score(image, b), dtype=np.float64).reshape(-1))
        neg.append(np.asarray(score(image, controls), dtype=np.float64).reshape(-1))
    if not pos:
        nan = float("nan")
        return EvidenceResult(0, 0, 0, nan, nan, nan, (nan, nan))
    auc = rank_auc(np.concatenate(pos), np.concatenate(neg))
    samples = []
    for _ in range(int(bootstrap)):
        idx = rng.integers(0, len(pos), len(pos))
        samples.append(rank_auc(np.concatenate([pos[i] for i in idx]), np.concatenate([neg[i] for i in idx])))
    lo, hi = (float(v) for v in np.nanpercentile(samples, [2.5, 97.5])) if samples else (float("nan"),) * 2
    all_pos, all_neg = np.concatenate(pos), np.concatenate(neg)
    return EvidenceResult(
        frames=len(pos),
        boxes=len(all_pos),
        controls=len(all_neg),
        mean_box_score=float(all_pos.mean()),
        mean_control_score=float(all_neg.mean()),
        auc=auc,
        auc_ci95=(lo, hi),
    )
