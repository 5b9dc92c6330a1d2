"""The Sim2SG adaptation loop: alternating analysis / synthesis rounds with adversarial alignment.

Per round (the paper's Algorithm 1, made concrete):

1. **Analysis** (label alignment, or pseudo-labelling for the self-training baseline): the current
   model predicts on the unlabelled target images; confident predictions → pseudo-statistics →
   reconstructed scenes + re-fitted content distributions.
2. **Synthesis**: those scenes (and fresh draws of the re-fitted generator) are rendered in the
   source appearance, giving labelled, label-aligned training images.
3. **Training** for ``steps_per_round`` steps on labelled batches (label-aligned + a share of the
   original source; with appearance alignment most of them take a random target image's look by
   low-frequency spectrum transfer, :mod:`sim2sg_core.adapt.appearance`), plus — after
   ``warmup_rounds`` — the adversarial terms on a target batch:
   appearance alignment (GRL + discriminator on the encoder features Z) and prediction alignment
   (GRL + discriminators on the detection heatmap and the relationship predictions). Source is
   labelled 1, target 0; the GRL strength follows 2/(1+exp(-γp))-1 over the adversarial phase.

The target source yields images only (see :mod:`sim2sg_core.adapt.targets`), so target labels
cannot reach this loop. A resumable state file sits next to the output checkpoint and is removed
once the final checkpoint is written.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence, Union

import numpy as np
import torch
from tqdm import tqdm

from sim2sg_core.adapt.appearance import stylise_batch
from sim2sg_core.adapt.config import AdaptConfig, config_to_dict, load_adapt_config
from sim2sg_core.adapt.discriminators import (
    SOURCE_LABEL,
    TARGET_LABEL,
    ConvDiscriminator,
    VectorDiscriminator,
    domain_accuracy,
    domain_bce,
)
from sim2sg_core.adapt.evidence import evidence_filter_from_config
from sim2sg_core.adapt.grl import grad_reverse, grl_lambda
from sim2sg_core.adapt.label_alignment import LabelAligner, class_balanced_scores
from sim2sg_core.adapt.pose import estimate_camera_pose
from sim2sg_core.adapt.targets import ArrayTargetSource, BagTargetSource, TargetSource
from sim2sg_core.data.calibration import calibration_kind, load_camera
from sim2sg_core.model.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from sim2sg_core.model.predictor import Predictor
from sim2sg_core.model.preprocess import ResizeSpec, hflip_sample, images_to_tensor
from sim2sg_core.scene_graph import SceneGraph, keep_objects
from sim2sg_core.sim import Simulator
from sim2sg_core.sim.domains import content_to_dict, parse_content
from sim2sg_core.sim.scene import SceneDescription
from sim2sg_core.train.optim import Optimization, ParamGroup, StepsThroughEngine
from sim2sg_core.train.trainer import apply_batchnorm_mode, freeze_batchnorm
from sim2sg_core.utils.device import resolve_device
from sim2sg_core.utils.distributed import DistContext, all_gather_objects, barrier, data_parallel, from_main

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
ProgressCallback = Callable[[int, int, dict], None]

RESUME_SUFFIX = ".resume"


#: Adam betas of the discriminators' parameter groups (the usual adversarial-training choice).
DISCRIMINATOR_BETAS = (0.5, 0.999)


class AdaptationError(RuntimeError):
    """Adaptation cannot proceed (bad resume state, no target images, ...)."""


# ------------------------------------------------------------------------------------ data pools


class LabelledPool:
    """Labelled (image, SceneGraph) pairs that training batches are drawn from."""

    def __init__(self, images: Sequence[np.ndarray] = (), graphs: Sequence[SceneGraph] = (), name: str = ""):
        if len(images) != len(graphs):
            raise ValueError(f"pool {name}: {len(images)} images but {len(graphs)} graphs")
        self.images, self.graphs, self.name = list(images), list(graphs), name

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, rng: np.random.Generator, n: int) -> tuple[list, list]:
        idx = rng.integers(0, len(self.images), size=n)
        return [self.images[i] for i in idx], [self.graphs[i] for i in idx]


def render_source_pool(simulator, count: int, start_index: int = 0) -> LabelledPool:
    """``count`` labelled samples of the simulator's (source) domain."""
    images, graphs = [], []
    for i in range(start_index, start_index + count):
        s = simulator.sample(i)
        images.append(s.image)
        graphs.append(s.graph)
    return LabelledPool(images, graphs, name=simulator.domain.name)


def pseudo_label_graphs(graphs: Sequence[SceneGraph], score_threshold: float) -> list[SceneGraph]:
    """Keep confident objects (and the predicted relationships among them) as pseudo labels."""
    return [keep_objects(g, [i for i, o in enumerate(g.objects) if o.score >= score_threshold]) for g in graphs]


