"""Predictor: RGB uint8 images in, SceneGraphs (source-image pixels) out. What the ROS node calls.

Thread safety: ``predict`` holds a per-instance lock and reads the thresholds once per call, so a
worker thread may keep calling one Predictor while another thread builds a new one and swaps the
reference; the old instance finishes its call untouched.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from sim2sg_core.model.checkpoint import load_checkpoint, model_from_checkpoint
from sim2sg_core.model.inference import optimize_for_inference
from sim2sg_core.model.onnx_backend import OnnxModelError, OnnxSGModel, export_onnx
from sim2sg_core.model.preprocess import ResizeSpec, images_to_tensor, scale_boxes
from sim2sg_core.model.sg_model import SGModel
from sim2sg_core.scene_graph import Relationship, SceneGraph, SceneObject, Vocabulary
from sim2sg_core.utils.device import autocast_context, resolve_device

#: Inference backends: ``auto`` = by the model file's suffix.
BACKENDS = ("auto", "torch", "onnxruntime")


class Predictor:
    """Batched scene-graph inference for one model; thresholds may be changed between calls.

    ``resize_mode`` / ``crop_bottom`` are the model's preprocessing (see
    :class:`sim2sg_core.model.preprocess.ResizeSpec`; stored in checkpoints). Predictions are mapped
    back to each image's own pixels; with letterbox or a bottom crop they are clipped to the image's
    kept rows and boxes left empty by that are dropped.

    ``optimize`` rewrites ``model`` in place for inference (BatchNorm folded, channels-last): only for a
    model nothing trains any more. :meth:`from_checkpoint` owns its model and optimises by default.
    """

    def __init__(
        self,
        model: "SGModel | OnnxSGModel",
        vocab: Vocabulary,
        input_size: tuple[int, int],
        mean: Sequence[float],
        std: Sequence[float],
        device: str = "auto",
        model_id: str = "",
        score_threshold: float = 0.3,
        relation_threshold: float = 0.0,
        max_objects: int = 50,
        batch_size: int = 8,
        amp: bool = True,
        resize_mode: str = "stretch",
        crop_bottom: float = 0.0,
        optimize: bool = False,
    ):
        if len(vocab.classes) != model.num_classes or len(vocab.predicates) != model.num_predicates:
            raise ValueError(
                f"vocabulary ({len(vocab.classes)} classes, {len(vocab.predicates)} predicates) does not "
                f"fit the model ({model.num_classes} classes, {model.num_predicates} predicates)"
            )
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.optimized = bool(optimize) and isinstance(model, SGModel)  # an ONNX graph comes folded already
        self.backend = "torch" if isinstance(model, SGModel) else "onnxruntime"
        # the model is ours alone: fold BatchNorm, channels-last (see model/inference.py)
        if self.optimized and isinstance(self.model, SGModel):
            optimize_for_inference(self.model)
        self.vocab, self.model_id = vocab, model_id
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.mean, self.std = tuple(mean), tuple(std)
        self.score_threshold, self.relation_threshold = float(score_threshold), float(relation_threshold)
        self.max_objects, self.batch_size, self.amp = int(max_objects), int(batch_size), bool(amp)
        spec = ResizeSpec(self.input_size, resize_mode, crop_bottom)  # validates both
        self.resize_mode, self.crop_bottom = spec.mode, spec.crop_bottom
        self._lock = threading.Lock()

    @property
    def resize(self) -> ResizeSpec:
        """The preprocessing geometry at the current ``input_size`` (which callers may change)."""
        return ResizeSpec(self.input_size, self.resize_mode, self.crop_bottom)

    @classmethod
    def from_checkpoint(
        cls,
        path,
        device: str = "auto",
        expect_vocab: Optional[Vocabulary] = None,
        backend: str = "auto",
        threads: int = 0,
        **kwargs,
    ) -> "Predictor":
        """A Predictor for ``path`` (a ``.pt`` checkpoint or an exported ``.onnx`` graph).

        ``backend``: ``auto`` picks by the file (``.onnx`` → ONNX Runtime, else torch); ``torch`` needs a
        checkpoint; ``onnxruntime`` runs an ``.onnx`` file as is and exports a checkpoint to a temporary
        graph first (the session holds the graph in memory; nothing is left on disk). ``threads``: ONNX
        Runtime's intra-op threads (0 = its default); torch's are process-wide (``torch.set_num_threads``).
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
        is_onnx = str(path).endswith(".onnx")
        if is_onnx and backend == "torch":
            raise ValueError(
                f"{path} is an exported ONNX graph, which only the onnxruntime backend runs; "
                "pass the .pt checkpoint it came from for the torch backend"
            )
        if is_onnx:
            return cls.from_onnx(path, device=device, expect_vocab=expect_vocab, threads=threads, **kwargs)
        if backend == "onnxruntime":
            with tempfile.TemporaryDirectory(prefix="sim2sg-onnx-") as tmp:
                main, _ = export_onnx(path, Path(tmp) / "model.onnx")
                return cls.from_onnx(main, device=device, expect_vocab=expect_vocab, threads=threads, **kwargs)
        ck = load_checkpoint(path, expect_vocab=expect_vocab)
        kwargs.setdefault("resize_mode", ck.get("resize_mode", "stretch"))
        kwargs.setdefault("crop_bottom", ck.get("crop_bottom", 0.0))
        kwargs.setdefault("optimize", True)
        return cls(
            model_from_checkpoint(ck),
            ck["vocab"],
            tuple(ck["input_size"]),
            ck["mean"],
            ck["std"],
            device=device,
            model_id=ck["model_id"],
            **kwargs,
        )

    @classmethod
    def from_onnx(
        cls, path, device: str = "auto", expect_vocab: Optional[Vocabulary] = None, threads: int = 0, **kwargs
    ) -> "Predictor":
        """A Predictor over an exported model (``python -m sim2sg_core export``) run by ONNX Runtime
        (CUDA when its provider is present and ``device`` allows, else CPU); same outputs as the
        checkpoint it came from. :meth:`from_checkpoint` comes here for ``.onnx`` paths."""
        model = OnnxSGModel(path, device="cpu" if device == "cpu" else "auto", threads=threads)
        if expect_vocab is not None and model.vocab != expect_vocab:
            raise OnnxModelError(
                f"ONNX model {path} was exported for classes {list(model.vocab.classes)}, "
                f"expected {list(expect_vocab.classes)}"
            )
        m = model.meta
        kwargs.pop("optimize", None)
        kwargs.setdefault("resize_mode", m["resize_mode"])
        kwargs.setdefault("crop_bottom", m["crop_bottom"])
        return cls(
            model,
            model.vocab,
            tuple(m["input_size"]),
            m["mean"],
            m["std"],
            device="cpu",
            model_id=m["model_id"],
            **kwargs,
        )

    def autocast(self):
        """The mixed-precision context this predictor runs its model under (bfloat16 autocast on CUDA
        when ``amp``, else a no-op): :func:`sim2sg_core.utils.device.autocast_context`."""
        return autocast_context(self.device, self.amp)

    def predict(self, images: Sequence[np.ndarray], all_predicates: bool = False) -> list[SceneGraph]:
        """One SceneGraph per image (boxes in that image's pixels), in input order.

        ``all_predicates``: one relationship per predicate of each scored pair (score = P(predicate |
        pair) · both object scores), not only the arg-max: what Recall@K without graph constraint
        ranks (evaluation)."""
        score_t, rel_t, max_obj = self.score_threshold, self.relation_threshold, self.max_objects
        images = list(images)
        graphs: list[SceneGraph] = []
        with self._lock:
            for start in range(0, len(images), self.batch_size):
                chunk = images[start : start + self.batch_size]
                x = images_to_tensor(
                    chunk,
                    self.input_size,
                    self.mean,
                    self.std,
                    self.resize_mode,
                    self.crop_bottom,
                    channels_last=self.backend == "torch",
                ).to(self.device)  # (.to keeps the channels-last strides an optimised model reads)
                with torch.inference_mode(), self.autocast():
                    results = self.model.predict(
                        x, score_threshold=score_t, relation_threshold=rel_t, max_objects=max_obj
                    )
                graphs.extend(self._to_graph(r, im, all_predicates) for r, im in zip(results, chunk))
        return graphs

    def _to_graph(self, r: dict, image: np.ndarray, all_predicates: bool = False) -> SceneGraph:
        h, w = image.shape[:2]
        scores, labels = r["scores"].float().cpu().numpy(), r["labels"].cpu().numpy()
        pairs = r["rel_pairs"].cpu().numpy().reshape(-1, 2)
        preds, rscores = r["rel_predicates"].cpu().numpy(), r["rel_scores"].float().cpu().numpy()
        if all_predicates and len(pairs):  # every predicate of every pair, in pair order then predicate order
            probs = r["rel_probs"].float().cpu().numpy().reshape(len(pairs), -1)
            pair_score = scores[pairs[:, 0]] * scores[pairs[:, 1]]
            n_pred = probs.shape[1]
            rscores = (probs * pair_score[:, None]).reshape(-1)
            preds = np.tile(np.arange(n_pred), len(pairs))
            pairs = np.repeat(pairs, n_pred, axis=0)
        if self.resize_mode == "stretch" and not self.crop_bottom:
            boxes = scale_boxes(r["boxes"].float().cpu().numpy(), self.input_size, (w, h))
        else:
            boxes = self.resize.to_source(r["boxes"].float().cpu().numpy().reshape(-1, 4), (w, h), clip=True)
            keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            if not keep.all():  # entirely in the padding / the cropped band
                remap = np.cumsum(keep) - 1
                boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
                ok = keep[pairs[:, 0]] & keep[pairs[:, 1]] if len(pairs) else np.zeros(0, bool)
                pairs, preds, rscores = remap[pairs[ok]].reshape(-1, 2), preds[ok], rscores[ok]
        objects = [
            SceneObject(
                class_name=self.vocab.classes[int(c)],
                class_id=int(c),
                box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                score=float(s),
            )
            for b, s, c in zip(boxes, scores, labels)
        ]
        rels = [
            Relationship(
                subject=int(p[0]),
                object=int(p[1]),
                predicate=self.vocab.predicates[int(k)],
                predicate_id=int(k),
                score=float(s),
            )
            for p, k, s in zip(pairs, preds, rscores)
        ]
        return SceneGraph(
            objects=objects, relationships=rels, image_width=int(w), image_height=int(h), model_id=self.model_id
        )
