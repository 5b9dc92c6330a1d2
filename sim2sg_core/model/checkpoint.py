"""Checkpoints: one self-describing file per model (weights + everything needed to use them).

A checkpoint holds the experiment config, the class/predicate vocabulary, input size and
normalisation, the model version and a content hash of the weights, plus optional optimiser /
scheduler state and step count for resuming. Writes are atomic; every way a file can be
unusable (missing, truncated, not ours, wrong version, altered weights, other vocabulary) raises
CheckpointError with a sentence naming the file and the problem.

Part of the model package (the Predictor and the ONNX export read checkpoints without the training
code); ``sim2sg_core.train.checkpoint`` re-exports it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import zipfile
from pathlib import Path
from typing import Any, Optional, Union

import torch

from sim2sg_core.model.config import ConfigError, ExperimentConfig, config_from_dict
from sim2sg_core.model.sg_model import MODEL_VERSION, SGModel
from sim2sg_core.scene_graph import Vocabulary
from sim2sg_core.utils.io import atomic_save

FORMAT = "sim2sg-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used, with the file and the reason in the message."""


def state_hash(state_dict: dict) -> str:
    """SHA-256 over parameter names, dtypes, shapes and bytes (independent of pickling details)."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_checkpoint(
    path: Union[str, Path],
    model: SGModel,
    config: ExperimentConfig,
    vocab: Vocabulary,
    input_size: tuple[int, int],
    mean,
    std,
    extra: Optional[dict] = None,
    optimizer=None,
    scheduler=None,
    step: int = 0,
) -> Path:
    """Atomically write ``path``; ``optimizer``/``scheduler`` (objects with state_dict) enable resume.

    The preprocessing (``resize_mode``, ``crop_bottom``) comes from ``config.model`` and is also
    stored at the top level; a checkpoint without them reads as stretch / 0 (what it was trained with).
    """
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_version": MODEL_VERSION,
        "config": config.to_dict(),
        "vocab": vocab.to_dict(),
        "input_size": [int(input_size[0]), int(input_size[1])],
        "resize_mode": str(getattr(config.model, "resize_mode", "stretch")),
        "crop_bottom": float(getattr(config.model, "crop_bottom", 0.0)),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "state_dict": state,
        "content_hash": state_hash(state),
        "step": int(step),
        "extra": dict(extra or {}),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()

    def _write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    return atomic_save(path, _write)


def load_checkpoint(
    path: Union[str, os.PathLike], expect_vocab: Optional[Vocabulary] = None, map_location: Any = "cpu"
) -> dict:
    """Read and verify a checkpoint; returns its dict with ``vocab`` as Vocabulary, ``config`` as ExperimentConfig."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); it was probably interrupted while copying")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"checkpoint {path} is not a torch checkpoint file (truncated, or some other format)")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - every unreadable file gets one clear sentence
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"checkpoint {path} cannot be read (truncated or corrupted?): {first}") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {path} is not a sim2sg checkpoint (no '{FORMAT}' marker); was it written by another program?"
        )
    if ck.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {ck.get('format_version')}, this code reads version {FORMAT_VERSION}"
        )
    if ck.get("model_version") != MODEL_VERSION:
        raise CheckpointError(
            f"checkpoint {path} holds model version {ck.get('model_version')!r}, "
            f"this code builds {MODEL_VERSION!r}; retrain or use a matching sim2sg version"
        )
    for key in ("config", "vocab", "input_size", "mean", "std", "state_dict", "content_hash"):
        if key not in ck:
            raise CheckpointError(f"checkpoint {path} lacks the field {key!r}")
    if state_hash(ck["state_dict"]) != ck["content_hash"]:
        raise CheckpointError(f"checkpoint {path} weights do not match their content hash (file altered or corrupted)")
    try:
        ck["vocab"] = Vocabulary.from_dict(ck["vocab"])
        ck["config"] = config_from_dict(ck["config"], where=f"checkpoint {path}")
    except (ConfigError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"checkpoint {path} has an unusable config/vocabulary: {e}") from None
    # preprocessing: older checkpoints (no keys) were trained with per-axis stretch and no crop
    ck["resize_mode"] = str(ck.get("resize_mode", ck["config"].model.resize_mode))
    ck["crop_bottom"] = float(ck.get("crop_bottom", ck["config"].model.crop_bottom))
    if ck["resize_mode"] not in ("stretch", "letterbox") or not 0.0 <= ck["crop_bottom"] <= 0.9:
        raise CheckpointError(
            f"checkpoint {path} has unusable preprocessing resize_mode={ck['resize_mode']!r} "
            f"crop_bottom={ck['crop_bottom']!r}"
        )
    if expect_vocab is not None and ck["vocab"] != expect_vocab:
        v = ck["vocab"]
        diffs = []
        for field in ("classes", "predicates", "subject_classes"):
            a, b = getattr(v, field), getattr(expect_vocab, field)
            if a != b:
                diffs.append(f"{field} {list(a)} vs expected {list(b)}")
        raise CheckpointError(f"checkpoint {path} was trained for another vocabulary: " + "; ".join(diffs))
    ck["path"] = str(path)
    ck["model_id"] = (
        f"{path.parent.name}/{path.stem}@{ck['content_hash'][:10]}"
        if path.parent.name
        else f"{path.stem}@{ck['content_hash'][:10]}"
    )
    return ck


def model_from_checkpoint(ck: dict) -> SGModel:
    """An SGModel with the checkpoint's architecture and weights (eval mode)."""
    cfg = ck["config"]
    # The encoder's optional pre-training file / bundled ImageNet weights are not needed (and may not
    # exist) once weights are saved: the checkpoint holds every weight.
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, encoder_weights=""))
    model = SGModel.from_config(cfg, ck["vocab"], pretrained=False)
    try:
        model.load_state_dict(ck["state_dict"])
    except RuntimeError as e:
        raise CheckpointError(
            f"checkpoint {ck.get('path', '?')} weights do not fit its own config: {str(e).splitlines()[0]}"
        ) from None
    return model.eval()
