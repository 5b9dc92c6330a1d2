"""Image and label preparation shared by training, evaluation, adaptation and the Predictor.

A :class:`ResizeSpec` (model input size, ``resize_mode``, ``crop_bottom``) says how a source image
of any size becomes the model input, and maps boxes both ways with the very same factors:

* ``crop_bottom``: a fraction of the source rows dropped at the bottom first (e.g. a car bonnet);
  label boxes are clipped to the kept rows, predictions never reach into the dropped band;
* ``"stretch"`` (default; what every checkpoint before this option did): resize per axis to the
  input size, aspect not kept;
* ``"letterbox"``: one uniform scale so the whole (cropped) image fits, centred, the rest padded
  with the per-channel mean (0 after normalisation).

Box mapping is ``x_in = x_src * sx + pad_x`` (``y`` alike) with ``sx``/``sy`` the exact factors the
image was resized with, so ``to_source(to_input(b)) == b``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional, Sequence

import cv2
import numpy as np
import torch

from sim2sg_core.scene_graph import SceneGraph, SceneGraphError

Size = tuple[int, int]  # (width, height)

RESIZE_MODES = ("stretch", "letterbox")
#: Largest accepted ``crop_bottom`` (a fraction of the source rows).
MAX_CROP_BOTTOM = 0.9


@dataclass(frozen=True)
class ResizeGeometry:
    """How one source size maps into the input: ``x_in = x_src * sx + pad_x``, ``y_in = y_src * sy + pad_y``.

    ``content`` = (x0, y0, x1, y1) of the resized image inside the input (the rest is padding);
    ``kept_height`` = source rows kept after ``crop_bottom``.
    """

    source_size: Size
    input_size: Size
    sx: float
    sy: float
    pad_x: int
    pad_y: int
    content_size: Size
    kept_height: int

    @property
    def content(self) -> tuple[int, int, int, int]:
        return (self.pad_x, self.pad_y, self.pad_x + self.content_size[0], self.pad_y + self.content_size[1])

    def to_input(self, boxes):
        """xyxy boxes (numpy or torch, (N, 4)) in source pixels → input pixels (no clipping)."""
        if isinstance(boxes, torch.Tensor):
            return boxes * boxes.new_tensor([self.sx, self.sy, self.sx, self.sy]) + boxes.new_tensor(
                [self.pad_x, self.pad_y, self.pad_x, self.pad_y]
            )
        b = np.asarray(boxes, dtype=np.float64)
        return b * np.array([self.sx, self.sy, self.sx, self.sy]) + np.array([self.pad_x, self.pad_y] * 2, np.float64)

    def to_source(self, boxes, clip: bool = False):
        """xyxy boxes in input pixels → source pixels; ``clip`` limits them to the source image's
        kept rows (``[0, W] x [0, kept_height]``)."""
        if isinstance(boxes, torch.Tensor):
            out = (boxes - boxes.new_tensor([self.pad_x, self.pad_y, self.pad_x, self.pad_y])) / boxes.new_tensor(
                [self.sx, self.sy, self.sx, self.sy]
            )
            if clip:
                w, h = float(self.source_size[0]), float(self.kept_height)
                out = torch.stack(
                    [
                        out[..., 0].clamp(0, w),
                        out[..., 1].clamp(0, h),
                        out[..., 2].clamp(0, w),
                        out[..., 3].clamp(0, h),
                    ],
                    dim=-1,
                )
            return out
        b = np.asarray(boxes, dtype=np.float64)
        out = (b - np.array([self.pad_x, self.pad_y] * 2, np.float64)) / np.array([self.sx, self.sy, self.sx, self.sy])
        if clip:
            out = np.clip(out, 0.0, np.array([self.source_size[0], self.kept_height] * 2, np.float64))
        return out


@dataclass(frozen=True)
class ResizeSpec:
    """Source image → model input: ``input_size`` (width, height), ``mode`` and ``crop_bottom``.

    Letterbox geometry for a source ``W×H``: keep ``H' = H - round(H * crop_bottom)`` rows, scale
    ``s = min(W_in / W, H_in / H')``, content ``round(W s) × round(H' s)`` centred (padding
    ``(W_in - w) // 2`` left, ``(H_in - h) // 2`` top); the box factors are the exact resize factors
    ``w / W`` and ``h / H'``.
    """

    input_size: Size
    mode: str = "stretch"
    crop_bottom: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "input_size", (int(self.input_size[0]), int(self.input_size[1])))
        if self.mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {list(RESIZE_MODES)}, got {self.mode!r}")
        if not 0.0 <= float(self.crop_bottom) <= MAX_CROP_BOTTOM:
            raise ValueError(
                f"crop_bottom must be a fraction of the image rows in [0, {MAX_CROP_BOTTOM}], got {self.crop_bottom!r}"
            )
        object.__setattr__(self, "crop_bottom", float(self.crop_bottom))

    def geometry(self, source_size: Size) -> ResizeGeometry:
        W, H = int(source_size[0]), int(source_size[1])
        if W <= 0 or H <= 0:
            raise ValueError(f"source image size must be positive, got {W}x{H}")
        win, hin = self.input_size
        kept = H - int(round(H * self.crop_bottom)) if self.crop_bottom > 0 else H
        kept = max(kept, 1)
        if self.mode == "stretch":
            cw, ch, px, py = win, hin, 0, 0
        else:
            s = min(win / W, hin / kept)
            cw = min(max(int(round(W * s)), 1), win)
            ch = min(max(int(round(kept * s)), 1), hin)
            px, py = (win - cw) // 2, (hin - ch) // 2
        return ResizeGeometry(
            source_size=(W, H),
            input_size=(win, hin),
            sx=cw / W,
            sy=ch / kept,
            pad_x=px,
            pad_y=py,
            content_size=(cw, ch),
            kept_height=kept,
        )

    def content_size(self, source_size: Size) -> Size:
        """Size the (cropped) source is resized to inside the input."""
        return self.geometry(source_size).content_size

    def to_input(self, boxes, source_size: Size):
        return self.geometry(source_size).to_input(boxes)

    def to_source(self, boxes, source_size: Size, clip: bool = False):
        return self.geometry(source_size).to_source(boxes, clip=clip)

    def apply(self, image: np.ndarray, out: Optional[np.ndarray] = None) -> tuple[np.ndarray, ResizeGeometry]:
        """Resize one RGB uint8 image into the input canvas (``out``, H_in×W_in×3; padding left
        untouched); returns the canvas and the geometry."""
        h0, w0 = image.shape[:2]
        g = self.geometry((w0, h0))
        win, hin = self.input_size
        if out is None:
            out = np.zeros((hin, win, 3), np.uint8)
        src = image if g.kept_height == h0 else image[: g.kept_height]
        cw, ch = g.content_size
        x0, y0, x1, y1 = g.content
        out[y0:y1, x0:x1] = (
            src if src.shape[:2] == (ch, cw) else cv2.resize(src, (cw, ch), interpolation=cv2.INTER_AREA)
        )
        return out, g

    def label_boxes(self, boxes, source_size: Size):
        """Label boxes (source px) → input px, clipped to the kept rows when cropping; also returns
        the mask of boxes still at least 1 input pixel tall and wide (the others fell in the dropped band)."""
        g = self.geometry(source_size)
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if g.kept_height < g.source_size[1]:
            b = b.copy()
            b[:, 1] = np.clip(b[:, 1], None, g.kept_height)
            b[:, 3] = np.clip(b[:, 3], None, g.kept_height)
        out = g.to_input(b)
        keep = (
            np.ones(len(out), bool)
            if g.kept_height == g.source_size[1]
            else ((out[:, 3] - out[:, 1]) >= 1.0) & ((out[:, 2] - out[:, 0]) >= 1.0)
        )
        return out, keep


def check_image(rgb: np.ndarray, where: str = "image") -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        desc = f"{type(rgb).__name__} {getattr(rgb, 'shape', '')} {getattr(rgb, 'dtype', '')}"
        raise ValueError(f"{where} must be an RGB uint8 array of shape (H, W, 3), got {desc}")
    return rgb


def images_to_tensor(
    images: Sequence[np.ndarray],
    input_size: Size,
    mean: Sequence[float],
    std: Sequence[float],
    resize_mode: str = "stretch",
    crop_bottom: float = 0.0,
    channels_last: bool = True,
) -> torch.Tensor:
    """RGB uint8 images → normalised float tensor (B, 3, H_in, W_in) (see :class:`ResizeSpec`);
    letterbox padding is exactly 0 (the per-channel mean).

    The arithmetic is ``(pixel / 255 - mean) / std`` in float32, done by NumPy in one thread: the same
    bits as the torch expression, without torch's thread pool, which on a robot's few busy cores cost
    several times the work itself. ``channels_last`` (default) returns an NHWC-strided view (what torch
    convolutions take as is, an optimised model without a copy); otherwise contiguous NCHW (what ONNX
    Runtime reads)."""
    w, h = int(input_size[0]), int(input_size[1])
    if resize_mode == "stretch" and not crop_bottom:
        batch = np.empty((len(images), h, w, 3), dtype=np.uint8)
        for i, im in enumerate(images):
            check_image(im, f"image {i}")
            batch[i] = im if im.shape[:2] == (h, w) else cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA)
        pads = None
    else:
        spec = ResizeSpec((w, h), resize_mode, crop_bottom)
        batch = np.zeros((len(images), h, w, 3), dtype=np.uint8)
        pads = []
        for i, im in enumerate(images):
            check_image(im, f"image {i}")
            _, g = spec.apply(im, out=batch[i])
            pads.append(g.content)
    m, s = np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)
    if channels_last:
        x = np.divide(batch, np.float32(255.0), dtype=np.float32)
        x -= m
        x /= s
        planes = [x[..., c] for c in range(3)]
    else:
        x = np.empty((len(images), 3, h, w), dtype=np.float32)
        planes = [x[:, c] for c in range(3)]
        for c, plane in enumerate(planes):
            np.divide(batch[..., c], np.float32(255.0), out=plane, dtype=np.float32)
            plane -= m[c]
            plane /= s[c]
    if pads is not None:
        for i, (x0, y0, x1, y1) in enumerate(pads):
            if (x0, y0, x1, y1) != (0, 0, w, h):
                for plane in planes:
                    plane[i, :y0] = 0.0
                    plane[i, y1:] = 0.0
                    plane[i, :, :x0] = 0.0
                    plane[i, :, x1:] = 0.0
    t = torch.from_numpy(x)
    return t.permute(0, 3, 1, 2) if channels_last else t


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


def graph_to_target(
    graph: SceneGraph,
    input_size: Size,
    source_size: Optional[Size] = None,
    resize_mode: str = "stretch",
    crop_bottom: float = 0.0,
) -> dict:
    """A label SceneGraph → model target: ``boxes`` (input px), ``labels``, ``relations`` (R, 3: s, o, p).

    With ``crop_bottom`` boxes are clipped to the kept rows; objects entirely in the dropped band
    are removed (with their relationships).
    """
    src = source_size or graph_source_size(graph)
    boxes = np.array([o.box for o in graph.objects], dtype=np.float32).reshape(-1, 4)
    labels = np.array([o.class_id for o in graph.objects], dtype=np.int64)
    rels = np.array([(r.subject, r.object, r.predicate_id) for r in graph.relationships], dtype=np.int64).reshape(-1, 3)
    if resize_mode == "stretch" and not crop_bottom:
        boxes = scale_boxes(boxes, src, input_size).astype(np.float32)
    else:
        mapped, keep = ResizeSpec(input_size, resize_mode, crop_bottom).label_boxes(boxes, src)
        boxes = mapped.astype(np.float32)
        if not keep.all():
            remap = -np.ones(len(keep), np.int64)
            remap[keep] = np.arange(int(keep.sum()))
            boxes, labels = boxes[keep], labels[keep]
            if len(rels):
                rels = rels[keep[rels[:, 0]] & keep[rels[:, 1]]]
                rels = np.stack([remap[rels[:, 0]], remap[rels[:, 1]], rels[:, 2]], axis=1).reshape(-1, 3)
    return {
        "boxes": torch.from_numpy(np.ascontiguousarray(boxes)),
        "labels": torch.from_numpy(labels),
        "relations": torch.from_numpy(np.ascontiguousarray(rels, dtype=np.int64)),
    }


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
    ignore = [
        dataclasses.replace(g, box=(w - g.box[2], g.box[1], w - g.box[0], g.box[3])) for g in graph.ignore_regions
    ]
    return np.ascontiguousarray(rgb[:, ::-1]), dataclasses.replace(
        graph, objects=objs, relationships=rels, ignore_regions=ignore
    )


class Collator:
    """DataLoader collate_fn: (rgb, SceneGraph | None) items → model batch (runs in the workers).

    Returns ``{"images": (B,3,H,W), "targets": [dict | None], "graphs": [...], "source_sizes": [...]}``;
    a None graph marks an unlabelled image (its target is None and it adds no supervised loss).
    """

    def __init__(
        self,
        input_size: Size,
        mean: Sequence[float],
        std: Sequence[float],
        hflip: bool = False,
        predicates: Sequence[str] = (),
        resize_mode: str = "stretch",
        crop_bottom: float = 0.0,
    ):
        self.input_size, self.mean, self.std = tuple(input_size), tuple(mean), tuple(std)
        self.hflip, self.predicates = hflip, tuple(predicates)
        ResizeSpec(input_size, resize_mode, crop_bottom)  # validates
        self.resize_mode, self.crop_bottom = resize_mode, float(crop_bottom)

    def __call__(self, items):
        images, targets, graphs, sizes = [], [], [], []
        for rgb, graph in items:
            if self.hflip and graph is not None and torch.rand(()) < 0.5:
                rgb, graph = hflip_sample(rgb, graph, self.predicates)
            src = (int(rgb.shape[1]), int(rgb.shape[0]))
            images.append(rgb)
            graphs.append(graph)
            sizes.append(src)
            targets.append(
                None
                if graph is None
                else graph_to_target(graph, self.input_size, src, self.resize_mode, self.crop_bottom)
            )
        return {
            "images": images_to_tensor(
                images, self.input_size, self.mean, self.std, self.resize_mode, self.crop_bottom
            ),
            "targets": targets,
            "graphs": graphs,
            "source_sizes": sizes,
        }
