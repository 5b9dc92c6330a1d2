"""Paired bootstrap confidence intervals for a method's gain over a baseline (benchmark tables).

Two sources of noise are re-sampled together, both paired:
- training seeds: each draw picks seeds with replacement; a seed brings both methods' runs (same data,
  same shared pre-training);
- evaluation images: inside each picked seed, images are drawn with replacement, and both methods
  are scored on the same draw.
A metric is recomputed from per-image ingredients (``evaluate(..., keep_records=True)``): detection
matches for mAP (:class:`~sim2sg_core.eval.detection.DetectionMatches`, re-weighted, not re-matched)
and per-image recall for Recall@K. The interval is the percentile interval of the mean difference.
"""

from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence

import numpy as np

from sim2sg_core.eval.detection import DetectionMatches, mean_ap


#: Bootstrap draws scored together (memory: draws x detections per class).
_CHUNK = 256


class RunRecords:
    """One run's per-image ingredients, converted once (see ``evaluate(..., keep_records=True)``)."""

    def __init__(self, records: Mapping, difficulty: Optional[str] = None):
        """``difficulty``: read the detection matches stored under that KITTI level (``"hard.det_tp"`` ...)
        instead of every labelled object's; recall stays the run's."""
        if difficulty is not None:
            prefix = f"{difficulty}."
            level = {k[len(prefix) :]: v for k, v in records.items() if k.startswith(prefix)}
            if not level:
                raise ValueError(f"these records hold no matches for difficulty {difficulty!r}")
            records = {**{k: v for k, v in records.items() if k.startswith("recall@")}, **level}
        self.matches = DetectionMatches.from_arrays(records)
        self.recall = {
            k[len("recall@") :]: np.asarray(v, dtype=np.float64) for k, v in records.items() if k.startswith("recall@")
        }

    @property
    def num_images(self) -> int:
        return self.matches.num_images

    def value(self, metric: str, weights: Optional[np.ndarray] = None) -> float:
        """``metric`` ("mAP" or "R@K") under per-image ``weights`` (None = each image once)."""
        w = np.ones((1, self.num_images)) if weights is None else np.asarray(weights)[None]
        return float(self.values(metric, w)[0])

    def values(self, metric: str, weights: np.ndarray) -> np.ndarray:
        """``metric`` for each row of per-image ``weights`` (draws, images), all rows at once."""
        w = np.asarray(weights, dtype=np.float64)
        if metric == "mAP":
            return np.array([mean_ap(per_class) for per_class in self.matches.ap_weighted(w)])
        if metric.startswith("AP/") and metric[3:].isdigit():  # one class's AP, by class index
            return self.matches.ap_weighted(w)[:, int(metric[3:])]
        if metric.startswith("R@") and metric[2:] in self.recall:
            r = self.recall[metric[2:]]
            w = np.where(np.isnan(r), 0.0, w)
            total = w.sum(1)
            return np.where(total > 0, (w * np.nan_to_num(r)).sum(1) / np.maximum(total, 1e-300), math.nan)
        known = ["mAP", "AP/<class index>"] + ["R@" + k for k in self.recall]
        raise ValueError(f"unknown metric {metric!r}: use one of {known}")


def paired_bootstrap(
    method: Sequence[Mapping],
    baseline: Sequence[Mapping],
    metric: str,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    difficulty: Optional[str] = None,
) -> dict:
    """Mean over seeds of ``metric(method) - metric(baseline)`` and its paired-bootstrap interval.

    ``method[i]`` and ``baseline[i]`` are the records of the same training seed on the same evaluation
    images. ``difficulty``: score the matches stored under that KITTI level. Returns ``{"diff", "low", "high",
    "seeds", "n_boot", "confidence"}``.
    """
    if len(method) != len(baseline) or not method:
        raise ValueError(
            f"paired bootstrap needs the same seeds for both methods, got {len(method)} and {len(baseline)} runs"
        )
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    runs_m = [RunRecords(r, difficulty) for r in method]
    runs_b = [RunRecords(r, difficulty) for r in baseline]
    sizes = [r.num_images for r in runs_m]
    if sizes != [r.num_images for r in runs_b]:
        raise ValueError("paired runs must be scored on the same evaluation images")
    diff = float(np.mean([m.value(metric) - b.value(metric) for m, b in zip(runs_m, runs_b)]))
    rng = np.random.default_rng(seed)
    n_seeds, n_boot = len(method), int(n_boot)
    # the draws first (seeds, then each picked seed's image multiplicities), then each seed's draws scored at once
    weights: list[list[np.ndarray]] = [[] for _ in range(n_seeds)]
    slot_of: list[list[tuple[int, int]]] = [[] for _ in range(n_seeds)]
    for t in range(n_boot):
        for j, s in enumerate(rng.integers(0, n_seeds, n_seeds)):
            weights[s].append(rng.multinomial(sizes[s], np.full(sizes[s], 1.0 / sizes[s])))
            slot_of[s].append((t, j))
    d = np.full((n_boot, n_seeds), math.nan)
    for s in range(n_seeds):
        if not weights[s]:
            continue
        w = np.stack(weights[s])
        t_idx, j_idx = np.asarray(slot_of[s]).T
        for lo in range(0, len(w), _CHUNK):  # bounded memory: (chunk, detections) per class
            part = slice(lo, lo + _CHUNK)
            d[t_idx[part], j_idx[part]] = runs_m[s].values(metric, w[part]) - runs_b[s].values(metric, w[part])
    with np.errstate(invalid="ignore"):
        valid = ~np.isnan(d)
        draws = np.where(valid.any(1), np.where(valid, d, 0.0).sum(1) / np.maximum(valid.sum(1), 1), math.nan)
    draws = draws[~np.isnan(draws)]
    alpha = (1.0 - confidence) / 2
    low, high = (
        (float(np.quantile(draws, alpha)), float(np.quantile(draws, 1 - alpha))) if len(draws) else (math.nan, math.nan)
    )
    return {"diff": diff, "low": low, "high": high, "seeds": n_seeds, "n_boot": int(n_boot), "confidence": confidence}


__all__ = ["RunRecords", "paired_bootstrap"]
