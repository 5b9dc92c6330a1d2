"""Image and label preparation shared by training, evaluation and the Predictor.

Source images of any size are resized (per axis, no letterbox) to the model input size; boxes
are scaled with the same per-axis factors, so predictions map back to source pixels exactly.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import cv2
import numpy as np
import torch

from sim2sg_core.scene_graph import SceneGraph, SceneGraphError

Size = tuple[int, int]  # (width, height)


def check_image(rgb: np.ndarray, where: str = "image") -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        desc = f"{type(rgb).__name__} {getattr(rgb, 'shape', '')} {getattr(rgb, 'dtype', '')}"
        raise ValueError(f"{where} must be an RGB uint8 array of shape (H, W, 3), got {desc}")
    return rgb


def images_to_tensor(images: Sequence[np.ndarray], input_size: Size, mean: Sequence[float],
                     std: Sequence[float]) -> torch.Tensor:
    """RGB uint8 images → normalised float tensor (B, 3, H_in, W_in)."""
    w, h = int(input_size[0]), int(input_size[1])
    batch = np.empty((len(images), h, w, 3), dtype=np.uint8)
    for i, im in enumerate(images):
        check_image(im, f"image {i}")
        batch[i] = im if im.shape[:2] == (h, w) else cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA)
    t = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (t - m) / s


def scale_boxes(boxes, from_size: Size, to_size: Size):
    """Scale xyxy boxes (numpy or torch, (N, 4)) from one image size to another, per axis."""
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    if isinstance(boxes, torch.Tensor):
        return boxes * boxes.new_tensor([sx, sy, sx, sy])
    return np.asarray(boxes, dtype=np.float64) * np.array([sx, sy, sx, sy])


def graph_source_size(graph: SceneGraph, image: Optional[np.ndarray] = None) -> Size:
    if image is not None:
        return int(image.shape[1]), int(image.shape[0])
    if graph.image_width > 0 and graph.image_height > 0:
        return int(graph.image_width), int(graph.image_height)
    raise SceneGraphError("scene graph has no image_width/image_height and no image was given to size it")


def graph_to_target(graph: SceneGraph, input_size: Size, source_size: Optional[Size] = None) -> dict:
    """A label SceneGraph → model target: ``boxes`` (input px), ``labels``, ``relations`` (R, 3: s, o, p)."""
    src = source_size or graph_source_size(graph)
    boxes = np.array([o.box for o in graph.objects], dtype=np.float32).reshape(-1, 4)
    boxes = scale_boxes(boxes, src, input_size).astype(np.float32)
    labels = np.array([o.class_id for o in graph.objects], dtype=np.int64)
    rels = np.array([(r.subject, r.object, r.predicate_id) for r in graph.relationships], dtype=np.int64).reshape(-1, 3)
    return {"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(labels), "relations": torch.from_numpy(rels)}


def hflip_sample(rgb: np.ndarray, graph: SceneGraph, predicates: Sequence[str]) -> tuple[np.ndarray, SceneGraph]:
    """Mirror image and label: boxes flip, ground x negates, and left/right predicates swap."""
    w = rgb.shape[1]
    swap = {"left": "right", "right": "left"}
    objs = []
    for o in graph.objects:
        x1, y1, x2, y2 = o.box
        pos = None if o.position is None else (-o.position[0], o.position[1], o.position[2])
        objs.append(dataclasses.replace(o, box=(w - x2, y1, w - x1, y2), position=pos, yaw=-o.yaw))
    rels = []
    for r in graph.relationships:
        name = swap.get(r.predicate, r.predicate)
        pid = predicates.index(name) if name in predicates else r.predicate_id
        rels.append(dataclasses.replace(r, predicate=name, predicate_id=pid))
    return np.ascontiguousarray(rgb[:, ::-1]), dataclasses.replace(graph, objects=objs, relationships=rels)


class Collator:
    """DataLoader collate_fn: (rgb, SceneGraph | None) items → model batch (runs in the workers).

    Returns ``{"images": (B,3,H,W), "targets": [dict | None], "graphs": [...], "source_sizes": [...]}``;
    a None graph marks an unlabelled image (its target is None and it adds no supervised loss).
    """

    def __init__(self, input_size: Size, mean: Sequence[float], std: Sequence[float], hflip: bool = False,
                 predicates: Sequence[str] = ()):
        self.input_size, self.mean, self.std = tuple(input_size), tuple(mean), tuple(std)
        self.hflip, self.predicates = hflip, tuple(predicates)

    def __call__(self, items):
        images, targets, graphs, sizes = [], [], [], []
        for rgb, graph in items:
            if self.hflip and graph is not None and torch.rand(()) < 0.5:
                rgb, graph = hflip_sample(rgb, graph, self.predicates)
            src = (int(rgb.shape[1]), int(rgb.shape[0]))
            images.append(rgb)
            graphs.append(graph)
            sizes.append(src)
            targets.append(None if graph is None else graph_to_target(graph, self.input_size, src))
        return {"images": images_to_tensor(images, self.input_size, self.mean, self.std), "targets": targets,
                "graphs": graphs, "source_sizes": sizes}
