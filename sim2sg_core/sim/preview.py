"""Drawing scene graphs on images (preview grids, debugging, the ROS debug image)."""

from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from sim2sg_core.scene_graph import SceneGraph

#: distinct RGB colours per class id
CLASS_COLOURS = [
    (255, 64, 64),
    (64, 160, 255),
    (64, 220, 64),
    (255, 200, 40),
    (220, 80, 255),
    (40, 230, 230),
    (255, 130, 40),
    (200, 200, 200),
]


def draw_graph(
    image: np.ndarray, graph: SceneGraph, max_relations: Optional[int] = 12, font_scale: float = 0.35
) -> np.ndarray:
    """A copy of ``image`` with boxes, class names and relationship arrows (subject → object,
    labelled with the predicate at the midpoint)."""
    out = np.ascontiguousarray(image.copy())
    for o in graph.objects:
        c = CLASS_COLOURS[o.class_id % len(CLASS_COLOURS)]
        x0, y0, x1, y1 = (int(round(v)) for v in o.box)
        cv2.rectangle(out, (x0, y0), (max(x1 - 1, x0), max(y1 - 1, y0)), c, 1, cv2.LINE_AA)
        label = o.class_name if o.score >= 0.999 else f"{o.class_name} {o.score:.2f}"
        cv2.putText(out, label, (x0, max(y0 - 2, 8)), cv2.FONT_HERSHEY_SIMPLEX, font_scale, c, 1, cv2.LINE_AA)
    rels = graph.relationships if max_relations is None else graph.relationships[:max_relations]
    for r in rels:
        a, b = graph.objects[r.subject].box, graph.objects[r.object].box
        pa = (int((a[0] + a[2]) / 2), int((a[1] + a[3]) / 2))
        pb = (int((b[0] + b[2]) / 2), int((b[1] + b[3]) / 2))
        cv2.arrowedLine(out, pa, pb, (255, 255, 255), 1, cv2.LINE_AA, tipLength=0.05)
        mid = ((pa[0] + pb[0]) // 2, (pa[1] + pb[1]) // 2)
        cv2.putText(out, r.predicate, mid, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 0), 1, cv2.LINE_AA)
    return out


def grid(images: Sequence[np.ndarray], cols: int = 2, pad: int = 2) -> np.ndarray:
    """Tile equally sized images into a grid (black padding)."""
    if not images:
        raise ValueError("grid needs at least one image")
    h, w = images[0].shape[:2]
    rows = (len(images) + cols - 1) // cols
    out = np.zeros((rows * (h + pad) - pad, cols * (w + pad) - pad, 3), np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = im
    return out


__all__ = ["CLASS_COLOURS", "draw_graph", "grid"]
