"""Plain-dataclass configuration of Sim2SG adaptation and its benchmark, loaded from YAML.

Every part of the method is one switch (``label_alignment.enabled``, ``prediction_alignment.enabled``,
``appearance_alignment.enabled``), so each ablation row of the benchmark is a one-flag change.
Loaded by the one config system (:func:`sim2sg_core.config.from_dict`): unknown keys and wrongly typed
values are an error naming the file and the key path: a typo must not silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Union

from sim2sg_core.config import ConfigError, at, config_dir, deep_merge, from_dict, load_yaml_mapping
from sim2sg_core.data.calibration import CalibrationError, calibration_kind
from sim2sg_core.sim import load_environment

#: A ``model:`` section in an override or bench profile replaces the base's whole (a model, not a patch).
WHOLE_SECTIONS = ("model",)


def adapt_config_dir() -> Path:
    """config/adapt (default + bench profiles), found like every other config file."""
    return config_dir() / "adapt"


class AdaptConfigError(ConfigError):
    """A bad adaptation / benchmark configuration (file, key and problem in the message)."""


@dataclass
class LabelAlignmentConfig:
    """Pseudo-statistics self-learning (the paper's label alignment, "analysis" + "synthesis")."""

    enabled: bool = True
    #: Keep predicted objects at least this confident for the pseudo-statistics / reconstruction.
    score_threshold: float = 0.5
    #: Label-aligned images rendered per synthesis round (reconstructed + re-sampled scenes).
    samples_per_round: int = 256
    #: Fraction of those drawn from the re-fitted content generator (the rest are 1:1 reconstructions
    #: of target images' pseudo scene graphs).
    generated_fraction: float = 0.5
    #: Re-fit the generator's content distributions from the aggregated pseudo-statistics.
    refit_content: bool = True
    #: Each round moves the generator this far from its previous content towards the round's
    #: pseudo-statistics (1 = replace). Below 1 a poor early round (few confident detections
    #: under a large appearance gap) cannot wipe a class out of the generator at once.
    refit_blend: float = 0.5
    #: Floor of each class's re-fitted count, as a fraction of its source count (0 = none): an
    #: undetected class is not evidence of an absent class.
    min_class_fraction: float = 0.0
    #: Class-balanced confidence (as in class-balanced self-training, Zou et al. 2018), 0 = off: each
    #: class's pseudo-label threshold is lowered to the score above which this fraction of its
    #: predictions lie (never above ``score_threshold``, never below the 0.3 prediction floor), so a
    #: model that is less sure of one class (a domain-randomised one, typically) still contributes it
    #: to the pseudo-statistics and the reconstructed scenes instead of dropping it.
    class_balanced_fraction: float = 0.0
    #: Fraction of each labelled batch still taken from the original source domain (anchors labels
    #: while pseudo-statistics are still noisy).
    source_fraction: float = 0.25
    #: The target camera's mounting pose used to lift pseudo-labels and render aligned scenes:
    #: "configured" (calibration: camera_height/pitch, the target source's report, else the source
    #: mean) or "estimated" from the confident pseudo-labels every round (:mod:`sim2sg_core.adapt.pose`).
    camera_pose: Literal["configured", "estimated"] = "configured"


@dataclass
class AdversarialConfig:
    """One GRL + discriminator alignment term."""

    enabled: bool = True
    weight: float = 0.1
    hidden_channels: int = 64
    num_layers: int = 2
    #: Learning rate of the discriminator (the model keeps ``AdaptConfig.lr``).
    lr: float = 1e-3


@dataclass
class AppearanceAlignmentConfig(AdversarialConfig):
    """Appearance alignment: the feature-level GRL + discriminator on Z, plus the image-level
    low-frequency spectrum transfer (FDA) of target looks onto the labelled images."""

    #: Half-width of the swapped low-frequency band, a fraction of min(H, W) (0 = no transfer).
    spectrum_beta: float = 0.0
    #: Share of labelled images that get a target look.
    spectrum_probability: float = 0.0
    #: The GRL + discriminator on Z (false = the spectrum transfer alone, an ablation).
    discriminator: bool = True


@dataclass
class SelfTrainingConfig:
    """Baseline: train on target images with the model's own confident predictions as labels."""

    enabled: bool = False
    score_threshold: float = 0.5
    #: Fraction of each labelled batch from the source domain; the rest are pseudo-labelled target.
    source_fraction: float = 0.5


@dataclass
class EvidenceConfig:
    """Vet pseudo-labels with the ImageNet classifier's vehicle evidence (no real labels used)."""

    enabled: bool = False
    #: Classes whose predictions must show the evidence (the ImageNet vehicle classes cover cars).
    classes: list[str] = field(default_factory=lambda: ["car"])
    #: Minimum summed ImageNet vehicle-class probability on a crop around the predicted box.
    min_score: float = 0.1
    #: The crop is the box grown by this fraction on each side (context helps the classifier).
    context: float = 0.15
    #: Classifier input size (px) of each crop.
    input_size: int = 128


@dataclass
class AdaptConfig:
    """One adaptation run: init checkpoint + unlabelled target images → adapted checkpoint."""

    #: Simulator environment whose generator provides labelled source / label-aligned data;
    #: empty = the environment the init checkpoint was trained on.
    env: str = ""
    source_domain: str = "source"
    label_alignment: LabelAlignmentConfig = field(default_factory=LabelAlignmentConfig)
    prediction_alignment: AdversarialConfig = field(default_factory=AdversarialConfig)
    appearance_alignment: AppearanceAlignmentConfig = field(default_factory=AppearanceAlignmentConfig)
    self_training: SelfTrainingConfig = field(default_factory=SelfTrainingConfig)
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)
    #: Alternating analysis (pseudo-statistics) / synthesis (render + train) rounds.
    rounds: int = 4
    #: First rounds train with label alignment alone; adversarial terms start afterwards.
    warmup_rounds: int = 1
    steps_per_round: int = 150
    batch_size: int = 8
    #: Unlabelled target images per adversarial step (0 = batch_size).
    target_batch_size: int = 0
    #: Target frames join every batch after warm-up even without any adversarial term (forward only,
    #: no loss): BatchNorm's batch and running statistics then see the target, as they do in every
    #: adversarial row. Alone it is the "target BatchNorm statistics" ablation (AdaBN-like).
    target_batchnorm: bool = False
    lr: float = 5e-4
    weight_decay: float = 1e-4
    #: The schedule of the one optimisation engine (``train.optim``), restarted for adaptation: linear
    #: warm-up over this many steps, then cosine decay to 0 at ``total_steps``, for the model and every
    #: discriminator alike (each from its own rate).
    warmup_steps: int = 20
    #: Gradient-norm clip over the model's and the discriminators' parameters (<= 0: none).
    grad_clip: float = 5.0
    #: bfloat16 autocast where the device supports it (CUDA); no effect on CPU.
    amp: bool = True
    #: Gamma of the GRL schedule 2/(1+exp(-gamma p))-1, p = progress of the adversarial phase.
    grl_gamma: float = 10.0
    #: Labelled source-domain images rendered once and mixed into every labelled batch.
    source_pool_size: int = 128
    #: Use at most this many target images (evenly strided over the source); 0 = all.
    max_target_images: int = 200
    seed: int = 0
    device: str = "auto"
    #: Write a resumable checkpoint every this many steps (and at every round end).
    checkpoint_every: int = 100
    #: Show a tqdm progress bar.
    progress_bar: bool = True
    #: torch intra-op threads on CPU (0 = leave torch's default).
    num_threads: int = 0
    #: Mounting pose of the target camera (height above ground in m, downward pitch in rad), used to
    #: lift pseudo labels to 3-D and to render label-aligned scenes. This is sensor calibration, not
    #: a label: null = what the target source reports (a simulator domain knows its camera), else
    #: the source domain's mean pose.
    camera_height: Optional[float] = None
    camera_pitch: Optional[float] = None
    #: The target camera's calibration file: a ROS camera_info YAML (.yaml/.yml) or a KITTI calib
    #: (.txt, sized by the target images). Label alignment then lifts and renders through its
    #: intrinsics; empty = what the target source knows (a bag's CameraInfo, a camera_info.yaml beside
    #: an image folder), else the simulator's camera. The pose still comes from camera_height/pitch,
    #: the target source's reported pose, a KITTI P2's pitch, else the source mean pose.
    camera_info: str = ""

    @property
    def total_steps(self) -> int:
        return self.rounds * self.steps_per_round

    def adversarial_enabled(self) -> bool:
        a = self.appearance_alignment
        return self.prediction_alignment.enabled or (a.enabled and a.discriminator)

    def target_frames_in_batches(self) -> bool:
        """Whether unlabelled target frames pass forward with the labelled batch after warm-up."""
        return self.adversarial_enabled() or self.target_batchnorm

    def validate(self, where: str = "adaptation config") -> "AdaptConfig":
        def bad(msg: str):
            raise AdaptConfigError(f"{where}: {msg}")

        if self.rounds < 1:
            bad(f"rounds must be >= 1, got {self.rounds}")
        if not 0 <= self.warmup_rounds <= self.rounds:
            bad(f"warmup_rounds must be in [0, rounds={self.rounds}], got {self.warmup_rounds}")
        if self.steps_per_round < 1 or self.batch_size < 1:
            bad("steps_per_round and batch_size must be >= 1")
        cbf = self.label_alignment.class_balanced_fraction
        if not 0.0 <= cbf <= 1.0:
            bad(f"label_alignment.class_balanced_fraction must be in [0, 1], got {cbf}")
        if self.warmup_steps < 0:
            bad(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        for name in ("score_threshold",):
            v = getattr(self.label_alignment, name)
            if not 0.0 <= v <= 1.0:
                bad(f"label_alignment.{name} must be in [0, 1], got {v}")
        if not 0.0 < self.label_alignment.refit_blend <= 1.0:
            bad(f"label_alignment.refit_blend must be in (0, 1], got {self.label_alignment.refit_blend}")
        if not 0.0 <= self.appearance_alignment.spectrum_beta <= 0.5:
            bad(
                f"appearance_alignment.spectrum_beta must be in [0, 0.5], got {self.appearance_alignment.spectrum_beta}"
            )
        for frac_name, v in (
            ("label_alignment.generated_fraction", self.label_alignment.generated_fraction),
            ("appearance_alignment.spectrum_probability", self.appearance_alignment.spectrum_probability),
            ("label_alignment.min_class_fraction", self.label_alignment.min_class_fraction),
            ("label_alignment.source_fraction", self.label_alignment.source_fraction),
            ("self_training.source_fraction", self.self_training.source_fraction),
        ):
            if not 0.0 <= v <= 1.0:
                bad(f"{frac_name} must be in [0, 1], got {v}")
        if self.camera_height is not None and not 0.0 < float(self.camera_height) < 100.0:
            bad(f"camera_height must be in (0, 100) m, got {self.camera_height}")
        if self.camera_pitch is not None and not -1.5 < float(self.camera_pitch) < 1.5:
            bad(f"camera_pitch must be in (-1.5, 1.5) rad, got {self.camera_pitch}")
        if not 0.0 <= self.evidence.min_score <= 1.0:
            bad(f"evidence.min_score must be in [0, 1], got {self.evidence.min_score}")
        if self.evidence.input_size < 32:
            bad(f"evidence.input_size must be >= 32 px, got {self.evidence.input_size}")
        if self.camera_info:
            try:
                calibration_kind(self.camera_info)
            except CalibrationError as e:
                bad(str(e))
            if not Path(self.camera_info).is_file():
                bad(f"camera_info file {self.camera_info} does not exist")
        return self


@dataclass
class RealTargetDefaults:
    """A real-camera profile's default data (``bench --target/--camera-info/--eval-data`` override each):
    unlabelled frames (folder or bag), the camera's calibration and the labelled KITTI-layout folder. Relative
    paths are read from the working directory (the repository root for ``make``/CI)."""

    target: str = ""
    camera_info: str = ""
    eval_data: str = ""


@dataclass
class BenchProfile:
    """What the benchmark runs: environments, seeds, methods, and the shared training budget."""

    name: str = "quick"
    envs: list[str] = field(default_factory=lambda: ["drive"])
    seeds: list[int] = field(default_factory=lambda: [0])
    #: Rows of the table (see :data:`sim2sg_core.adapt.baselines.METHODS`).
    methods: list[str] = field(default_factory=lambda: ["source_only", "sim2sg_full", "oracle"])
    #: Simulator target domains, each reported in its own table section (a real target replaces them).
    target_domains: list[str] = field(default_factory=lambda: ["target"])
    #: Labelled evaluation split of simulator targets: "val" (choosing settings is allowed on it) or
    #: "test" (reports only; never used to choose a setting). Disjoint simulator seeds (bench.split_seeds).
    eval_split: Literal["val", "test"] = "val"
    #: Draws of the paired bootstrap behind each "Δ vs source only" interval.
    bootstrap_samples: int = 1000
    #: The simulator domains that "source" and "randomized" mean for this profile's methods (a
    #: real-camera profile uses photo-like domains; the simulator benchmarks the plain ones).
    source_domain: str = "source"
    randomized_domain: str = "randomized"
    #: Real-camera runs: mount height (m) and downward pitch (rad) of the target camera. This is
    #: calibration, not labels; the intrinsics come from the camera_info / calib file.
    camera_height: Optional[float] = None
    camera_pitch: float = 0.0
    #: Model input / simulator image size = environment default size × this scale (rounded to a
    #: multiple of 16), so one profile fits environments of different aspect ratios.
    image_scale: float = 0.5
    #: Explicit (width, height) instead of the scale (same for every environment).
    image_size: Optional[list[int]] = None
    #: Supervised steps of the source (pre-)training every method starts from / is budgeted with.
    source_steps: int = 400
    source_lr: float = 1e-3
    #: Keep the supervised trainings' model every this many steps (``step<N>.pt``: a learning curve); 0 = none.
    keep_every: int = 0
    #: Labelled training set size (simulated, pre-rendered and cached).
    train_images: int = 512
    #: Unlabelled target images the adaptation sees (disjoint seed from the evaluation images).
    target_images: int = 200
    #: Labelled target images for evaluation only.
    eval_images: int = 200
    #: Recall@K's K.
    recall_k: int = 20
    #: A real target's default data (None: simulator targets unless ``bench --target`` names one).
    real: Optional[RealTargetDefaults] = None
    #: Class map of the real labelled folder ("" = config/class_maps/kitti.yaml; kitti_benchmark.yaml
    #: ignores vans for car as KITTI's own evaluation does).
    eval_class_map: str = ""
    #: Real targets: "A-B" method pairs compared directly in the table (a method and its matched control).
    matched_pairs: list[str] = field(default_factory=list)
    #: Model configuration overrides passed to the model config (e.g. width); merged as a dict.
    model: dict = field(default_factory=dict)
    #: The adaptation configuration shared by every adaptation method (methods flip its switches).
    adapt: AdaptConfig = field(default_factory=AdaptConfig)
    num_threads: int = 2

    def image_size_for(self, env: str) -> tuple[int, int]:
        if self.image_size:
            return int(self.image_size[0]), int(self.image_size[1])
        w, h = load_environment(env).image_size
        return max(32, int(round(w * self.image_scale / 16)) * 16), max(32, int(round(h * self.image_scale / 16)) * 16)

    @property
    def budget_steps(self) -> int:
        """Total optimisation steps every method gets (source pre-training + adaptation)."""
        return self.source_steps + self.adapt.total_steps


# --------------------------------------------------------------------------- YAML loading


def _read_yaml(path: Union[str, Path]) -> dict:
    return load_yaml_mapping(path, error=AdaptConfigError)


def _adapt_section(data: dict, where: str) -> tuple[dict, str]:
    """The ``adapt:`` section of an adaptation YAML (or the whole file when it has none) and its location."""
    if "adapt" in data:
        return data["adapt"] or {}, at(where, "adapt")
    return data, where


def adapt_config_from_dict(data: Optional[dict], where: str = "adaptation config") -> AdaptConfig:
    return from_dict(AdaptConfig, data or {}, where, error=AdaptConfigError).validate(where)


def load_adapt_config(path: Union[str, Path, None] = None, overrides: Optional[dict] = None) -> AdaptConfig:
    """Load ``config/adapt/default.yaml`` (or ``path``), optionally merged with ``overrides``."""
    path = Path(path) if path is not None else adapt_config_dir() / "default.yaml"
    data, where = _adapt_section(_read_yaml(path), str(path))
    cfg = adapt_config_from_dict(data, where)  # the file's own errors name the file
    if not overrides:
        return cfg
    merged = deep_merge(data, overrides, replace_keys=WHOLE_SECTIONS)
    return adapt_config_from_dict(merged, f"--set override (over {path})")  # errors now come from the overrides


def _bench_profile(data: dict, base_adapt: dict, where: str) -> BenchProfile:
    data = dict(data)
    adapt_data = deep_merge(base_adapt, data.pop("adapt", None) or {}, replace_keys=WHOLE_SECTIONS)
    prof = from_dict(BenchProfile, data, where, error=AdaptConfigError)
    prof.adapt = adapt_config_from_dict(adapt_data, at(where, "adapt"))
    if prof.bootstrap_samples < 10:
        raise AdaptConfigError(f"{at(where, 'bootstrap_samples')}: must be >= 10, got {prof.bootstrap_samples}")
    if not prof.target_domains:
        raise AdaptConfigError(f"{at(where, 'target_domains')}: needs at least one target domain")
    return prof


def load_bench_profile(name_or_path: Union[str, Path], overrides: Optional[dict] = None) -> BenchProfile:
    """Load a bench profile by name (``quick`` / ``full`` in config/adapt) or path.

    The profile's ``adapt:`` section is merged over ``config/adapt/default.yaml`` so the adaptation
    settings live in one place; ``overrides`` (nested dict, e.g. ``{"adapt": {"rounds": 8}}``) go on top.
    """
    p = Path(name_or_path)
    if not p.suffix:
        p = adapt_config_dir() / f"bench_{name_or_path}.yaml"
        if not p.is_file():
            known = sorted(f.stem[len("bench_") :] for f in adapt_config_dir().glob("bench_*.yaml"))
            raise AdaptConfigError(f"unknown bench profile {str(name_or_path)!r}; known: {known}")
    data = _read_yaml(p)
    default_path = adapt_config_dir() / "default.yaml"
    base_adapt, _ = _adapt_section(_read_yaml(default_path), str(default_path))
    prof = _bench_profile(data, base_adapt, str(p))  # the file's own errors name the file
    if not overrides:
        return prof
    return _bench_profile(
        deep_merge(data, overrides, replace_keys=WHOLE_SECTIONS), base_adapt, f"--set override (over {p})"
    )


def config_to_dict(cfg) -> dict:
    """Plain dict of a config dataclass (for checkpoints and YAML dumps)."""
    return dataclasses.asdict(cfg)
