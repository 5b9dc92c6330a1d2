"""Device selection and mixed precision, shared by training, adaptation, inference, evaluation and the nodes."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` (or empty) = CUDA when available, else CPU; an explicit CUDA device that is missing is an error."""
    if device in ("auto", "", None):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was requested but CUDA is not available on this machine")
    return dev


def autocast_context(device: torch.device, enabled: bool = True) -> AbstractContextManager[Any]:
    """bfloat16 autocast on a CUDA ``device`` when ``enabled`` (the one mixed-precision rule of the
    Trainer and the Predictor); a no-op context on the CPU or when disabled."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()
