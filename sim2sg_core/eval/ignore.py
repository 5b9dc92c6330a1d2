"""What evaluation ignores: ignore regions of the labels and KITTI difficulty levels.

A detection that matches no real ground-truth object (of its class, IoU ≥ the matching threshold)
is *ignored* — neither a true nor a false positive, in AP and in Recall@K — when

- it matches a ground-truth object that the chosen difficulty leaves out (same class, IoU ≥ the
  threshold; in AP one detection per such object, as COCO/KITTI match ignored objects), or
- under a difficulty, its box is lower than the difficulty's minimum height (KITTI ignores such
  detections), or
- at least ``ioa_threshold`` (0.5) of its area lies inside one of the graph's ``ignore_regions``
  (KITTI ``DontCare``, ignored KITTI types, objects the simulator's label filter drops; any class;
  intersection over the *detection's* area, as KITTI's DontCare test).

KITTI difficulties (object-detection devkit): easy = box height ≥ 40 px, fully visible (occlusion
level 0), truncation ≤ 0.15; moderate = ≥ 25 px, level ≤ 1, ≤ 0.30; hard = ≥ 25 px, level ≤ 2,
≤ 0.50. Heights are in the label's own pixels. Occlusion levels come from the occluded fraction
as the KITTI writer maps them (< 0.1 → 0, < 0.5 → 1, < 1 → 2); a KITTI "unknown" level (3) is read as
the fraction 1.0 (level 3), which is outside every difficulty, as in the devkit. Ground-truth objects
outside the difficulty are not counted (they become ignored).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

#: Default share of a detection's area that must lie inside an ignore region to ignore it.
IOA_THRESHOLD = 0.5


@dataclass(frozen=True)
class Difficulty:
    name: str
    min_height: float
    max_occlusion_level: int
    max_truncation: float


DIFFICULTIES: dict[str, Difficulty] = {
    "easy": Difficulty("easy", 40.0, 0, 0.15),
    "moderate": Difficulty("moderate", 25.0, 1, 0.30),
    "hard": Difficulty("hard", 25.0, 2, 0.50),
}


def get_difficulty(difficulty) -> Optional[Difficulty]:
    """None / a name / a :class:`Difficulty` → Difficulty or None; unknown names raise ValueError."""
    if difficulty is None or isinstance(difficulty, Difficulty):
        return difficulty
    if isinstance(difficulty, str) and difficulty.lower() in DIFFICULTIES:
        return DIFFICULTIES[difficulty.lower()]
    raise ValueError(f"difficulty must be None or one of {list(DIFFICULTIES)}, got {difficulty!r}")


#: Occluded fraction that stands for KITTI's "unknown" occlusion level 3 (outside every difficulty).
UNKNOWN_OCCLUSION = 1.0


def occlusion_level(fraction) -> np.ndarray:
    """KITTI occlusion level (0 fully visible, 1 partly, 2 largely occluded, 3 unknown / fully hidden) of
    occluded fractions."""
    f = np.asarray(fraction, dtype=np.float64)
    return np.where(f < 0.1, 0, np.where(f < 0.5, 1, np.where(f < UNKNOWN_OCCLUSION, 2, 3)))


def in_difficulty(boxes, truncation, occlusion, difficulty) -> np.ndarray:
    """Per object: does it belong to ``difficulty``? (all True for None)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    d = get_difficulty(difficulty)
    if d is None:
        return np.ones(len(b), dtype=bool)
    height = b[:, 3] - b[:, 1]
    return (
        (height >= d.min_height)
        & (occlusion_level(occlusion) <= d.max_occlusion_level)
        & (np.asarray(truncation, dtype=np.float64) <= d.max_truncation + 1e-9)
    )


def labels_carry_difficulty_fields(graphs: Iterable) -> bool:
    """True when some label object has a truncation or occlusion (KITTI labels, simulator labels):
    then the difficulty split means something."""
    return any(o.truncation > 0 or o.occlusion > 0 for g in graphs for o in g.objects)


def box_ioa(boxes, regions) -> np.ndarray:
    """(N, M) intersection area / area of ``boxes[n]`` (0 for an empty box)."""
    a = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    r = np.asarray(regions, dtype=np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, None, 2], r[None, :, 2]) - np.maximum(a[:, None, 0], r[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], r[None, :, 3]) - np.maximum(a[:, None, 1], r[None, :, 1]), 0, None)
    area = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None]
    return np.where(area > 0, iw * ih / np.where(area > 0, area, 1.0), 0.0)


def detection_in_ignore(det_boxes, regions, difficulty=None, ioa_threshold: float = IOA_THRESHOLD) -> np.ndarray:
    """Per detection: may it be ignored when it matches no real object? (inside an ignore region,
    or lower than the difficulty's minimum height)."""
    b = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
    out = np.zeros(len(b), dtype=bool)
    r = np.asarray(regions, dtype=np.float64).reshape(-1, 4)
    if len(b) and len(r):
        out |= box_ioa(b, r).max(1) >= ioa_threshold
    d = get_difficulty(difficulty)
    if d is not None:
        out |= (b[:, 3] - b[:, 1]) < d.min_height
    return out


__all__ = [
    "DIFFICULTIES",
    "Difficulty",
    "IOA_THRESHOLD",
    "box_ioa",
    "detection_in_ignore",
    "get_difficulty",
    "in_difficulty",
    "labels_carry_difficulty_fields",
    "occlusion_level",
    "UNKNOWN_OCCLUSION",
]
