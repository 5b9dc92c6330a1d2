"""ONNX export and an ONNX Runtime backend with the same post-processing as the torch model.

``export_onnx(checkpoint, out)`` writes two graphs, each atomically:

* ``out`` (e.g. ``model.onnx``): normalised images (dynamic batch) → ``heatmap``, ``size``,
  ``offset``, ``features`` (the encoder and detection heads, BatchNorm folded, TF-'SAME' padding fixed
  for the input size so that ONNX Runtime fuses it into the convs);
* ``out`` with ``.relations.onnx``: packed pairs (``features``, ``rois``, ``geometry``, subject and
  object labels; see :func:`sim2sg_core.model.relations.pack_pairs`) → predicate ``logits``.

The main file carries the metadata a Predictor needs (vocabulary, input size, normalisation,
preprocessing, model id, post-processing constants, and the relation graph's SHA-256) as the
``sim2sg`` metadata entry, so an ``.onnx`` file is as self-describing as a checkpoint.

:class:`OnnxSGModel` runs both graphs with ONNX Runtime (CUDA when its provider is present, else CPU)
and hands their outputs to :func:`sim2sg_core.model.sg_model.postprocess`, the code the torch model
uses: peak extraction, NMS, pair building and ranking are shared, so both backends give the same
SceneGraphs up to float error.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Iterable, Optional, Union

import numpy as np
import torch
from torch import nn

from sim2sg_core.model.checkpoint import load_checkpoint, model_from_checkpoint
from sim2sg_core.model.inference import fix_same_padding, fold_batchnorm
from sim2sg_core.model.preprocess import images_to_tensor
from sim2sg_core.model.relations import GEOMETRY_DIM
from sim2sg_core.model.sg_model import SGModel, postprocess
from sim2sg_core.scene_graph import Vocabulary
from sim2sg_core.utils.io import atomic_write_bytes

#: Metadata key in the ONNX file, and the format it holds.
METADATA_KEY = "sim2sg"
ONNX_FORMAT = "sim2sg-onnx"
ONNX_FORMAT_VERSION = 1
OPSET = 17
ORT_PIP = "pip install onnxruntime==1.32.0 onnx==1.23.2 (or run `make setup`)"


class OnnxModelError(RuntimeError):
    """An ONNX model file that cannot be used, with the file and the reason in the message."""


def relations_path(path: Union[str, Path]) -> Path:
    """The relation graph that belongs to the main graph ``path``."""
    p = Path(path)
    return p.with_name(p.stem + ".relations.onnx")


class _DetectorGraph(nn.Module):
    def __init__(self, model: SGModel):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor):
        z = self.model.encode(images)
        out = self.model.heads(z)
        return out["heatmap"], out["size"], out["offset"], z


class _RelationGraph(nn.Module):
    def __init__(self, model: SGModel):
        super().__init__()
        self.head = model.relations

    def forward(self, features, rois, geometry, subj_labels, obj_labels):
        return self.head.score(features, rois, geometry, subj_labels, obj_labels)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _export(module: nn.Module, args: tuple, path: Path, input_names, output_names, dynamic_axes) -> None:
    buf = io.BytesIO()
    # (the TorchScript exporter, dynamo=False, writes to a file object too; torch annotates `f` as a path only)
    torch.onnx.export(
        module,
        args,
        buf,  # type: ignore[arg-type]
        input_names=input_names,
        output_names=output_names,
        dynamic_axes=dynamic_axes,
        opset_version=OPSET,
        dynamo=False,
    )
    atomic_write_bytes(path, buf.getvalue())


#: ``export_onnx(quantize=...)`` modes.
QUANTIZE_MODES = ("int8",)


def export_onnx(
    checkpoint: Union[str, Path],
    out: Union[str, Path],
    quantize: Optional[str] = None,
    calibration: Optional[Iterable[np.ndarray]] = None,
    calibration_images: int = 64,
    calibration_description: str = "",
) -> list[Path]:
    """Export a checkpoint to ``out`` and its relation graph beside it; returns both paths.

    ``quantize="int8"``: the main graph is quantized statically (ONNX Runtime, QDQ: int8 per-channel
    weights, uint8 activations whose ranges come from ``calibration``, RGB uint8 frames of the camera
    the model will see, preprocessed as the model does; the first ``calibration_images`` are used). On
    CPUs with int8 dot-product instructions (AVX512-VNNI, AVX-VNNI, ARM dot-product) this is about twice
    as fast; outputs move by the quantization step, so measure accuracy on your own frames. The relation
    graph (a few small layers) stays float.
    """
    if quantize is not None and quantize not in QUANTIZE_MODES:
        raise OnnxModelError(f"quantize must be one of {', '.join(QUANTIZE_MODES)}, got {quantize!r}")
    if quantize is not None and calibration is None:
        raise OnnxModelError("int8 quantization needs calibration frames (images the model will see)")
    try:
        import onnx  # deferred: optional package (pip install sim2sg[onnx])
    except ImportError:
        raise OnnxModelError(f"ONNX export needs the package 'onnx': {ORT_PIP}") from None
    ck = load_checkpoint(checkpoint)
    model = model_from_checkpoint(ck).eval()
    fold_batchnorm(model)
    out = Path(out)
    if out.suffix != ".onnx":
        raise OnnxModelError(f"ONNX output {out} must end in .onnx")
    out.parent.mkdir(parents=True, exist_ok=True)
    w, h = ck["input_size"]
    x = torch.zeros(1, 3, int(h), int(w))
    fix_same_padding(model, x, forward=model.encode)  # the graph's input size is fixed: constant pads fuse
    with torch.no_grad():
        z = model.encode(x)
    rel = relations_path(out)
    n = 3  # example pair count; the pair axis is dynamic
    _export(
        _RelationGraph(model),
        (
            z,
            torch.zeros(3 * n, 5),
            torch.zeros(n, GEOMETRY_DIM),
            torch.zeros(n, dtype=torch.long),
            torch.zeros(n, dtype=torch.long),
        ),
        rel,
        ["features", "rois", "geometry", "subj_labels", "obj_labels"],
        ["logits"],
        {
            "features": {0: "batch"},
            "rois": {0: "rois"},
            "geometry": {0: "pairs"},
            "subj_labels": {0: "pairs"},
            "obj_labels": {0: "pairs"},
            "logits": {0: "pairs"},
        },
    )
    meta = {
        "format": ONNX_FORMAT,
        "format_version": ONNX_FORMAT_VERSION,
        "model_id": ck["model_id"],
        "vocab": ck["vocab"].to_dict(),
        "input_size": [int(w), int(h)],
        "mean": list(ck["mean"]),
        "std": list(ck["std"]),
        "resize_mode": ck.get("resize_mode", "stretch"),
        "crop_bottom": float(ck.get("crop_bottom", 0.0)),
        "stride": int(model.stride),
        "nms_iou": float(model.nms_iou),
        "max_objects": int(model.max_objects),
        "max_relation_objects": int(model.max_relation_objects),
        "subject_mask": [bool(v) for v in model.subject_mask.tolist()],
        "num_predicates": int(model.num_predicates),
        "relations_file": rel.name,
        "relations_sha256": _sha256(rel),
    }
    tmp = out.with_name(out.name + ".export.tmp")
    qtmp = out.with_name(out.name + ".quant.tmp")
    try:
        _export(
            _DetectorGraph(model),
            (x,),
            tmp,
            ["images"],
            ["heatmap", "size", "offset", "features"],
            {
                "images": {0: "batch"},
                "heatmap": {0: "batch"},
                "size": {0: "batch"},
                "offset": {0: "batch"},
                "features": {0: "batch"},
            },
        )
        if quantize is not None and calibration is not None:
            batches = _calibration_batches(calibration, calibration_images, ck)
            _quantize_int8(tmp, qtmp, batches)
            meta["quantization"] = {
                "mode": "int8",
                "scheme": "static QDQ, per-channel int8 weights, uint8 activations (MinMax)",
                "calibration": calibration_description or "frames given to export_onnx",
                "calibration_images": len(batches),
            }
            tmp.unlink(missing_ok=True)
            qtmp.replace(tmp)
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(meta)
        atomic_write_bytes(out, proto.SerializeToString())
    finally:
        tmp.unlink(missing_ok=True)
        qtmp.unlink(missing_ok=True)
        for side in out.parent.glob(out.name + ".*.tmp*"):  # quant_pre_process's intermediate files
            side.unlink(missing_ok=True)
    return [out, rel]


def _calibration_batches(frames: Iterable[np.ndarray], count: int, ck: dict) -> list[np.ndarray]:
    """Up to ``count`` frames, preprocessed as the model does (one (1, 3, H, W) float32 array each)."""
    if count < 1:
        raise OnnxModelError(f"calibration_images must be >= 1, got {count}")
    batches = []
    for frame in frames:
        x = images_to_tensor(
            [frame],
            tuple(ck["input_size"]),
            ck["mean"],
            ck["std"],
            ck.get("resize_mode", "stretch"),
            float(ck.get("crop_bottom", 0.0)),
            channels_last=False,
        )
        batches.append(x.numpy())
        if len(batches) >= count:
            break
    if not batches:
        raise OnnxModelError("int8 quantization: the calibration source gave no frames")
    return batches


def _quantize_int8(src: Path, dst: Path, batches: list[np.ndarray]) -> None:
    try:  # deferred: optional package (pip install sim2sg[onnx])
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise OnnxModelError(f"int8 quantization needs onnxruntime: {ORT_PIP}") from None

    class _Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(batches)

        def get_next(self) -> Optional[dict]:
            x = next(self._it, None)
            return None if x is None else {"images": x}

    pre = dst.with_name(dst.name + ".pre.tmp")
    try:
        # shape inference and graph clean-up first, as ONNX Runtime recommends for static quantization
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(dst),
            _Frames(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    finally:
        pre.unlink(missing_ok=True)


def _session(path: Path, device: str, threads: int):
    import onnxruntime as ort  # deferred: optional package (pip install sim2sg[onnx])

    opts = ort.SessionOptions()
    if threads > 0:
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    # ORT's workers spin between runs by default; here torch and OpenCV work between the runs on the
    # same few cores (pre- and post-processing), so spinning threads would only steal their time.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CPUExecutionProvider"]
    if device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        return ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as e:  # noqa: BLE001 - ORT raises several types for unreadable models
        raise OnnxModelError(f"ONNX model {path} cannot be loaded: {str(e).splitlines()[0][:300]}") from None


def read_onnx_metadata(path: Union[str, Path]) -> dict:
    """The ``sim2sg`` metadata of an exported main graph; :class:`OnnxModelError` if absent or not ours."""
    path = Path(path)
    if not path.is_file():
        raise OnnxModelError(f"ONNX model {path} does not exist")
    try:
        import onnxruntime  # noqa: F401 - deferred, optional; the clear message below beats an ImportError deep inside
    except ImportError:
        raise OnnxModelError(f"the onnxruntime backend needs the package 'onnxruntime': {ORT_PIP}") from None
    sess = _session(path, "cpu", 1)
    raw = sess.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if raw is None:
        raise OnnxModelError(
            f"ONNX model {path} has no '{METADATA_KEY}' metadata: export it with "
            "`python -m sim2sg_core export --ckpt model.pt --format onnx --out model.onnx`"
        )
    meta = json.loads(raw)
    if meta.get("format") != ONNX_FORMAT or int(meta.get("format_version", -1)) > ONNX_FORMAT_VERSION:
        raise OnnxModelError(
            f"ONNX model {path}: metadata format {meta.get('format')!r} "
            f"v{meta.get('format_version')} is not {ONNX_FORMAT} <= v{ONNX_FORMAT_VERSION}"
        )
    return meta


class OnnxSGModel:
    """An exported model run by ONNX Runtime; ``predict`` matches :meth:`SGModel.predict`."""

    def __init__(self, path: Union[str, Path], device: str = "cpu", threads: int = 0):
        self.path = Path(path)
        self.meta = read_onnx_metadata(self.path)
        rel = relations_path(self.path)  # renamed together with the main file, found again
        if not rel.is_file():
            raise OnnxModelError(f"ONNX model {self.path}: its relation graph {rel} is missing")
        if _sha256(rel) != self.meta["relations_sha256"]:
            raise OnnxModelError(
                f"ONNX model {self.path}: relation graph {rel} does not belong to it "
                "(SHA-256 differs; export both again)"
            )
        self.detector = _session(self.path, device, threads)
        self.relation = _session(rel, device, threads)
        self.vocab = Vocabulary.from_dict(self.meta["vocab"])
        self.num_classes, self.num_predicates = len(self.vocab.classes), int(self.meta["num_predicates"])
        self.stride, self.nms_iou = int(self.meta["stride"]), float(self.meta["nms_iou"])
        self.max_objects = int(self.meta["max_objects"])
        self.max_relation_objects = int(self.meta["max_relation_objects"])
        self.subject_mask = torch.tensor(self.meta["subject_mask"], dtype=torch.bool)

    # the Predictor treats models alike
    def to(self, *_args, **_kwargs) -> "OnnxSGModel":
        return self

    def eval(self) -> "OnnxSGModel":
        return self

    def _score_pairs(self, features, rois, geometry, subj_labels, obj_labels) -> torch.Tensor:
        (logits,) = self.relation.run(
            None,
            {
                "features": features.float().numpy(),
                "rois": rois.float().numpy(),
                "geometry": geometry.float().numpy(),
                "subj_labels": subj_labels.long().numpy(),
                "obj_labels": obj_labels.long().numpy(),
            },
        )
        return torch.from_numpy(logits)

    def predict(
        self,
        images: torch.Tensor,
        score_threshold: float = 0.3,
        relation_threshold: float = 0.0,
        max_objects: Optional[int] = None,
    ) -> list[dict]:
        x = images.detach().float().cpu().contiguous().numpy()
        heatmap, size, offset, features = self.detector.run(None, {"images": x})
        out = {
            "heatmap": torch.from_numpy(heatmap),
            "size": torch.from_numpy(size),
            "offset": torch.from_numpy(offset),
            "features": torch.from_numpy(features),
            "image_size": (int(images.shape[-1]), int(images.shape[-2])),
        }
        return postprocess(
            out,
            self._score_pairs,
            stride=self.stride,
            nms_iou=self.nms_iou,
            max_objects=max_objects or self.max_objects,
            max_relation_objects=self.max_relation_objects,
            subject_mask=self.subject_mask,
            num_predicates=self.num_predicates,
            score_threshold=score_threshold,
            relation_threshold=relation_threshold,
        )


__all__ = ["OnnxModelError", "OnnxSGModel", "export_onnx", "read_onnx_metadata", "relations_path"]
