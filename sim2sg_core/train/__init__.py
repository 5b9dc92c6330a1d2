"""Training: config dataclasses, Trainer, checkpoints."""

from sim2sg_core.model.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint, save_checkpoint
from sim2sg_core.model.config import ConfigError, ExperimentConfig, ModelConfig, TrainConfig, load_config

__all__ = [
    "CheckpointError",
    "ConfigError",
    "ExperimentConfig",
    "ModelConfig",
    "TrainConfig",
    "load_checkpoint",
    "load_config",
    "model_from_checkpoint",
    "save_checkpoint",
]
