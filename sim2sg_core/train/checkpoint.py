"""Re-export of :mod:`sim2sg_core.model.checkpoint` (checkpoint I/O moved to the model package)."""

from sim2sg_core.model.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
    state_hash,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CheckpointError",
    "load_checkpoint",
    "model_from_checkpoint",
    "save_checkpoint",
    "state_hash",
]
