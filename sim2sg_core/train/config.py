"""Re-export of :mod:`sim2sg_core.model.config` (the experiment config moved there with the checkpoints)."""

from sim2sg_core.model.config import (
    BATCHNORM_MODES,
    ConfigError,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
    config_from_dict,
    load_config,
)

__all__ = [
    "BATCHNORM_MODES",
    "ConfigError",
    "ExperimentConfig",
    "ModelConfig",
    "TrainConfig",
    "config_from_dict",
    "load_config",
]
