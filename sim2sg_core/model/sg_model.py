"""SGModel: encoder φ → Z → heads h (CenterNet detection + relationship head).

The pieces are exposed separately because domain adaptation (sim2sg_core/adapt) attaches
discriminators to Z (``encode``) and to the predictions (``heads``/``infer_relations``) and adds
its own losses next to ``compute_losses``.

Mixed batches: ``targets`` is a list with one entry per image; ``None`` marks an unlabelled image,
which is skipped by every supervised loss (its features still flow through ``outputs``).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import box_iou

from sim2sg_core.model.detector import CenterNetHead, decode_detections, dense_targets, detection_losses
from sim2sg_core.model.encoder import build_encoder
from sim2sg_core.model.preprocess import ResizeSpec, graph_to_target
from sim2sg_core.model.relations import RelationHead, candidate_pairs, pack_pairs
from sim2sg_core.scene_graph import SceneGraph, Vocabulary
from sim2sg_core.utils.distributed import mean_over_ranks
from sim2sg_core.utils.device import torch_threads

#: Bumped whenever the architecture or the meaning of its outputs changes (checked on load).
MODEL_VERSION = "sgmodel-1"

LOSS_NAMES = ("heatmap", "size", "offset", "relation")


class SGModel(nn.Module):
    """Scene-graph network. Boxes inside the model are xyxy in *input* pixels."""

    subject_mask: torch.Tensor  # (num_classes,) bool buffer: classes that may be a relationship's subject

    def __init__(
        self,
        num_classes: int,
        num_predicates: int,
        subject_mask: Optional[Sequence[bool]] = None,
        input_size: tuple[int, int] = (480, 144),
        encoder: str = "small",
        encoder_channels: Sequence[int] = (16, 32, 64, 96, 128),
        feature_channels: int = 64,
        encoder_weights: str = "",
        encoder_pretrained: bool = True,
        encoder_freeze=0,
        head_channels: int = 64,
        relation_roi_size: int = 4,
        relation_hidden: int = 256,
        nms_iou: float = 0.6,
        max_objects: int = 50,
        loss_weights: Optional[dict] = None,
        relation_jitter: float = 0.08,
        relation_on_detections: bool = True,
        max_pairs_per_image: int = 128,
        max_relation_objects: int = 24,
        resize_mode: str = "stretch",
        crop_bottom: float = 0.0,
    ):
        super().__init__()
        #: How source images become the input (preprocessing, not weights): see preprocess.ResizeSpec.
        spec = ResizeSpec((int(input_size[0]), int(input_size[1])), resize_mode, crop_bottom)
        self.resize_mode, self.crop_bottom = spec.mode, spec.crop_bottom
        self.num_classes, self.num_predicates = int(num_classes), int(num_predicates)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.encoder = build_encoder(
            encoder,
            encoder_channels,
            feature_channels,
            encoder_weights,
            pretrained=encoder_pretrained,
            freeze=encoder_freeze,
        )
        self.stride = self.encoder.output_stride
        self.detector = CenterNetHead(self.encoder.out_channels, self.num_classes, head_channels)
        self.relations = RelationHead(
            self.encoder.out_channels,
            self.num_classes,
            self.num_predicates,
            roi_size=relation_roi_size,
            hidden=relation_hidden,
            stride=self.stride,
        )
        mask = [True] * self.num_classes if subject_mask is None else [bool(m) for m in subject_mask]
        if len(mask) != self.num_classes:
            raise ValueError(f"subject_mask has {len(mask)} entries for {self.num_classes} classes")
        self.register_buffer("subject_mask", torch.tensor(mask, dtype=torch.bool), persistent=False)
        self.nms_iou, self.max_objects = float(nms_iou), int(max_objects)
        self.loss_weights = {k: 1.0 for k in LOSS_NAMES}
        self.loss_weights.update(loss_weights or {})
        self.relation_jitter = float(relation_jitter)
        self.relation_on_detections = bool(relation_on_detections)
        self.max_pairs_per_image = int(max_pairs_per_image)
        self.max_relation_objects = int(max_relation_objects)

    @classmethod
    def from_config(cls, cfg, vocab: Vocabulary, pretrained: Optional[bool] = None) -> "SGModel":
        """Build from an ExperimentConfig (or a bare ModelConfig) for ``vocab``.

        ``pretrained=False`` skips loading the encoder's ImageNet weights (e.g. when a checkpoint's
        weights are loaded next); None follows the config's ``encoder_pretrained``.
        """
        m = getattr(cfg, "model", cfg)
        t = getattr(cfg, "train", None)
        kw = {}
        if t is not None:
            kw = dict(
                loss_weights={
                    "heatmap": t.heatmap_weight,
                    "size": t.size_weight,
                    "offset": t.offset_weight,
                    "relation": t.relation_weight,
                },
                relation_jitter=t.relation_jitter,
                relation_on_detections=t.relation_on_detections,
                max_pairs_per_image=t.max_pairs_per_image,
            )
        return cls(
            num_classes=len(vocab.classes),
            num_predicates=len(vocab.predicates),
            subject_mask=vocab.subject_mask,
            input_size=(m.input_width, m.input_height),
            encoder=m.encoder,
            encoder_channels=tuple(m.encoder_channels),
            feature_channels=m.feature_channels,
            encoder_weights=m.encoder_weights,
            encoder_pretrained=getattr(m, "encoder_pretrained", True) if pretrained is None else pretrained,
            encoder_freeze=getattr(m, "encoder_freeze", 0),
            head_channels=m.head_channels,
            relation_roi_size=m.relation_roi_size,
            relation_hidden=m.relation_hidden,
            nms_iou=m.nms_iou,
            max_objects=m.max_objects,
            resize_mode=getattr(m, "resize_mode", "stretch"),
            crop_bottom=getattr(m, "crop_bottom", 0.0),
            **kw,
        )

    # -- the network --------------------------------------------------------------------------
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """φ: normalised images (B,3,H,W) → Z (B,C,H/4,W/4)."""
        return self.encoder(images)

    def heads(self, features: torch.Tensor) -> dict:
        """Detection head on Z: ``heatmap`` logits, ``size`` (log w,h in cells), ``offset``."""
        return self.detector(features)

    def forward(self, images: torch.Tensor, targets: Optional[Sequence[Optional[dict]]] = None) -> dict:
        z = self.encode(images)
        out = self.heads(z)
        out["features"] = z
        out["image_size"] = (int(images.shape[-1]), int(images.shape[-2]))
        if targets is not None:
            out["losses"] = self.compute_losses(out, targets)
        return out

    # -- training -----------------------------------------------------------------------------
    def build_targets(self, graphs: Sequence[Optional[SceneGraph]], source_sizes=None) -> list:
        """Label SceneGraphs (source pixels) → targets for ``forward``/``compute_losses``; None stays None."""
        targets = []
        for i, g in enumerate(graphs):
            src = source_sizes[i] if source_sizes is not None else None
            targets.append(
                None if g is None else graph_to_target(g, self.input_size, src, self.resize_mode, self.crop_bottom)
            )
        return targets

    def compute_losses(self, outputs: dict, targets: Sequence[Optional[dict]]) -> dict:
        """Named weighted scalar losses over the labelled images of the batch ({} if none is labelled)."""
        if len(targets) != outputs["heatmap"].shape[0]:
            raise ValueError(f"got {len(targets)} targets for a batch of {outputs['heatmap'].shape[0]} images")
        labelled = [i for i, t in enumerate(targets) if t is not None]
        if not labelled:
            return {}
        dev = outputs["heatmap"].device
        tg = [{k: v.to(dev) for k, v in t.items()} for t in targets if t is not None]  # the `labelled` ones
        _, c, h, w = outputs["heatmap"].shape
        dense = [dense_targets(t["boxes"], t["labels"], c, h, w, self.stride) for t in tg]
        sel = torch.tensor(labelled, device=dev)
        det_out = {k: outputs[k].index_select(0, sel) for k in ("heatmap", "size", "offset")}
        losses = detection_losses(det_out, dense)
        image_size = outputs.get("image_size", (w * self.stride, h * self.stride))
        feats = outputs["features"].index_select(0, sel)
        logits, labels = self._relation_training_logits(feats, det_out, tg, image_size)
        outputs["relation_logits"], outputs["relation_labels"] = logits, labels
        # mean over the joint batch's pairs under torchrun (a plain mean otherwise)
        n_pairs = mean_over_ranks(float(len(labels)), logits).clamp(min=1.0)
        losses["relation"] = (
            F.cross_entropy(logits.float(), labels, reduction="sum") / n_pairs if len(labels) else logits.sum() * 0.0
        )
        return {k: v * self.loss_weights.get(k, 1.0) for k, v in losses.items()}

    def _jitter(self, boxes: torch.Tensor, image_size) -> torch.Tensor:
        wh = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
        b = boxes + torch.randn_like(boxes) * self.relation_jitter * wh
        b[:, 0::2] = b[:, 0::2].clamp(0, image_size[0])
        b[:, 1::2] = b[:, 1::2].clamp(0, image_size[1])
        b[:, 2:] = torch.maximum(b[:, 2:], b[:, :2] + 1.0)
        return b

    def _relation_training_logits(self, z, det_out, targets, image_size):
        """Relation head on GT pairs (jittered GT boxes) and on detected boxes matched to GT objects."""
        dets = None
        if self.relation_on_detections:
            dets = decode_detections(
                det_out["heatmap"].detach(),
                det_out["size"].detach(),
                det_out["offset"].detach(),
                self.stride,
                score_threshold=0.2,
                max_objects=self.max_objects,
                nms_iou=self.nms_iou,
                image_size=image_size,
            )
        boxes, labels, pairs, plabels = [], [], [], []
        for i, t in enumerate(targets):
            rel = t["relations"]
            gt_boxes = t["boxes"]
            b_list, l_list, p_list, y_list = [], [], [], []
            if len(rel):
                b_list.append(self._jitter(gt_boxes, image_size) if self.training else gt_boxes)
                l_list.append(t["labels"])
                p_list.append(rel[:, :2])
                y_list.append(rel[:, 2])
            if dets is not None and len(rel) and len(dets[i]["boxes"]):
                d = dets[i]
                iou = box_iou(gt_boxes, d["boxes"])  # (G, D)
                best_iou, best_det = iou.max(dim=1)
                ok = best_iou >= 0.5
                keep = ok[rel[:, 0]] & ok[rel[:, 1]] & (best_det[rel[:, 0]] != best_det[rel[:, 1]])
                if keep.any():
                    offset = sum(len(b) for b in b_list)
                    b_list.append(d["boxes"])
                    l_list.append(d["labels"])
                    r = rel[keep]
                    p_list.append(torch.stack([best_det[r[:, 0]], best_det[r[:, 1]]], 1) + offset)
                    y_list.append(r[:, 2])
            if b_list:
                pb, yb = torch.cat(p_list), torch.cat(y_list)
                if len(pb) > self.max_pairs_per_image:
                    pick = torch.randperm(len(pb), device=pb.device)[: self.max_pairs_per_image]
                    pb, yb = pb[pick], yb[pick]
                boxes.append(torch.cat(b_list))
                labels.append(torch.cat(l_list))
                pairs.append(pb)
                plabels.append(yb)
            else:
                boxes.append(gt_boxes)
                labels.append(t["labels"])
                pairs.append(torch.zeros(0, 2, dtype=torch.long, device=gt_boxes.device))
                plabels.append(torch.zeros(0, dtype=torch.long, device=gt_boxes.device))
        logits = self.relations(z, boxes, labels, pairs, image_size)
        return logits, torch.cat(plabels)

    # -- inference ----------------------------------------------------------------------------
    def decode(
        self,
        outputs: dict,
        score_threshold: float = 0.3,
        max_objects: Optional[int] = None,
        nms_iou: Optional[float] = None,
    ) -> list[dict]:
        """Per-image detections ``{"boxes" (input px), "scores", "labels"}`` from ``forward``/``heads`` output."""
        image_size = outputs.get("image_size")
        if image_size is None:
            h, w = outputs["heatmap"].shape[-2:]
            image_size = (w * self.stride, h * self.stride)
        return decode_detections(
            outputs["heatmap"],
            outputs["size"],
            outputs["offset"],
            self.stride,
            score_threshold=score_threshold,
            max_objects=max_objects or self.max_objects,
            nms_iou=self.nms_iou if nms_iou is None else nms_iou,
            image_size=image_size,
        )

    def infer_relations(self, features: torch.Tensor, detections: Sequence[dict], image_size) -> list[dict]:
        """Predicate logits for every allowed ordered pair among the (top-scoring) detections of each image.

        Differentiable w.r.t. ``features`` (prediction alignment can use the logits).
        Returns per image ``{"pairs": (M,2) indices into detections, "logits": (M,P)}``.
        """
        boxes, labels, pairs = [], [], []
        for d in detections:
            n = min(len(d["labels"]), self.max_relation_objects)  # detections are sorted by score
            boxes.append(d["boxes"])
            labels.append(d["labels"])
            pairs.append(candidate_pairs(d["labels"][:n], self.subject_mask))
        logits = self.relations(features, boxes, labels, pairs, image_size)
        out, k = [], 0
        for p in pairs:
            out.append({"pairs": p, "logits": logits[k : k + len(p)]})
            k += len(p)
        return out

    @torch.no_grad()
    def predict(
        self,
        images: torch.Tensor,
        score_threshold: float = 0.3,
        relation_threshold: float = 0.0,
        max_objects: Optional[int] = None,
    ) -> list[dict]:
        """Normalised images → per image detections plus relationships (input pixels).

        Relationship score = P(predicate | pair) · score(subject) · score(object): the triplet
        confidence used to rank triplets for Recall@K. One predicate (the arg-max) per pair.
        """
        out = self.forward(images)
        return postprocess(
            out,
            self.relations.score,
            stride=self.stride,
            nms_iou=self.nms_iou,
            max_objects=max_objects or self.max_objects,
            max_relation_objects=self.max_relation_objects,
            subject_mask=self.subject_mask,
            num_predicates=self.num_predicates,
            score_threshold=score_threshold,
            relation_threshold=relation_threshold,
        )


def postprocess(
    outputs: dict,
    score_pairs,
    *,
    stride: int,
    nms_iou: float,
    max_objects: int,
    max_relation_objects: int,
    subject_mask: torch.Tensor,
    num_predicates: int,
    score_threshold: float = 0.3,
    relation_threshold: float = 0.0,
) -> list[dict]:
    """Raw head outputs (``heatmap``, ``size``, ``offset``, ``features``, ``image_size``) → per image
    detections plus scored relationships: peak extraction, NMS, candidate pairs, pair scoring with
    ``score_pairs(features, rois, geometry, subj_labels, obj_labels) -> logits`` (the torch relation
    head, or an exported one), ranking. One code path for every backend."""
    with torch_threads(1):  # tiny tensors: see torch_threads
        image_size = outputs.get("image_size")
        if image_size is None:
            h, w = outputs["heatmap"].shape[-2:]
            image_size = (w * stride, h * stride)
        dets = decode_detections(
            outputs["heatmap"],
            outputs["size"],
            outputs["offset"],
            stride,
            score_threshold=score_threshold,
            max_objects=max_objects,
            nms_iou=nms_iou,
            image_size=image_size,
        )
        pairs = [
            candidate_pairs(d["labels"][: min(len(d["labels"]), max_relation_objects)], subject_mask) for d in dets
        ]
        features = outputs["features"]
        packed = pack_pairs(
            [d["boxes"] for d in dets], [d["labels"] for d in dets], pairs, image_size, features.dtype, features.device
        )
        logits = features.new_zeros(0, num_predicates) if packed is None else score_pairs(features, *packed)
        results, k = [], 0
        for d, p in zip(dets, pairs):
            prob = logits[k : k + len(p)].float().softmax(-1)
            k += len(p)
            p_score, p_id = prob.max(-1) if len(prob) else (prob.new_zeros(0), prob.new_zeros(0, dtype=torch.long))
            score = p_score * d["scores"][p[:, 0]] * d["scores"][p[:, 1]]
            keep = score >= relation_threshold
            order = score[keep].argsort(descending=True)
            results.append(
                {
                    **d,
                    "rel_pairs": p[keep][order],
                    "rel_predicates": p_id[keep][order],
                    "rel_scores": score[keep][order],
                    "rel_probs": prob[keep][order],
                }
            )
        return results