# ------------------------------------------------------------------------------------ helpers


def _hflip_batch(images, graphs, predicates, rng):
    out_i, out_g = [], []
    for im, g in zip(images, graphs):
        if rng.random() < 0.5:
            im, g = hflip_sample(im, g, predicates)
        out_i.append(im)
        out_g.append(g)
    return out_i, out_g


@dataclass
class AdaptResult:
    """What :func:`run_adaptation` returns."""

    checkpoint: str
    steps: int
    rounds: int
    seconds: float
    resumed_from_step: int = 0
    history: list = field(default_factory=list)  # per-round dicts (analysis + mean losses)
    target_images: int = 0  # unlabelled target frames the run adapted on


class _AdaptLoss(torch.nn.Module):
    """The model and the discriminators as one module whose forward is :meth:`Sim2SGAdapter.losses`,
    so DistributedDataParallel averages every gradient of an adaptation step over the ranks."""

    def __init__(self, adapter: "Sim2SGAdapter"):
        super().__init__()
        self.model = adapter.model
        self.discriminators = torch.nn.ModuleList(
            [d for d in (adapter.disc_z, adapter.disc_heat, adapter.disc_rel) if d is not None]
        )
        self._losses = adapter.losses

    def forward(self, x, targets, n_l, lam, adversarial):
        return self._losses(x, targets, n_l, lam, adversarial)


