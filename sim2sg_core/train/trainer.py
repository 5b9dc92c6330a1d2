"""Trainer: supervised training through the one optimisation engine (``train.optim.Optimization``:
AdamW, warm-up/cosine schedule, NaN guard, gradient clipping, AMP), with a named-loss progress bar,
atomic checkpoints and resume.

Domain adaptation (``adapt.sim2sg``) has its own loop, because its batches, rounds and resume state
differ; both loops compute named losses and hand them to the same :meth:`Optimization.step`, and set
the model to training with :func:`train_mode`. ``train_step(batch)`` does one optimiser step and is
usable on its own with your own batches.

Under ``torchrun`` (a :class:`~sim2sg_core.utils.distributed.DistContext` with ``launched``), the
model's loss runs inside one DistributedDataParallel module, so every gradient is averaged over the
processes; each process reads its own disjoint share of the data (DistributedSampler, batch =
``batch_size / world_size``), only rank 0 writes checkpoints, and every rank resumes from the same
``last.pt``.

Batches are dicts from ``sim2sg_core.model.preprocess.Collator``: ``images`` (B,3,H,W) and
``targets`` (list, None = unlabelled image).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Iterable, Optional, TypeVar, cast

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from sim2sg_core.data.datasets import KittiDataset
from sim2sg_core.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from sim2sg_core.model.config import ExperimentConfig
from sim2sg_core.model.preprocess import Collator
from sim2sg_core.model.sg_model import SGModel
from sim2sg_core.scene_graph import Vocabulary
from sim2sg_core.sim.dataset import SimDataset
from sim2sg_core.sim.domains import load_environment
from sim2sg_core.train.optim import Optimization, ParamGroup, StepsThroughEngine, TrainingDivergedError, WarmupCosine
from sim2sg_core.utils.device import resolve_device
from sim2sg_core.utils.distributed import DistContext, barrier, data_parallel, from_main

#: re-exported: the engine's pieces were defined here before ``train/optim.py`` existed
__all__ = ["Trainer", "TrainingDivergedError", "WarmupCosine", "open_dataset"]


def open_dataset(
    data: str,
    length: int,
    seed: int,
    vocab: Optional[Vocabulary] = None,
    env_for_kitti: str = "drive",
    camera=None,
    camera_pose_from_camera: bool = False,
    class_map=None,
):
    """``ENV:DOMAIN`` → simulator dataset (``length`` images of ``seed``; rendered through ``camera``, a
    :class:`~sim2sg_core.geometry.Camera`, if given, at its image size); an existing folder → its
    KITTI-format labels (the first ``length``, relationships by the shared rule), named as in ``vocab``
    (types mapped by ``class_map``: a YAML path, a name in ``config/class_maps/``, None = ``kitti``).

    Returns ``(dataset, vocab)``; a dataset yields ``(rgb uint8 HxWx3, SceneGraph)``.
    """
    path = Path(data)
    if path.is_dir():
        if vocab is None:  # training from a folder: the environment's vocabulary (drive by default)
            vocab = load_environment(env_for_kitti).vocab
        return KittiDataset(path, class_map=class_map, vocab=vocab, max_items=length or None), vocab
    if ":" not in data:
        raise ValueError(f"data {data!r} is neither an existing KITTI folder nor ENV:DOMAIN (e.g. drive:source)")
    env, domain = data.split(":", 1)
    ds = SimDataset(
        env,
        domain,
        seed,
        length,
        image_size=camera.size if camera is not None else None,
        camera=camera,
        camera_pose_from_camera=camera_pose_from_camera,
    )
    return ds, ds.vocab


def freeze_batchnorm(module: nn.Module) -> None:
    """Every BatchNorm layer to eval mode: normalise with running statistics and never update them."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def batchnorm_mode(mode: str, dist: DistContext, device: torch.device) -> str:
    """``auto`` → ``sync`` for a multi-process CUDA run, else ``batch``; ``sync`` without CUDA is an error
    (torch's SyncBatchNorm runs on GPUs only; use ``frozen`` or ``batch`` on CPU)."""
    if mode == "auto":
        return "sync" if dist.world_size > 1 and device.type == "cuda" else "batch"
    if mode == "sync" and device.type != "cuda":
        raise ValueError("train.batchnorm 'sync' needs CUDA (torch's SyncBatchNorm); on CPU use 'batch' or 'frozen'")
    return mode


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def apply_batchnorm_mode(model: ModuleT, mode: str, dist: DistContext, device: torch.device) -> tuple[ModuleT, str]:
    """(model, resolved mode): the model with SyncBatchNorm layers when the mode resolves to ``sync``.
    ``frozen`` is applied per step (:func:`freeze_batchnorm` after ``.train()``)."""
    mode = batchnorm_mode(mode, dist, device)
    if mode == "sync":
        # converted in place: a root that is not itself a BatchNorm layer comes back as the same object
        model = cast(ModuleT, nn.SyncBatchNorm.convert_sync_batchnorm(model))
    return model, mode


