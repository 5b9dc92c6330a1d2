"""Domain-gap statistics between two simulators (or any two labelled image sets).

Appearance: per-channel 32-bin colour histograms pooled over the images, compared with the
Bhattacharyya distance (OpenCV ``compareHist``), averaged over R, G, B; plus mean brightness and
mean high-frequency energy (Laplacian variance, which blur and noise change).
Content: objects per image (mean, distribution and total-variation distance between the
distributions), per-class mean counts, mean depth and camera height.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import cv2
import numpy as np

BINS = 32


def colour_histograms(images: Iterable[np.ndarray]) -> np.ndarray:
    """(3, BINS) float32 normalised per-channel histograms pooled over ``images``."""
    acc = np.zeros((3, BINS), np.float64)
    for im in images:
        for c in range(3):
            acc[c] += cv2.calcHist([im], [c], None, [BINS], [0, 256]).ravel()
    acc /= np.maximum(acc.sum(axis=1, keepdims=True), 1.0)
    return acc.astype(np.float32)


def histogram_distance(h1: np.ndarray, h2: np.ndarray) -> float:
    """Mean Bhattacharyya distance of the per-channel histograms (0 = identical, 1 = disjoint)."""
    return float(np.mean([cv2.compareHist(h1[c], h2[c], cv2.HISTCMP_BHATTACHARYYA) for c in range(3)]))


def count_distribution(counts: Sequence[int], max_count: int = 15) -> np.ndarray:
    h = np.bincount(np.clip(np.asarray(counts, int), 0, max_count), minlength=max_count + 1).astype(float)
    return h / max(h.sum(), 1.0)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    return float(0.5 * np.abs(p - q).sum())


def summarize(samples: Sequence) -> dict:
    """Appearance and content summary of simulator samples (objects with ``image``, ``graph``, ``scene``)."""
    images = [s.image for s in samples]
    counts = [len(s.graph.objects) for s in samples]
    depths = []
    for s in samples:
        for o in s.graph.objects:
            if o.position is not None:
                depths.append(o.position[2])
    classes = sorted({o.class_name for s in samples for o in s.graph.objects})
    class_counts = {c: [sum(o.class_name == c for o in s.graph.objects) for s in samples] for c in classes}
    class_means = {c: float(np.mean(v)) for c, v in class_counts.items()}
    gray = [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in images]
    return {
        "hist": colour_histograms(images),
        "brightness": float(np.mean([g.mean() for g in gray])),
        "sharpness": float(np.mean([cv2.Laplacian(g, cv2.CV_32F).var() for g in gray])),
        "counts": counts,
        "count_mean": float(np.mean(counts)) if counts else 0.0,
        "count_dist": count_distribution(counts),
        "class_means": class_means,
        "class_counts": class_counts,
        "depth_mean": float(np.mean(depths)) if depths else float("nan"),
        "camera_height": float(np.mean([s.scene.camera.height_m for s in samples])),
        "camera_pitch": float(np.mean([s.scene.camera.pitch for s in samples])),
    }


def count_z_scores(a: dict, b: dict) -> dict[str, float]:
    """Per class: |difference of mean counts per image| / its standard error (two-sample z)."""
    out = {}
    for c in sorted(set(a["class_counts"]) | set(b["class_counts"])):
        x = np.asarray(a["class_counts"].get(c, [0] * len(a["counts"])), float)
        y = np.asarray(b["class_counts"].get(c, [0] * len(b["counts"])), float)
        se = np.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y)) if len(x) > 1 and len(y) > 1 else np.inf
        out[c] = float(abs(x.mean() - y.mean()) / max(se, 1e-9))
    return out


def domain_gap(a: dict, b: dict) -> dict:
    """Gap between two :func:`summarize` results."""
    return {
        "count_z": count_z_scores(a, b),
        "colour_hist_bhattacharyya": histogram_distance(a["hist"], b["hist"]),
        "brightness": (a["brightness"], b["brightness"]),
        "sharpness": (a["sharpness"], b["sharpness"]),
        "objects_per_image": (a["count_mean"], b["count_mean"]),
        "count_dist_tv": total_variation(a["count_dist"], b["count_dist"]),
        "class_means": {
            c: (a["class_means"].get(c, 0.0), b["class_means"].get(c, 0.0))
            for c in sorted(set(a["class_means"]) | set(b["class_means"]))
        },
        "depth_mean": (a["depth_mean"], b["depth_mean"]),
        "camera_height": (a["camera_height"], b["camera_height"]),
    }


__all__ = [
    "colour_histograms",
    "count_distribution",
    "domain_gap",
    "histogram_distance",
    "summarize",
    "total_variation",
]
