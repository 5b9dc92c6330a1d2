"""Device selection shared by training, adaptation, inference and the nodes."""
from __future__ import annotations

import torch


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` (or empty) = CUDA when available, else CPU; an explicit CUDA device that is missing is an error."""
    if device in ("auto", "", None):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was requested but CUDA is not available on this machine")
    return dev
