"""Supervised training on a labelled dataset with the project's Trainer, at a benchmark profile's model and budget
(the benchmark's pre-trainings and supervised rows, the demo's source model)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import torch

from sim2sg_core.adapt.config import BenchProfile
from sim2sg_core.model.checkpoint import load_checkpoint
from sim2sg_core.model.config import config_from_dict
from sim2sg_core.model.sg_model import SGModel
from sim2sg_core.sim import load_environment
from sim2sg_core.train.trainer import Trainer
from sim2sg_core.utils.io import atomic_write_text


def _experiment_config(
    profile: BenchProfile, env: str, domain: str, steps: int, seed: int, image_size, lr: Optional[float] = None
):
    model = dict(profile.model)
    if image_size and "input_width" not in model:  # else the model resizes the rendered images itself
        model.update(input_width=int(image_size[0]), input_height=int(image_size[1]))
    train = {
        "steps": int(steps),
        "lr": lr or profile.source_lr,
        "batch_size": profile.adapt.batch_size,
        "env": env,
        "domain": domain,
        "seed": int(seed),
        "train_images": profile.train_images,
        "num_workers": 0,
        "checkpoint_every": 0,
        "keep_every": profile.keep_every,
        "log_every": 20,
        "warmup_steps": min(50, steps // 5),
    }
    return config_from_dict({"model": model, "train": train}, where=f"bench profile {profile.name}")


def train_supervised(
    profile: BenchProfile,
    env: str,
    domain: str,
    dataset,
    steps: int,
    seed: int,
    out_dir: Path,
    image_size,
    progress: bool,
    init_checkpoint: Optional[Path] = None,
    lr: Optional[float] = None,
) -> tuple[Path, float]:
    """Train on a labelled dataset with the project's Trainer — from scratch, or fine-tuning
    ``init_checkpoint`` — and return (checkpoint, seconds)."""
    final = out_dir / "model.pt"
    meta = out_dir / "train_seconds.txt"
    if final.exists() and meta.exists():
        return final, float(meta.read_text())
    if callable(dataset):  # rendered only when actually needed
        dataset = dataset()
    torch.manual_seed(seed)
    cfg = _experiment_config(profile, env, domain, steps, seed, image_size, lr)
    vocab = load_environment(env).vocab
    model = SGModel.from_config(cfg, vocab)
    if init_checkpoint is not None:
        model.load_state_dict(load_checkpoint(init_checkpoint, expect_vocab=vocab)["state_dict"])
    trainer = Trainer(model, cfg, vocab, out_dir, device=profile.adapt.device, progress=progress)
    t0 = time.perf_counter()
    trainer.resume()
    loader = trainer.make_loader(dataset)
    res = trainer.fit(loader, steps=steps)
    secs = time.perf_counter() - t0
    atomic_write_text(meta, f"{secs:.2f}")
    return Path(res["checkpoint"]), secs
