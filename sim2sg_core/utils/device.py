"""Device selection and mixed precision, shared by training, adaptation, inference, evaluation and the nodes."""

from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Iterator

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


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads, then restore the count.

    For work on tiny tensors (post-processing): there a second thread only adds a fork/join, and on a
    loaded machine, where the other core is busy with the camera driver or ONNX Runtime, each join waits
    for a time slice (measured: 3-4 ms per op instead of microseconds). torch's count is process-wide, so
    use it only around short blocks in the thread that does the inference."""
    old = torch.get_num_threads()
    if n <= 0 or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