class Sim2SGAdapter(StepsThroughEngine):
    """Holds the model, discriminators, optimisers and pools of one adaptation run."""

    def __init__(
        self,
        *,
        model,
        vocab,
        experiment_config,
        input_size,
        mean,
        std,
        config: AdaptConfig,
        target_images: Sequence[np.ndarray],
        device: str = "auto",
        init_model_id: str = "",
        target_camera_pose: Optional[tuple] = None,
        target_camera=None,
        dist: Optional[DistContext] = None,
    ):
        """``target_camera_pose``: (height m, pitch rad) the target source reports (or None);
        ``target_camera``: the target source's calibrated camera (intrinsics; or None). A calibration
        file in ``config.camera_info`` takes precedence over ``target_camera``.

        ``dist`` (torchrun): each rank trains on its own share of the target frames and its own source
        renders with ``batch_size / world_size`` images, predicts on its share and gathers every rank's
        predictions before label alignment analyses them (identically on every rank), renders its share
        of the aligned scenes, and steps through DistributedDataParallel (model and discriminators)."""
        self.cfg = config
        self.dist = dist or DistContext()
        self.device = resolve_device(config.device if device == "auto" else device)
        world = self.dist.world_size
        #: this rank's labelled and target images per step (the config's batch sizes are global)
        self.batch_size = self.dist.per_rank(config.batch_size, "batch_size")
        self.target_batch_size = self.dist.per_rank(config.target_batch_size or config.batch_size, "target_batch_size")
        model, self.bn_mode = apply_batchnorm_mode(model, experiment_config.train.batchnorm, self.dist, self.device)
        self.model = model.to(self.device)
        self.vocab, self.exp_cfg = vocab, experiment_config
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.mean, self.std = tuple(mean), tuple(std)
        #: the model's preprocessing (what it was trained with; see model.preprocess.ResizeSpec)
        self.resize_mode = getattr(model, "resize_mode", "stretch")
        self.crop_bottom = float(getattr(model, "crop_bottom", 0.0))
        self.target_images = list(target_images)
        if len(self.target_images) < world:
            raise AdaptationError(
                f"adaptation needs at least one target image per process ({world}), got {len(self.target_images)}"
            )
        #: this rank's share of the target frames (global index i lives on rank i % world_size)
        self.local_targets = self.dist.shard(self.target_images)
        self._rank_seed = [self.dist.rank] if world > 1 else []  # one process: the single-process draws
        self.init_model_id = init_model_id
        self.rng = np.random.default_rng(config.seed)
        torch.manual_seed(config.seed)
        # Render at the model's input size: no resize cost, and the reconstruction camera matches.
        self.sim = Simulator(
            env=config.env, domain=config.source_domain, seed=config.seed + 17, image_size=self.input_size
        )
        if tuple(self.sim.vocab.classes) != tuple(vocab.classes):
            raise AdaptationError(
                f"the checkpoint's classes {list(vocab.classes)} differ from environment "
                f"{config.env!r}'s {list(self.sim.vocab.classes)}; set env to the one it was "
                "trained on"
            )
        self.source_pool = render_source_pool(
            self.sim, config.source_pool_size, start_index=self.dist.rank * config.source_pool_size
        )
        self.aligned_pool = LabelledPool(name="label-aligned")
        self.pseudo_pool = LabelledPool(name="pseudo-labelled target")
        self.calibrated_camera, self._calibrated_pose = self._calibrated_camera(target_camera)
        self.camera = self.target_camera(target_camera_pose)
        self.evidence = evidence_filter_from_config(
            config.evidence,
            min(config.label_alignment.score_threshold, config.self_training.score_threshold),
            device=str(self.device),
        )
        self.aligner = LabelAligner(
            simulator=self.sim,
            camera=self.camera,
            score_threshold=config.label_alignment.score_threshold,
            refit=config.label_alignment.refit_content,
            refit_blend=config.label_alignment.refit_blend,
            min_class_fraction=config.label_alignment.min_class_fraction,
        )
        # discriminators
        c_z = self.model.encoder.out_channels
        a, p = config.appearance_alignment, config.prediction_alignment
        self.disc_z = (
            ConvDiscriminator(in_channels=c_z, hidden_channels=a.hidden_channels, num_layers=a.num_layers).to(
                self.device
            )
            if a.enabled and a.discriminator
            else None
        )
        self.disc_heat = (
            ConvDiscriminator(
                in_channels=self.model.num_classes, hidden_channels=p.hidden_channels, num_layers=p.num_layers
            ).to(self.device)
            if p.enabled
            else None
        )
        self.disc_rel = (
            VectorDiscriminator(in_features=self.model.num_predicates + 2, hidden_features=p.hidden_channels).to(
                self.device
            )
            if p.enabled
            else None
        )
        # The one optimisation engine (train.optim): the model and each discriminator are groups of one
        # AdamW, every group on the same warm-up + cosine schedule from its own base rate; the
        # discriminators keep GAN betas and no weight decay (Adam), and step only when they got a gradient.
        groups = [ParamGroup("model", list(self.model.parameters()))]
        discriminators = (
            ("disc_z", self.disc_z, a.lr),
            ("disc_heat", self.disc_heat, p.lr),
            ("disc_rel", self.disc_rel, p.lr),
        )
        for name, d, lr in discriminators:
            if d is not None:
                params = list(d.parameters())
                groups.append(ParamGroup(name, params, lr=lr, betas=DISCRIMINATOR_BETAS, weight_decay=0.0))
        self.optim = Optimization(
            groups,
            lr=config.lr,
            weight_decay=config.weight_decay,
            warmup_steps=config.warmup_steps,
            total_steps=config.total_steps,
            grad_clip=config.grad_clip,
            device=self.device,
            amp=config.amp,
        )
        self._ddp = None
        if self.dist.launched:  # the model and every discriminator average their gradients over the ranks
            # find_unused_parameters: discriminators sit out warm-up rounds and pair-less batches
            self._ddp = data_parallel(_AdaptLoss(self), self.device, find_unused_parameters=True)
        self.round_scenes: list[dict] = []  # what the current round trains on (for resume)
        self.round_pseudo: list[dict] = []
        self.history: list[dict] = []

    def _calibrated_camera(self, source_camera):
        """(calibrated camera or None, its own (height, pitch) or None): ``config.camera_info`` (loaded
        with the source mean pose; a KITTI P2 keeps its own pitch) > the target source's camera
        (intrinsics only: its pose counts only as the source's reported pose)."""
        if self.cfg.camera_info:
            h0, p0 = self.sim.content.camera.mean_pose
            first = self.target_images[0]
            cam = load_camera(
                self.cfg.camera_info,
                height_m=h0,
                pitch=None if calibration_kind(self.cfg.camera_info) == "kitti" else p0,
                image_size=(int(first.shape[1]), int(first.shape[0])),
            )
            return cam, (cam.height_m, cam.pitch)
        return source_camera, None

    def aligned_image_size(self) -> tuple[int, int]:
        """Size label-aligned scenes are rendered at. Without a calibrated camera: the model input.
        With one: the size whose preprocessing (crop + resize) matches a target frame's, i.e. the
        frame's content size inside the input (letterbox), rows added back for the cropped band."""
        cal = self.calibrated_camera
        if cal is None:
            return self.input_size
        g = ResizeSpec(self.input_size, self.resize_mode, self.crop_bottom).geometry((cal.width, cal.height))
        cw, ch = g.content_size
        return int(cw), max(int(round(ch * cal.height / g.kept_height)), 1)

    def target_camera(self, reported_pose: Optional[tuple]):
        """The target camera: intrinsics from the calibrated camera (scaled to
        :meth:`aligned_image_size`) else the simulator's; pose from the config's camera_height/pitch >
        the target source's reported pose > the calibrated camera's own pose > the source mean pose; with
        ``label_alignment.camera_pose: estimated`` the source mean pose, replaced every round by the pose
        estimated from the pseudo-labels."""
        if self.cfg.label_alignment.camera_pose == "estimated":
            height, pitch = self.sim.content.camera.mean_pose  # a start only: re-estimated every round
        else:
            if reported_pose is not None:
                height, pitch = reported_pose
            elif self._calibrated_pose is not None:
                height, pitch = self._calibrated_pose
            else:
                height, pitch = self.sim.content.camera.mean_pose
            if self.cfg.camera_height is not None:
                height = self.cfg.camera_height
            if self.cfg.camera_pitch is not None:
                pitch = self.cfg.camera_pitch
        base = (
            self.sim.camera
            if self.calibrated_camera is None
            else self.calibrated_camera.scaled(*self.aligned_image_size())
        )
        return base.with_pose(float(height), float(pitch))

    # -- properties of the schedule -----------------------------------------------------------------
    @property
    def total_steps(self) -> int:
        return self.cfg.total_steps

    def adversarial_start_step(self) -> int:
        warm = self.cfg.warmup_rounds if (self.cfg.label_alignment.enabled or self.cfg.self_training.enabled) else 0
        return warm * self.cfg.steps_per_round

    def grl_strength(self, step: int) -> float:
        start = self.adversarial_start_step()
        if step < start or not self.cfg.adversarial_enabled():
            return 0.0
        span = max(self.total_steps - start, 1)
        return grl_lambda((step - start) / span, self.cfg.grl_gamma)

    # -- analysis / synthesis ------------------------------------------------------------------------
    def predict_target(self) -> list[SceneGraph]:
        """Predictions on this rank's share of the target frames (all of them in one process)."""
        thr = min(self.cfg.label_alignment.score_threshold, self.cfg.self_training.score_threshold, 0.3)
        pred = Predictor(
            self.model,
            self.vocab,
            self.input_size,
            self.mean,
            self.std,
            device=str(self.device),
            resize_mode=self.resize_mode,
            crop_bottom=self.crop_bottom,
            score_threshold=thr,
            batch_size=16,
        )
        try:
            return pred.predict(self.local_targets)
        finally:
            self.model.train()

    def _gather_predictions(self, local: list, evidence: Optional[dict]) -> tuple[list, Optional[dict]]:
        """Every rank's predictions in global target order (and the evidence counts summed)."""
        parts = all_gather_objects(([g.to_dict() for g in local], evidence))
        if len(parts) == 1:
            return local, evidence
        world = len(parts)
        graphs: list = [None] * len(self.target_images)
        for rank, (gs, _) in enumerate(parts):
            for k, g in enumerate(gs):
                graphs[rank + k * world] = SceneGraph.from_dict(g)
        if evidence is None:
            return graphs, None
        scored = sum(e["scored"] for _, e in parts)
        total = sum((e["mean_evidence"] or 0.0) * e["scored"] for _, e in parts)
        return graphs, {
            "scored": scored,
            "rejected": sum(e["rejected"] for _, e in parts),
            "mean_evidence": round(total / scored, 4) if scored else None,
        }

    def analysis_synthesis(self, round_index: int) -> dict:
        """One analysis + synthesis round; fills the pools the next training steps draw from."""
        info: dict = {"round": round_index}
        cfg = self.cfg
        if not (cfg.label_alignment.enabled or cfg.self_training.enabled):
            return info
        t0 = time.perf_counter()
        preds, evidence = self.predict_target(), None
        if self.evidence is not None:
            preds, evidence = self.evidence.filter(preds, self.local_targets)
        preds, evidence = self._gather_predictions(preds, evidence)  # pseudo-statistics of all ranks
        if evidence is not None:
            info["evidence"] = evidence
        if cfg.label_alignment.enabled:
            if cfg.label_alignment.camera_pose == "estimated":
                info["estimated_pose"] = self._estimate_pose(preds, round_index)
            aligned_preds = preds
            if cfg.label_alignment.class_balanced_fraction > 0:
                aligned_preds, thresholds = class_balanced_scores(
                    preds, cfg.label_alignment.score_threshold, cfg.label_alignment.class_balanced_fraction
                )
                info["class_thresholds"] = {self.vocab.classes[c]: round(t, 3) for c, t in sorted(thresholds.items())}
            analysis = self.aligner.analyse(aligned_preds)
            rng = np.random.default_rng([cfg.seed, round_index, 1])
            scenes = self.aligner.synthesis_scenes(
                analysis, cfg.label_alignment.samples_per_round, cfg.label_alignment.generated_fraction, rng
            )
            self.round_scenes = [s.to_dict() for s in scenes]
            self._render_aligned()
            info.update(
                pseudo_objects=analysis.objects,
                reconstructed_scenes=len(analysis.scenes),
                pseudo_class_counts=analysis.class_counts,
                aligned_class_counts=_class_counts(self.aligned_pool.graphs),
            )
        if cfg.self_training.enabled:
            pseudo = pseudo_label_graphs(preds, cfg.self_training.score_threshold)
            self.round_pseudo = [g.to_dict() for g in pseudo]
            self._build_pseudo_pool()
            info.update(self_training_objects=sum(len(g.objects) for g in pseudo))
            info.setdefault("pseudo_objects", info["self_training_objects"])
        info["analysis_seconds"] = round(time.perf_counter() - t0, 2)
        return info

    def _estimate_pose(self, preds: list, round_index: int) -> Optional[dict]:
        """Move the label aligner's camera to the pose the pseudo-labels imply (kept when too few)."""
        est = estimate_camera_pose(
            preds,
            self.aligner.camera,
            self.sim.env,
            score_threshold=self.cfg.label_alignment.score_threshold,
            seed=self.cfg.seed * 1000 + round_index,
        )
        if est is None:
            return None
        self.aligner.camera = self.aligner.camera.with_pose(est.height_m, est.pitch)
        return {
            "height_m": round(est.height_m, 3),
            "pitch": round(est.pitch, 4),
            "objects": est.objects,
            "rms_log_scale": round(est.rms_log_scale, 3),
        }

    def _render_aligned(self) -> None:
        """Render this rank's share of the round's label-aligned scenes (every scene in one process)."""
        scenes = [SceneDescription.from_dict(d) for d in self.dist.shard(self.round_scenes)]
        images, graphs = self.aligner.render(scenes)
        self.aligned_pool = LabelledPool(images, graphs, name="label-aligned")

    def _build_pseudo_pool(self) -> None:
        """Pseudo-labelled frames of this rank's share (``round_pseudo`` holds every target frame's)."""
        graphs = [SceneGraph.from_dict(d) for d in self.round_pseudo]
        mine = set(range(self.dist.rank, len(graphs), self.dist.world_size))
        keep = [i for i, g in enumerate(graphs) if g.objects and i in mine]
        self.pseudo_pool = LabelledPool(
            [self.target_images[i] for i in keep], [graphs[i] for i in keep], name="pseudo-labelled target"
        )

    # -- one training step ----------------------------------------------------------------------------
    def _labelled_batch(self, rng) -> tuple[list, list]:
        # Each batch: a share of plain source images, the rest from the pools this round filled
        # (label-aligned renders and/or pseudo-labelled target frames, split evenly when both).
        cfg, b = self.cfg, self.batch_size
        others, frac = [], 1.0
        if cfg.label_alignment.enabled and len(self.aligned_pool):
            others.append(self.aligned_pool)
            frac = cfg.label_alignment.source_fraction
        if cfg.self_training.enabled and len(self.pseudo_pool):
            others.append(self.pseudo_pool)
            frac = min(frac, cfg.self_training.source_fraction)
        n_src = b if not others else int(round(b * frac))
        imgs, graphs = self.source_pool.sample(rng, n_src) if n_src else ([], [])
        rest = b - n_src
        for k, pool in enumerate(others):
            n = rest // len(others) + (1 if k < rest % len(others) else 0)
            if n:
                i2, g2 = pool.sample(rng, n)
                imgs, graphs = imgs + i2, graphs + g2
        return _hflip_batch(imgs, graphs, self.vocab.predicates, rng)

    def _to_tensor(self, images) -> torch.Tensor:
        return images_to_tensor(images, self.input_size, self.mean, self.std, self.resize_mode, self.crop_bottom).to(
            self.device
        )

    def train_step(self) -> dict:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, self.step, 2] + self._rank_seed)
        # torch draws (box jitter, pair sampling) seeded per step too, so a resumed run replays exactly
        torch.manual_seed(int(rng.integers(0, 2**62)))
        self.model.train()
        if self.bn_mode == "frozen":
            freeze_batchnorm(self.model)
        images, graphs = self._labelled_batch(rng)
        a = cfg.appearance_alignment
        if a.enabled and a.spectrum_beta > 0:
            images = stylise_batch(images, self.local_targets, rng, a.spectrum_beta, a.spectrum_probability)
        sizes = [(im.shape[1], im.shape[0]) for im in images]
        targets = self.model.build_targets(graphs, source_sizes=sizes)
        lam = self.grl_strength(self.step)
        after_warmup = self.step >= self.adversarial_start_step()
        adversarial = cfg.adversarial_enabled() and after_warmup
        t_imgs: list = []
        if cfg.target_frames_in_batches() and after_warmup:
            t_idx = rng.integers(0, len(self.local_targets), size=self.target_batch_size)
            t_imgs = [self.local_targets[i] for i in t_idx]
        x = self._to_tensor(images + t_imgs)
        step_losses = self._ddp if self._ddp is not None else self.losses
        with self.optim.autocast():
            losses, metrics = step_losses(x, list(targets) + [None] * len(t_imgs), len(images), lam, adversarial)
        logged = self.optim.step(losses)  # NaN guard, clip, schedule: the same engine as Trainer
        # the summed loss is reported as "loss" ("total" means the step count in progress reports)
        metrics["loss"] = logged.pop("total")
        metrics.update(logged)
        metrics["grl_lambda"] = lam
        return metrics

    def losses(self, x: torch.Tensor, targets: list, n_l: int, lam: float, adversarial: bool) -> tuple[dict, dict]:
        """Named losses (and discriminator accuracies) of one batch: ``x`` = ``n_l`` labelled images, then
        unlabelled target frames; the supervised, appearance and prediction alignment losses."""
        cfg = self.cfg
        out = self.model(x, targets)
        losses = dict(out["losses"])
        metrics = {}
        if adversarial:
            if self.disc_z is not None:
                l_z, metrics["disc_z_acc"] = _map_adversarial(self.disc_z, out["features"], n_l, lam)
                losses["appearance_adv"] = cfg.appearance_alignment.weight * l_z
            if self.disc_heat is not None:
                heat = torch.sigmoid(out["heatmap"].float())
                l_h, metrics["disc_heat_acc"] = _map_adversarial(self.disc_heat, heat, n_l, lam)
                l_r, acc_r = self._relation_adversarial(out, n_l, lam)
                losses["prediction_adv"] = cfg.prediction_alignment.weight * (l_h + (l_r if l_r is not None else 0.0))
                if acc_r is not None:
                    metrics["disc_rel_acc"] = acc_r
        return losses, metrics

    def _relation_adversarial(self, out: dict, n_l: int, lam: float):
        """Discriminator on the relationship predictions of detected pairs (predicate probabilities
        plus the pair's two detection scores), source pairs vs. target pairs."""
        if self.disc_rel is None:
            return None, None
        dets = self.model.decode(
            {k: out[k].detach() for k in ("heatmap", "size", "offset")} | {"image_size": out["image_size"]},
            score_threshold=0.3,
        )
        rels = self.model.infer_relations(out["features"], dets, out["image_size"])
        src: list[torch.Tensor] = []
        tgt: list[torch.Tensor] = []
        for i, (d, r) in enumerate(zip(dets, rels)):
            if not len(r["pairs"]):
                continue
            prob = torch.softmax(r["logits"].float(), dim=-1)
            sc = d["scores"].float()
            v = torch.cat([prob, sc[r["pairs"][:, 0], None], sc[r["pairs"][:, 1], None]], dim=1)
            (src if i < n_l else tgt).append(v)
        if not src or not tgt:
            return None, None
        vs = grad_reverse(torch.cat(src), lam)
        vt = grad_reverse(torch.cat(tgt), lam)
        ls, lt = self.disc_rel(vs), self.disc_rel(vt)
        loss = 0.5 * (domain_bce(ls, SOURCE_LABEL) + domain_bce(lt, TARGET_LABEL))
        return loss, 0.5 * (domain_accuracy(ls, SOURCE_LABEL) + domain_accuracy(lt, TARGET_LABEL))

    # -- state (resume) --------------------------------------------------------------------------
    def save(self, path: PathLike, extra: dict, with_optimizer: bool = False) -> None:
        """The model as a checkpoint (atomic), with ``extra`` and, to resume, the optimiser's state."""
        save_checkpoint(
            Path(path),
            self.model,
            self.exp_cfg,
            self.vocab,
            self.input_size,
            self.mean,
            self.std,
            extra=extra,
            optimizer=self.optim.optimizer if with_optimizer else None,
            step=self.step,
        )

    def state(self) -> dict:
        return {
            "step": self.step,
            "config": config_to_dict(self.cfg),
            "init_model_id": self.init_model_id,
            "round_scenes": self.round_scenes,
            "round_pseudo": self.round_pseudo,
            "history": self.history,
            "discriminators": {
                k: d.state_dict()
                for k, d in (("z", self.disc_z), ("heat", self.disc_heat), ("rel", self.disc_rel))
                if d is not None
            },
            "scheduler": self.optim.scheduler.state_dict(),
            "content": content_to_dict(self.aligner.content),
            "camera_pose": [self.aligner.camera.height_m, self.aligner.camera.pitch],
        }

    def load_state(self, st: dict) -> None:
        if st.get("scheduler"):
            self.optim.scheduler.load_state_dict(st["scheduler"])
        self.step = int(st["step"])  # after the scheduler's state, which carries a step count too
        self.round_scenes = list(st.get("round_scenes") or [])
        self.round_pseudo = list(st.get("round_pseudo") or [])
        self.history = list(st.get("history") or [])
        for k, d in (("z", self.disc_z), ("heat", self.disc_heat), ("rel", self.disc_rel)):
            if d is not None and k in st["discriminators"]:
                d.load_state_dict(st["discriminators"][k])
        if st.get("content"):
            self.aligner.content = parse_content(st["content"], self.aligner.env, "adaptation resume state")
        if st.get("camera_pose"):
            self.aligner.camera = self.aligner.camera.with_pose(*(float(v) for v in st["camera_pose"]))
        if self.round_scenes:
            self._render_aligned()
        if self.round_pseudo:
            self._build_pseudo_pool()