def train_mode(model: nn.Module, bn_mode: str) -> None:
    """The model to training mode before a step; BatchNorm on running statistics when ``bn_mode`` is
    ``frozen``. Every training loop (``Trainer``, ``adapt.sim2sg.Sim2SGAdapter``) starts its steps here."""
    model.train()
    if bn_mode == "frozen":
        freeze_batchnorm(model)


class _LossModule(nn.Module):
    """The model as a module whose forward is the trainer's whole loss (preprocessing to the device and
    the autocast included), so DistributedDataParallel wraps exactly what one step computes."""

    def __init__(self, trainer: "Trainer"):
        super().__init__()
        self.model = trainer.model
        self._losses = trainer._losses

    def forward(self, batch: dict) -> dict:
        return self._losses(batch)


class Trainer(StepsThroughEngine):
    """Optimises an SGModel and writes checkpoints to ``out_dir``."""

    def __init__(
        self,
        model: SGModel,
        config: ExperimentConfig,
        vocab: Vocabulary,
        out_dir,
        device: str = "auto",
        progress: bool = True,
        dist: Optional[DistContext] = None,
    ):
        """``dist``: this process's place in a torchrun job (:func:`sim2sg_core.utils.distributed.init_from_env`,
        which also picks ``device``); None = a single process."""
        self.config, self.cfg = config, config.train
        self.vocab, self.out_dir = vocab, Path(out_dir)
        self.dist = dist or DistContext()
        self.device = resolve_device(device)
        model, self.bn_mode = apply_batchnorm_mode(model, self.cfg.batchnorm, self.dist, self.device)
        self.model = model.to(self.device)
        self.progress = progress and self.dist.is_main
        self._ddp: Optional[DistributedDataParallel] = None
        if self.dist.launched:
            self._ddp = data_parallel(
                _LossModule(self), self.device, find_unused_parameters=False, gradient_as_bucket_view=True
            )
        self.optim = Optimization(
            [ParamGroup("model", list(self.model.parameters()))],
            lr=self.cfg.lr,
            weight_decay=self.cfg.weight_decay,
            warmup_steps=self.cfg.warmup_steps,
            total_steps=self.cfg.steps,
            total_seconds=self.cfg.minutes * 60.0,
            grad_clip=self.cfg.grad_clip,
            device=self.device,
            amp=self.cfg.amp,
        )
        self.optimizer, self.scheduler = self.optim.optimizer, self.optim.scheduler
        self.history: list[dict] = []
        m = config.model
        self.input_size, self.mean, self.std = (m.input_width, m.input_height), tuple(m.mean), tuple(m.std)

    # -- building blocks ADAPT can reuse ------------------------------------------------------
    def make_loader(
        self, dataset, shuffle: bool = True, batch_size: Optional[int] = None, hflip: Optional[bool] = None
    ):
        m = self.config.model
        coll = Collator(
            self.input_size,
            self.mean,
            self.std,
            hflip=self.cfg.hflip if hflip is None else hflip,
            predicates=self.vocab.predicates,
            resize_mode=m.resize_mode,
            crop_bottom=m.crop_bottom,
        )
        g = torch.Generator()
        g.manual_seed(self.cfg.seed)
        nw = int(self.cfg.num_workers)
        batch = int(batch_size or self.cfg.batch_size)
        sampler: Optional[DistributedSampler] = None
        if self.dist.launched:  # each rank its own disjoint share; the configured batch is the global one
            batch = self.dist.per_rank(batch)
            sampler = DistributedSampler(
                dataset,
                num_replicas=self.dist.world_size,
                rank=self.dist.rank,
                shuffle=shuffle,
                seed=self.cfg.seed,
                drop_last=True,
            )
            shuffle = False
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=batch,
            shuffle=shuffle,
            sampler=sampler,
            collate_fn=coll,
            num_workers=nw,
            persistent_workers=nw > 0,
            drop_last=True,
            generator=g,
        )

    def autocast(self):
        return self.optim.autocast()

    def compute_losses(self, batch: dict) -> dict:
        """Named scalar losses for one batch: the model's supervised ones (through
        DistributedDataParallel under torchrun, which then averages the gradients over the processes)."""
        return self._ddp(batch) if self._ddp is not None else self._losses(batch)

    def _losses(self, batch: dict) -> dict:
        images = batch["images"].to(self.device, non_blocking=True)
        with self.autocast():
            outputs = self.model(images, batch["targets"])
        return dict(outputs.get("losses", {}))

    def train_step(self, batch: dict) -> dict:
        """One optimiser step through the engine; returns the named losses (floats) and ``total``/``lr``."""
        train_mode(self.model, self.bn_mode)
        return self.optim.step(self.compute_losses(batch))

    # -- checkpoints --------------------------------------------------------------------------
    @property
    def last_path(self) -> Path:
        return self.out_dir / "last.pt"

    def save(self, path=None, with_optimizer: bool = True, extra: Optional[dict] = None) -> Path:
        """Write a checkpoint atomically (rank 0 only under torchrun; the others return the path)."""
        if not self.dist.is_main:
            return Path(path or self.last_path)
        ex: dict = {"history": self.history[-2000:]}
        ex.update(extra or {})
        return save_checkpoint(
            path or self.last_path,
            self.model,
            self.config,
            self.vocab,
            self.input_size,
            self.mean,
            self.std,
            extra=ex,
            optimizer=self.optimizer if with_optimizer else None,
            scheduler=self.scheduler if with_optimizer else None,
            step=self.step,
        )

    def resume(self, path=None) -> bool:
        """Continue from ``path`` (default ``out_dir/last.pt``) if it exists; True if resumed."""
        path = Path(path or self.last_path)
        if not path.exists():
            return False
        ck = load_checkpoint(path, expect_vocab=self.vocab, map_location=self.device)
        if ck.get("optimizer") is None:
            raise CheckpointError(f"checkpoint {path} has no optimizer state and cannot be resumed from")
        self.model.load_state_dict(ck["state_dict"])
        self.optim.load_state_dict({"optimizer": ck["optimizer"], "scheduler": ck.get("scheduler")})
        self.step = int(ck["step"])
        self.history = list(ck["extra"].get("history", []))
        return True

    # -- the loop -----------------------------------------------------------------------------
    def fit(self, loader: Iterable, steps: Optional[int] = None, minutes: Optional[float] = None) -> dict:
        """Train until ``steps`` total steps or ``minutes`` of (cumulative, resume-aware) time."""
        steps = self.cfg.steps if steps is None else int(steps)
        minutes = self.cfg.minutes if minutes is None else float(minutes)
        self.scheduler.total_steps, self.scheduler.total_seconds = steps, minutes * 60.0
        budget = minutes * 60.0 if minutes > 0 else math.inf
        bar = tqdm(total=steps, initial=self.step, disable=not self.progress, dynamic_ncols=True, desc="train")
        t_last = time.monotonic()
        sampler = getattr(loader, "sampler", None)
        epoch = 0
        try:
            while self.step < steps and self.scheduler.elapsed < budget:
                if isinstance(sampler, DistributedSampler):
                    sampler.set_epoch(epoch)  # a new shuffle per pass, the same on every rank
                epoch += 1
                for batch in loader:
                    logged = self.train_step(batch)
                    now = time.monotonic()
                    # rank 0's clock for all: the schedule and the time budget stay in step on every rank
                    self.scheduler.elapsed = from_main(self.scheduler.elapsed + now - t_last)
                    t_last = now
                    if self.step % max(self.cfg.log_every, 1) == 0 or self.step == 1:
                        self.history.append({"step": self.step, **logged})
                        bar.set_postfix({k: f"{v:.3g}" for k, v in logged.items()}, refresh=False)
                    bar.update(1)
                    if self.cfg.checkpoint_every > 0 and self.step % self.cfg.checkpoint_every == 0:
                        self.save()
                    if self.cfg.keep_every > 0 and self.step % self.cfg.keep_every == 0 and self.step < steps:
                        self.save(self.out_dir / f"step{self.step:06d}.pt", with_optimizer=False)
                    if self.step >= steps or self.scheduler.elapsed >= budget:
                        break
        finally:
            bar.close()
        self.save()
        final = self.save(self.out_dir / "model.pt", with_optimizer=False)
        barrier()  # no rank returns before rank 0's files exist
        return {
            "steps": self.step,
            "seconds": self.scheduler.elapsed,
            "checkpoint": str(final),
            "last": self.history[-1] if self.history else {},
        }
