"""Relationship head: (subject box, object box) → predicate logits.

Our predicates (front/left/right/behind) are defined on ground-plane positions, which a pinhole
camera over a flat ground maps to image geometry: the bottom edge y of a box encodes its depth and
its centre x (relative to depth) its lateral offset. So the head combines appearance features
(``roi_align`` of Z on subject, object and union boxes) with a rich geometric encoding of the pair
and the class embeddings of both ends.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn
from torchvision.ops import box_iou, roi_align

#: Size of the per-pair geometric encoding (see ``pair_geometry``).
GEOMETRY_DIM = 2 * 11 + 8


def _box_terms(b: torch.Tensor, w: float, h: float) -> torch.Tensor:
    x1, y1, x2, y2 = b[:, 0] / w, b[:, 1] / h, b[:, 2] / w, b[:, 3] / h
    bw, bh = (x2 - x1).clamp(min=1e-3), (y2 - y1).clamp(min=1e-3)
    cx = (x1 + x2) / 2
    # Depth ~ 1/box height and lateral offset ~ (cx - 0.5)/box height for objects of one class.
    lateral = ((cx - 0.5) / bh).clamp(-20, 20) / 10
    return torch.stack([x1, y1, x2, y2, cx, bw, bh, bw.log(), bh.log(), lateral, (1 - y2).clamp(min=1e-3).log()], 1)


def pair_geometry(subj: torch.Tensor, obj: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Normalised geometry of each (subject, object) box pair (boxes in input pixels), (N, GEOMETRY_DIM)."""
    w, h = float(image_size[0]), float(image_size[1])
    s, o = _box_terms(subj, w, h), _box_terms(obj, w, h)
    iou = box_iou(subj, obj).diagonal() if len(subj) else subj.new_zeros(0)
    pair = torch.stack(
        [
            s[:, 4] - o[:, 4],
            s[:, 3] - o[:, 3],
            s[:, 1] - o[:, 1],
            s[:, 7] - o[:, 7],
            s[:, 8] - o[:, 8],
            s[:, 9] - o[:, 9],
            s[:, 10] - o[:, 10],
            iou,
        ],
        1,
    )
    return torch.cat([s, o, pair], 1)


def union_boxes(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.minimum(a[:, :2], b[:, :2]), torch.maximum(a[:, 2:], b[:, 2:])], 1)


class RelationHead(nn.Module):
    """Predicate logits for ordered box pairs of each image."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        num_predicates: int,
        roi_size: int = 4,
        hidden: int = 256,
        stride: int = 4,
    ):
        super().__init__()
        self.roi_size, self.stride, self.num_classes = roi_size, stride, num_classes
        roi_dim = in_channels * roi_size * roi_size
        self.appearance = nn.Sequential(nn.Linear(roi_dim, 128), nn.ReLU(inplace=True))
        self.geometry = nn.Sequential(
            nn.Linear(GEOMETRY_DIM, 128), nn.ReLU(inplace=True), nn.Linear(128, 128), nn.ReLU(inplace=True)
        )
        self.class_embed = nn.Embedding(num_classes, 16)
        self.classifier = nn.Sequential(
            nn.Linear(3 * 128 + 128 + 2 * 16, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_predicates),
        )

    def forward(
        self,
        features: torch.Tensor,
        boxes: Sequence[torch.Tensor],
        labels: Sequence[torch.Tensor],
        pairs: Sequence[torch.Tensor],
        image_size: tuple[int, int],
    ) -> torch.Tensor:
        """Logits (sum of pairs over the batch, P) for ``pairs[i]`` (M_i, 2) indexing ``boxes[i]``."""
        packed = pack_pairs(boxes, labels, pairs, image_size, features.dtype, features.device)
        if packed is None:  # no pair: still run the head on nothing, so every parameter gets a (zero)
            # gradient -- data-parallel ranks must agree on which parameters a step used
            long = torch.zeros(0, dtype=torch.long, device=features.device)
            packed = (features.new_zeros(0, 5), features.new_zeros(0, GEOMETRY_DIM, dtype=torch.float32), long, long)
        return self.score(features, *packed)

    def score(
        self,
        features: torch.Tensor,
        rois: torch.Tensor,
        geometry: torch.Tensor,
        subj_labels: torch.Tensor,
        obj_labels: torch.Tensor,
    ) -> torch.Tensor:
        """The learnt part on packed pairs (see :func:`pack_pairs`): what an exported relation graph holds."""
        n = subj_labels.shape[0]
        pooled = roi_align(
            features, rois, output_size=self.roi_size, spatial_scale=1.0 / self.stride, sampling_ratio=2, aligned=True
        )
        app = self.appearance(pooled.flatten(1))
        geo = self.geometry(geometry.to(app.dtype))
        cls = torch.cat([self.class_embed(subj_labels), self.class_embed(obj_labels)], 1)
        x = torch.cat([app[:n], app[n : 2 * n], app[2 * n :], geo, cls.to(app.dtype)], 1)
        return self.classifier(x)


def pack_pairs(
    boxes: Sequence[torch.Tensor],
    labels: Sequence[torch.Tensor],
    pairs: Sequence[torch.Tensor],
    image_size: tuple[int, int],
    dtype: torch.dtype,
    device,
) -> Optional[tuple[torch.Tensor, ...]]:
    """Per-image pairs → one batch for :meth:`RelationHead.score`: ``rois`` (3M, 5) = (image index,
    box) for the subjects, then the objects, then their unions; ``geometry`` (M, GEOMETRY_DIM)
    float32; subject and object labels (M,). None when no image has a pair."""
    subj_boxes, obj_boxes, subj_lab, obj_lab, batch_idx = [], [], [], [], []
    for i, (b, lab, p) in enumerate(zip(boxes, labels, pairs)):
        if len(p) == 0:
            continue
        subj_boxes.append(b[p[:, 0]])
        obj_boxes.append(b[p[:, 1]])
        subj_lab.append(lab[p[:, 0]])
        obj_lab.append(lab[p[:, 1]])
        batch_idx.append(torch.full((len(p),), i, dtype=dtype, device=device))
    if not subj_boxes:
        return None
    sb, ob = torch.cat(subj_boxes).to(dtype), torch.cat(obj_boxes).to(dtype)
    bi = torch.cat(batch_idx)[:, None]
    rois = torch.cat([torch.cat([bi, sb], 1), torch.cat([bi, ob], 1), torch.cat([bi, union_boxes(sb, ob)], 1)])
    geometry = pair_geometry(sb.float(), ob.float(), image_size)
    return rois, geometry, torch.cat(subj_lab), torch.cat(obj_lab)


def candidate_pairs(labels: torch.Tensor, subject_mask: torch.Tensor) -> torch.Tensor:
    """All ordered pairs (s, o), s != o, whose subject class may be a subject: (M, 2) long."""
    n = len(labels)
    if n < 2:
        return torch.zeros(0, 2, dtype=torch.long, device=labels.device)
    s, o = torch.meshgrid(torch.arange(n, device=labels.device), torch.arange(n, device=labels.device), indexing="ij")
    s, o = s.reshape(-1), o.reshape(-1)
    keep = (s != o) & subject_mask.to(labels.device)[labels[s]]
    return torch.stack([s[keep], o[keep]], 1)
