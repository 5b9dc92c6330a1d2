"""Drawing scene graphs: boxes/labels/relationship arrows on the image, and the graph as a diagram.

Shared by the CLI ``predict`` command, the ROS debug image and the demo. Pure functions:
RGB uint8 in, RGB uint8 out.
"""

from __future__ import annotations

import colorsys
import math

import cv2
import numpy as np

from sim2sg_core.scene_graph import SceneGraph


def class_colour(class_id: int) -> tuple[int, int, int]:
    """A stable, well-separated RGB colour per class id (golden-ratio hue steps)."""
    h = (class_id * 0.618033988749895 + 0.05) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def _label(img, text, org, colour, scale):
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = int(org[0]), int(max(org[1], th + 2))
    cv2.rectangle(img, (x, y - th - 2), (x + tw + 2, y + base - 1), colour, -1)
    cv2.putText(img, text, (x + 1, y - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def draw_scene_graph(
    rgb: np.ndarray, graph: SceneGraph, max_relationships: int = 30, show_scores: bool = True
) -> np.ndarray:
    """Copy of ``rgb`` with boxes, class labels and the top relationships as labelled arrows."""
    img = np.ascontiguousarray(rgb.copy())
    scale = max(0.35, min(img.shape[:2]) / 500.0)
    centres = []
    for i, o in enumerate(graph.objects):
        x1, y1, x2, y2 = (int(round(v)) for v in o.box)
        c = class_colour(o.class_id)
        cv2.rectangle(img, (x1, y1), (x2, y2), c, 2)
        text = f"{i}:{o.class_name}" + (f" {o.score:.2f}" if show_scores and o.score < 1.0 else "")
        _label(img, text, (x1, y1), c, scale)
        centres.append(((x1 + x2) / 2, (y1 + y2) / 2))
    rels = sorted(graph.relationships, key=lambda r: -r.score)[:max_relationships]
    for r in rels:
        a, b = centres[r.subject], centres[r.object]
        pa, pb = (int(a[0]), int(a[1])), (int(b[0]), int(b[1]))
        cv2.arrowedLine(img, pa, pb, (255, 255, 0), 1, cv2.LINE_AA, tipLength=0.08)
        mid = (int((a[0] + b[0]) / 2), int((a[1] + b[1]) / 2))
        cv2.putText(img, r.predicate, mid, cv2.FONT_HERSHEY_SIMPLEX, scale * 0.9, (255, 255, 0), 1, cv2.LINE_AA)
    return img


def draw_graph_diagram(
    graph: SceneGraph, size: tuple[int, int] = (640, 480), max_relationships: int = 40
) -> np.ndarray:
    """The graph itself: objects as coloured nodes on a circle, relationships as labelled arrows (matplotlib)."""
    import matplotlib  # deferred: heavy, and only this drawing needs it (the ROS node imports viz)

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # deferred: after matplotlib.use("Agg")
    from matplotlib.figure import Figure  # deferred: as above

    dpi = 100
    fig = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-1.4, 1.4)
    ax.set_ylim(-1.25, 1.25)
    ax.axis("off")
    n = len(graph.objects)
    pos = [
        (math.cos(2 * math.pi * i / max(n, 1) + math.pi / 2), math.sin(2 * math.pi * i / max(n, 1) + math.pi / 2))
        for i in range(n)
    ]
    rels = sorted(graph.relationships, key=lambda r: -r.score)[:max_relationships]
    for r in rels:
        (x0, y0), (x1, y1) = pos[r.subject], pos[r.object]
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops=dict(
                arrowstyle="-|>", color="0.35", lw=1, shrinkA=14, shrinkB=14, connectionstyle="arc3,rad=0.12"
            ),
        )
        ax.text(
            0.55 * x0 + 0.45 * x1,
            0.55 * y0 + 0.45 * y1,
            r.predicate,
            fontsize=7,
            color="0.2",
            ha="center",
            va="center",
            bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8),
        )
    for i, o in enumerate(graph.objects):
        c = tuple(v / 255 for v in class_colour(o.class_id))
        ax.scatter([pos[i][0]], [pos[i][1]], s=700, color=c, zorder=3)
        ax.text(
            pos[i][0],
            pos[i][1],
            f"{i}\n{o.class_name}",
            ha="center",
            va="center",
            fontsize=7,
            zorder=4,
            color="white",
            fontweight="bold",
        )
    if n == 0:
        ax.text(0, 0, "(no objects)", ha="center", va="center")
    canvas.draw()
    buf = np.asarray(canvas.buffer_rgba())
    return np.ascontiguousarray(buf[..., :3])