def _map_adversarial(disc, maps: torch.Tensor, n_l: int, lam: float) -> tuple[torch.Tensor, float]:
    """Domain loss of a per-pixel + per-image discriminator on ``maps`` (the first ``n_l`` from the
    labelled stream) behind a gradient-reversal layer, and the discriminator's image-level accuracy."""
    reversed_maps = grad_reverse(maps, lam)
    pix_s, img_s = disc(reversed_maps[:n_l])
    pix_t, img_t = disc(reversed_maps[n_l:])
    loss = 0.5 * (
        domain_bce(pix_s, SOURCE_LABEL)
        + domain_bce(pix_t, TARGET_LABEL)
        + domain_bce(img_s, SOURCE_LABEL)
        + domain_bce(img_t, TARGET_LABEL)
    )
    return loss, 0.5 * (domain_accuracy(img_s, SOURCE_LABEL) + domain_accuracy(img_t, TARGET_LABEL))


def _class_counts(graphs: Iterable[SceneGraph]) -> dict:
    counts: dict = {}
    for g in graphs:
        for o in g.objects:
            counts[o.class_name] = counts.get(o.class_name, 0) + 1
    return counts


def resume_path_for(out_checkpoint: PathLike) -> Path:
    out = Path(out_checkpoint)
    return out.with_name(out.name + RESUME_SUFFIX)


