"""One adaptation run's state and its two kinds of work: :class:`Sim2SGAdapter`.

The adapter holds the model, the discriminators (:mod:`~sim2sg_core.adapt.adversarial`), the labelled pools
(:mod:`~sim2sg_core.adapt.pools`), the label aligner with its target camera
(:mod:`~sim2sg_core.adapt.target_camera`) and the one optimisation engine
(:class:`~sim2sg_core.train.optim.Optimization`). :meth:`Sim2SGAdapter.analysis_synthesis` runs one
analysis / synthesis round (predict on the target frames, vet, gather over ranks, label alignment and / or
pseudo-labels, fill the pools); :meth:`Sim2SGAdapter.train_step` one training step, which ends in
:meth:`Optimization.step` like ``train.trainer.Trainer.train_step``. The loop that alternates them, with
resume and the output checkpoint, is :func:`sim2sg_core.adapt.sim2sg.run_adaptation`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch

from sim2sg_core.adapt.adversarial import Discriminators
from sim2sg_core.adapt.appearance import stylise_batch
from sim2sg_core.adapt.config import AdaptConfig, config_to_dict
from sim2sg_core.adapt.evidence import evidence_filter_from_config
from sim2sg_core.adapt.grl import grl_lambda
from sim2sg_core.adapt.label_alignment import LabelAligner, class_balanced_scores
from sim2sg_core.adapt.pools import (
    LabelledPool,
    class_counts,
    labelled_batch,
    pseudo_label_graphs,
    render_source_pool,
)
from sim2sg_core.adapt.pose import estimate_camera_pose
from sim2sg_core.adapt.target_camera import aligned_image_size, calibrated_camera, resolve_target_camera
from sim2sg_core.model.checkpoint import model_from_checkpoint, save_checkpoint
from sim2sg_core.model.predictor import Predictor
from sim2sg_core.model.preprocess import images_to_tensor
from sim2sg_core.scene_graph import SceneGraph
from sim2sg_core.sim import Simulator
from sim2sg_core.sim.domains import content_to_dict, parse_content
from sim2sg_core.sim.scene import SceneDescription
from sim2sg_core.train.optim import Optimization, ParamGroup, StepsThroughEngine
from sim2sg_core.train.trainer import apply_batchnorm_mode, train_mode
from sim2sg_core.utils.device import resolve_device
from sim2sg_core.utils.distributed import DistContext, all_gather_objects, data_parallel

PathLike = Union[str, os.PathLike]


class AdaptationError(RuntimeError):
    """Adaptation cannot proceed (bad resume state, no target images, ...)."""


class _AdaptLoss(torch.nn.Module):
    """The model and the discriminators as one module whose forward is :meth:`Sim2SGAdapter.losses`,
    so DistributedDataParallel averages every gradient of an adaptation step over the ranks."""

    def __init__(self, adapter: "Sim2SGAdapter"):
        super().__init__()
        self.model = adapter.model
        self.discriminators = torch.nn.ModuleList(adapter.adversarial.modules())
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
        self.calibrated_camera, self._calibrated_pose = calibrated_camera(
            config.camera_info, target_camera, self.sim.content.camera.mean_pose, self.target_images[0]
        )
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
        self.adversarial = Discriminators.from_config(
            config,
            feature_channels=self.model.encoder.out_channels,
            num_classes=self.model.num_classes,
            num_predicates=self.model.num_predicates,
            device=self.device,
        )
        # The one optimisation engine (train.optim): the model and each discriminator are groups of one
        # AdamW, every group on the same warm-up + cosine schedule from its own base rate; the
        # discriminators keep GAN betas and no weight decay (Adam), and step only when they got a gradient.
        groups = [ParamGroup("model", list(self.model.parameters()))] + self.adversarial.param_groups()
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

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: dict,
        config: AdaptConfig,
        target_images: Sequence[np.ndarray],
        *,
        target_camera_pose: Optional[tuple] = None,
        target_camera=None,
        device: str = "auto",
        dist: Optional[DistContext] = None,
    ) -> "Sim2SGAdapter":
        """An adapter for the model in ``checkpoint`` (as :func:`~sim2sg_core.model.checkpoint.load_checkpoint`
        returns it): its weights, vocabulary, experiment config and preprocessing."""
        return cls(
            model=model_from_checkpoint(checkpoint),
            vocab=checkpoint["vocab"],
            experiment_config=checkpoint["config"],
            input_size=checkpoint["input_size"],
            mean=checkpoint["mean"],
            std=checkpoint["std"],
            config=config,
            target_images=target_images,
            init_model_id=checkpoint["model_id"],
            target_camera_pose=target_camera_pose,
            target_camera=target_camera,
            dist=dist,
            device=device,
        )

    # -- the discriminators (None when their alignment is off) ---------------------------------------
    @property
    def disc_z(self):
        return self.adversarial.disc_z

    @property
    def disc_heat(self):
        return self.adversarial.disc_heat

    @property
    def disc_rel(self):
        return self.adversarial.disc_rel

    # -- the target camera (adapt.target_camera) ------------------------------------------------------
    def aligned_image_size(self) -> tuple[int, int]:
        """Size label-aligned scenes are rendered at (:func:`~sim2sg_core.adapt.target_camera.aligned_image_size`)."""
        return aligned_image_size(self.input_size, self.resize_mode, self.crop_bottom, self.calibrated_camera)

    def target_camera(self, reported_pose: Optional[tuple]):
        """The target camera at the pose :func:`~sim2sg_core.adapt.target_camera.resolve_target_camera`
        orders (``reported_pose``: the target source's, or None)."""
        return resolve_target_camera(
            self.cfg,
            simulator_camera=self.sim.camera,
            mean_pose=self.sim.content.camera.mean_pose,
            calibrated=self.calibrated_camera,
            calibrated_pose=self._calibrated_pose,
            reported_pose=reported_pose,
            image_size=self.aligned_image_size(),
        )

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
                aligned_class_counts=class_counts(self.aligned_pool.graphs),
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
        cfg = self.cfg
        others, frac = [], 1.0
        if cfg.label_alignment.enabled and len(self.aligned_pool):
            others.append(self.aligned_pool)
            frac = cfg.label_alignment.source_fraction
        if cfg.self_training.enabled and len(self.pseudo_pool):
            others.append(self.pseudo_pool)
            frac = min(frac, cfg.self_training.source_fraction)
        return labelled_batch(self.source_pool, others, frac, self.batch_size, self.vocab.predicates, rng)

    def _to_tensor(self, images) -> torch.Tensor:
        return images_to_tensor(images, self.input_size, self.mean, self.std, self.resize_mode, self.crop_bottom).to(
            self.device
        )

    def train_step(self) -> dict:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, self.step, 2] + self._rank_seed)
        # torch draws (box jitter, pair sampling) seeded per step too, so a resumed run replays exactly
        torch.manual_seed(int(rng.integers(0, 2**62)))
        train_mode(self.model, self.bn_mode)
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
        out = self.model(x, targets)
        losses = dict(out["losses"])
        metrics: dict = {}
        if adversarial:
            adv_losses, metrics = self.adversarial.losses(self.model, out, n_l, lam)
            losses.update(adv_losses)
        return losses, metrics

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
            "discriminators": self.adversarial.state_dict(),
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
        self.adversarial.load_state_dict(st["discriminators"])
        if st.get("content"):
            self.aligner.content = parse_content(st["content"], self.aligner.env, "adaptation resume state")
        if st.get("camera_pose"):
            self.aligner.camera = self.aligner.camera.with_pose(*(float(v) for v in st["camera_pose"]))
        if self.round_scenes:
            self._render_aligned()
        if self.round_pseudo:
            self._build_pseudo_pool()
