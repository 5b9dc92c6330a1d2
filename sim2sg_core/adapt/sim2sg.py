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

This module holds the loop, :func:`run_adaptation` (rounds, progress, resume, the output checkpoint);
one run's state, one round and one step are :class:`~sim2sg_core.adapt.adapter.Sim2SGAdapter`, whose
collaborators live beside it: the labelled pools and batch mixing in :mod:`~sim2sg_core.adapt.pools`, the
discriminators and their GRL losses in :mod:`~sim2sg_core.adapt.adversarial`, the target camera in
:mod:`~sim2sg_core.adapt.target_camera`. Like ``train.trainer.Trainer.fit``, every step ends in the one
engine's :meth:`~sim2sg_core.train.optim.Optimization.step`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch
from tqdm import tqdm

from sim2sg_core.adapt.adapter import AdaptationError, PathLike, Sim2SGAdapter
from sim2sg_core.adapt.adversarial import DISCRIMINATOR_BETAS
from sim2sg_core.adapt.config import AdaptConfig, config_to_dict, load_adapt_config
from sim2sg_core.adapt.pools import LabelledPool, pseudo_label_graphs, render_source_pool
from sim2sg_core.adapt.targets import ArrayTargetSource, BagTargetSource, TargetSource
from sim2sg_core.model.checkpoint import load_checkpoint
from sim2sg_core.utils.distributed import DistContext, barrier, from_main

log = logging.getLogger(__name__)

#: re-exported: the adapter, the pools and the discriminators' betas were defined here before
#: ``adapter.py``, ``pools.py`` and ``adversarial.py``
__all__ = [
    "DISCRIMINATOR_BETAS",
    "RESUME_SUFFIX",
    "AdaptResult",
    "AdaptationError",
    "AdaptationInterrupted",
    "LabelledPool",
    "PathLike",
    "ProgressCallback",
    "Sim2SGAdapter",
    "adapt_from_bags",
    "pseudo_label_graphs",
    "render_source_pool",
    "resume_path_for",
    "run_adaptation",
]

ProgressCallback = Callable[[int, int, dict], None]

RESUME_SUFFIX = ".resume"


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
    if not cfg.env:
        cfg = dataclasses.replace(cfg, env=ck["config"].train.env)
    adapter = Sim2SGAdapter.from_checkpoint(
        ck,
        cfg,
        target_images,
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
        adapter.model.load_state_dict(rk["state_dict"])
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