def run_adaptation(
    init_checkpoint: PathLike,
    target_source: Union[TargetSource, Sequence[np.ndarray]],
    out_checkpoint: PathLike,
    config: Optional[AdaptConfig] = None,
    progress_callback: Optional[ProgressCallback] = None,
    resume: bool = True,
    should_stop: Optional[Callable[[], bool]] = None,
    dist: Optional[DistContext] = None,
    device: str = "auto",
) -> AdaptResult:
    """Adapt the model in ``init_checkpoint`` to ``target_source``'s images; write ``out_checkpoint``.

    * ``target_source``: a :class:`TargetSource` (images only) or a list of RGB uint8 arrays.
    * ``config``: :class:`AdaptConfig` (default: ``config/adapt/default.yaml``); ``config.env`` must
      be the simulator environment the checkpoint's classes come from.
    * ``progress_callback(step, total, metrics)`` is called after every step (and with
      ``metrics["phase"] == "analysis"`` after each analysis/synthesis round).
    * ``should_stop()`` (optional) is polled every step; when it returns True the run saves its
      resumable state and raises :class:`KeyboardInterrupt`-free :class:`AdaptationInterrupted`.
    * With ``resume=True`` an interrupted run (state file ``<out>.resume``) continues where it left off.
    * ``dist`` / ``device``: a torchrun process (:func:`sim2sg_core.utils.distributed.init_from_env`):
      every rank loads the same frames and resume state, rank 0 alone writes files (and reports
      progress), and all ranks return once the output exists.
    """
    cfg = config if config is not None else load_adapt_config()
    cfg.validate()
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    if not isinstance(target_source, TargetSource):
        target_source = ArrayTargetSource(target_source)
    t_start = time.perf_counter()
    # Target images first: a wrong bag topic or an empty folder fails before any model work.
    target_images = target_source.load(cfg.max_target_images)
    ck = load_checkpoint(init_checkpoint)
    model = model_from_checkpoint(ck)
    if not cfg.env:
        cfg = dataclasses.replace(cfg, env=ck["config"].train.env)
    adapter = Sim2SGAdapter(
        model=model,
        vocab=ck["vocab"],
        experiment_config=ck["config"],
        input_size=ck["input_size"],
        mean=ck["mean"],
        std=ck["std"],
        config=cfg,
        target_images=target_images,
        init_model_id=ck["model_id"],
        target_camera_pose=target_source.camera_pose,
        target_camera=getattr(target_source, "camera", None),
        dist=dist,
        device=device,
    )
    dist = adapter.dist
    out = Path(out_checkpoint)
    resume_file = resume_path_for(out)
    resumed_from = 0
    if resume and resume_file.exists():
        rk = load_checkpoint(resume_file, expect_vocab=ck["vocab"])
        st = (rk.get("extra") or {}).get("adapt_state")
        if not st:
            raise AdaptationError(f"resume file {resume_file} holds no adaptation state; delete it to start over")
        if st.get("config") != config_to_dict(cfg) or st.get("init_model_id") != ck["model_id"]:
            raise AdaptationError(
                f"resume file {resume_file} belongs to a run with another config or init "
                "checkpoint; delete it to start over"
            )
        model.load_state_dict(rk["state_dict"])
        if rk.get("optimizer"):
            adapter.optim.load_state_dict({"optimizer": rk["optimizer"]})
        adapter.load_state(st)
        resumed_from = adapter.step
        log.info("resuming adaptation from step %d (%s)", resumed_from, resume_file)

    def save_state():
        if not dist.is_main:
            return
        adapter.save(resume_file, {"adapt_state": adapter.state()}, with_optimizer=True)

    total = cfg.total_steps
    bar = None
    if cfg.progress_bar and dist.is_main:
        bar = tqdm(total=total, initial=adapter.step, desc="sim2sg adapt", unit="step", dynamic_ncols=True)
    round_losses: dict = {}
    try:
        while adapter.step < total:
            r = adapter.step // cfg.steps_per_round
            if adapter.step % cfg.steps_per_round == 0:
                info = adapter.analysis_synthesis(r)
                adapter.history.append(info)
                save_state()
                if progress_callback is not None and dist.is_main:
                    progress_callback(adapter.step, total, {"phase": "analysis", **info})
            m = adapter.train_step()
            for k, v in m.items():
                round_losses.setdefault(k, []).append(v)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(round=r, loss=f"{m['loss']:.3f}", lam=f"{m['grl_lambda']:.2f}")
            if progress_callback is not None and dist.is_main:
                progress_callback(adapter.step, total, {"phase": "train", "round": r, **m})
            end_of_round = adapter.step % cfg.steps_per_round == 0
            if end_of_round and adapter.history:
                adapter.history[-1]["mean_metrics"] = {k: float(np.mean(v)) for k, v in round_losses.items()}
                round_losses = {}
            if end_of_round or (cfg.checkpoint_every and adapter.step % cfg.checkpoint_every == 0):
                if adapter.step < total:
                    save_state()
            stop = should_stop is not None and should_stop()
            if dist.launched:  # rank 0's decision, so all ranks stop at the same step
                stop = from_main(1.0 if stop else 0.0) > 0
            if stop:
                save_state()
                raise AdaptationInterrupted(
                    f"adaptation stopped at step {adapter.step}/{total}; state saved to {resume_file}"
                )
    finally:
        if bar is not None:
            bar.close()
    extra = {
        "adaptation": {
            "config": config_to_dict(cfg),
            "init_model_id": ck["model_id"],
            "target": target_source.description,
            "target_images": len(target_images),
            # the camera label alignment lifted and rendered through (at the render size),
            # and the calibration it came from (None: the simulator's own camera)
            "target_camera": adapter.camera.to_dict(),
            "calibrated_camera": (
                adapter.calibrated_camera.to_dict() if adapter.calibrated_camera is not None else None
            ),
            "camera_info": cfg.camera_info or ("target source" if adapter.calibrated_camera is not None else ""),
            "history": adapter.history,
        }
    }
    if dist.is_main:
        adapter.save(out, extra)
        resume_file.unlink(missing_ok=True)
    barrier()  # no rank returns before rank 0's output exists
    return AdaptResult(
        checkpoint=str(out),
        steps=adapter.step,
        rounds=cfg.rounds,
        seconds=time.perf_counter() - t_start,
        resumed_from_step=resumed_from,
        history=adapter.history,
        target_images=len(target_images),
    )


class AdaptationInterrupted(RuntimeError):
    """``should_stop`` asked the run to stop; its resumable state was saved."""


def adapt_from_bags(
    init_checkpoint: PathLike,
    bag_paths: Union[PathLike, Sequence[PathLike]],
    topic: str,
    out_checkpoint: PathLike,
    config: Optional[AdaptConfig] = None,
    progress_callback: Optional[ProgressCallback] = None,
    resume: bool = True,
    should_stop: Optional[Callable[[], bool]] = None,
) -> AdaptResult:
    """Adapt ``init_checkpoint`` to the images of ``topic`` in rosbag2 bag(s); what the ROS node calls.

    A topic missing from the bags raises ``sim2sg_core.data.bags.BagTopicError`` listing the image
    topics that are present (before any training starts).
    """
    return run_adaptation(
        init_checkpoint,
        BagTargetSource(bag_paths, topic),
        out_checkpoint,
        config=config,
        progress_callback=progress_callback,
        resume=resume,
        should_stop=should_stop,
    )
