"""Exact labels from the instance-id map: a label's box is the extent of the object's visible pixels,
occlusion = 1 − visible pixels / pixels the object would cover alone (its fills redrawn into an
empty mask), truncation = share of the projected 3-D extent outside the image. Objects failing the
environment's label filter become ignore regions (visible but unlabelled: not false positives)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from sim2sg_core.scene_graph import IgnoreRegion, SceneGraph, SceneObject, derive_relationships
from sim2sg_core.sim.domains import EnvironmentConfig
from sim2sg_core.sim.render.raster import SCALE, SHIFT
from sim2sg_core.sim.scene import SceneDescription, vec3


def unoverlapped_objects(order: list, extents: dict, margin: float = 2.0) -> set:
    """Objects (indices) whose extent no object drawn after them (later in ``order``) reaches."""
    out = set()
    for i, k in enumerate(order):
        a = extents.get(k)
        if a is None:
            continue
        for j in order[i + 1 :]:
            b = extents.get(j)
            if (
                b is not None
                and b[0] - margin < a[2] + margin
                and a[0] - margin < b[2] + margin
                and b[1] - margin < a[3] + margin
                and a[1] - margin < b[3] + margin
            ):
                break
        else:
            out.add(k)
    return out


def label_scene(
    env: EnvironmentConfig,
    scene: SceneDescription,
    ids: np.ndarray,
    ops_per_obj: dict,
    extents: dict,
    clear: frozenset = frozenset(),
) -> tuple[SceneGraph, list, dict, dict]:
    """``(graph, label_index, visible pixels, occlusion)`` of a drawn scene; ``ops_per_obj`` are each
    object's fills, ``extents`` its projected extents, ``clear`` objects nothing drawn later overlaps
    (see :func:`unoverlapped_objects`: their occlusion is 0 without redrawing)."""
    cam = scene.camera
    W, H = cam.width, cam.height
    filt = env.labels
    vocab = env.vocab
    objects: list[SceneObject] = []
    label_index: list[int] = []
    ignore: list[IgnoreRegion] = []
    visible_px: dict[int, int] = {}
    occl: dict[int, float] = {}
    for k, o in enumerate(scene.objects):
        ops = ops_per_obj.get(k) or []
        if not ops:
            continue
        x0f, y0f, x1f, y1f = extents[k]
        x0, y0 = max(int(math.floor(x0f)) - 1, 0), max(int(math.floor(y0f)) - 1, 0)
        x1, y1 = min(int(math.ceil(x1f)) + 2, W), min(int(math.ceil(y1f)) + 2, H)
        if x1 <= x0 or y1 <= y0:
            continue
        sub = ids[y0:y1, x0:x1] == (k + 1)
        count = int(np.count_nonzero(sub))
        visible_px[k] = count
        if count == 0:
            continue
        cols = np.flatnonzero(sub.any(axis=0))
        rows = np.flatnonzero(sub.any(axis=1))
        box = (float(x0 + cols[0]), float(y0 + rows[0]), float(x0 + cols[-1] + 1), float(y0 + rows[-1] + 1))
        if k in clear:  # nothing drawn later reaches it: every pixel it drew is still its own
            own_count = count
        else:
            own = np.zeros(sub.shape, np.uint8)
            off = np.array([x0 * SCALE, y0 * SCALE], np.int32)
            for op in ops:
                if op[0] == "poly":
                    cv2.fillConvexPoly(own, op[1] - off, 1, cv2.LINE_8, SHIFT)
                else:
                    cv2.circle(own, (op[1][0] - int(off[0]), op[1][1] - int(off[1])), op[2], 1, -1, cv2.LINE_8, SHIFT)
            own_count = max(int(np.count_nonzero(own)), count)
        occlusion = 1.0 - count / own_count
        occl[k] = occlusion
        full = max((x1f - x0f) * (y1f - y0f), 1e-9)
        inside = max(min(x1f, W) - max(x0f, 0), 0) * max(min(y1f, H) - max(y0f, 0), 0)
        truncation = float(min(max(1.0 - inside / full, 0.0), 1.0))
        bw, bh = box[2] - box[0], box[3] - box[1]
        if (
            bh < filt.min_box_height
            or bw < filt.min_box_width
            or count < filt.min_visible_pixels
            or occlusion > filt.max_occlusion
        ):
            ignore.append(IgnoreRegion(box=box, kind="label_filter"))  # visible, unlabelled: not an FP
            continue
        objects.append(
            SceneObject(
                class_name=o.class_name,
                class_id=vocab.class_id(o.class_name),
                box=box,
                score=1.0,
                position=vec3(o.position),
                size=vec3(o.size),
                truncation=truncation,
                occlusion=float(occlusion),
                yaw=float(o.yaw),
            )
        )
        label_index.append(k)
    graph = SceneGraph(
        objects=objects,
        relationships=derive_relationships(objects, vocab),
        image_width=W,
        image_height=H,
        ignore_regions=ignore,
    )
    return graph, label_index, visible_px, occl
