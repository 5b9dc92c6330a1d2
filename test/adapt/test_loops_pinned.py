"""The training loops are pinned: a refactoring of adaptation or of the trainer must not change one bit.

A tiny freshly initialised model is adapted for a few steps on CPU (one thread, fixed seeds) through
``run_adaptation`` with every part switched on in two mixes (label alignment with class-balanced
thresholds and self-training; the estimated camera pose with target BatchNorm), and trained for a few
supervised steps through ``Trainer.fit``. The SHA-256 of the resulting weights and of the per-round
history (analysis results and mean losses) must equal the pinned values. After an intended change of
the numbers, regenerate them with ``python test/adapt/test_loops_pinned.py`` and paste the printed table.
The digests are of float32 arithmetic on one CPU thread; another torch version or CPU may round
differently.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from toy_data import VOCAB, ToyDataset, tiny_config

from sim2sg_core.adapt.baselines import METHODS, configure
from sim2sg_core.adapt.config import load_adapt_config
from sim2sg_core.adapt.sim2sg import run_adaptation
from sim2sg_core.model.checkpoint import load_checkpoint, save_checkpoint
from sim2sg_core.model.sg_model import SGModel
from sim2sg_core.sim import Simulator
from sim2sg_core.train.config import config_from_dict
from sim2sg_core.train.trainer import Trainer

SIZE = (128, 48)
TINY_MODEL = {
    "encoder_channels": [8, 16, 24, 32, 48],
    "feature_channels": 32,
    "head_channels": 32,
    "relation_hidden": 64,
    "input_width": SIZE[0],
    "input_height": SIZE[1],
}

#: (method, AdaptConfig overrides): together they reach every branch of an adaptation step and round
ADAPT_CASES = {
    "full_self_training_cb": (
        "sim2sg_full",
        {"self_training.enabled": True, "label_alignment.class_balanced_fraction": 0.5},
    ),
    "pose_est_bn_target": ("sim2sg_full_pose_est", {"target_batchnorm": True}),
}

PINNED = {
    "full_self_training_cb": "200e3bcefd06ac0b9fa7fa435f1951ff:00046e0f5406985e26575cff9b6ea35c",
    "pose_est_bn_target": "ec5302cffa13b4822e8a67860479eeec:aa2c38fbf86b6d8aa0e909227583cefa",
    "trainer": "7b4aa026354b9a1d8f56c248d468fc79:7ecce01a58db962d25c905d7bdf5ae95",
}


def _weights_digest(state_dict: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(state_dict):
        h.update(k.encode())
        h.update(state_dict[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


def _history_digest(history: list) -> str:
    rounds = [{k: v for k, v in r.items() if k != "analysis_seconds"} for r in history]
    return hashlib.sha256(json.dumps(rounds, sort_keys=True).encode()).hexdigest()[:32]


def _adapt(name: str, root: Path) -> str:
    torch.set_num_threads(1)
    method, overrides = ADAPT_CASES[name]
    vocab = Simulator.from_names("drive", "source", 0).vocab
    exp = config_from_dict({"model": TINY_MODEL, "train": {"env": "drive"}}, where="test")
    torch.manual_seed(0)
    model = SGModel.from_config(exp, vocab)
    # detection scores above the relation discriminator's 0.3 from the start: pairs reach disc_rel
    torch.nn.init.constant_(model.detector.heatmap[-1].bias, -0.5)
    init = save_checkpoint(root / "init.pt", model, exp, vocab, SIZE, exp.model.mean, exp.model.std)
    cfg = configure(load_adapt_config(), METHODS[method])
    cfg.env, cfg.seed, cfg.progress_bar, cfg.num_threads, cfg.device = "drive", 0, False, 1, "cpu"
    cfg.rounds, cfg.warmup_rounds, cfg.steps_per_round = 2, 1, 3
    cfg.batch_size, cfg.target_batch_size = 4, 2
    cfg.source_pool_size, cfg.label_alignment.samples_per_round = 8, 8
    cfg.label_alignment.score_threshold = cfg.self_training.score_threshold = 0.35
    for key, value in overrides.items():
        obj, _, field = key.rpartition(".")
        setattr(getattr(cfg, obj) if obj else cfg, field, value)
    target = Simulator.from_names("drive", "target2", 3, image_size=SIZE)
    images = [target.sample(i).image for i in range(6)]
    result = run_adaptation(init, images, root / "adapted.pt", config=cfg, resume=False, device="cpu")
    ck = load_checkpoint(result.checkpoint)
    assert result.steps == 6 and len(result.history) == 2
    # the pinned runs exercise label alignment and every discriminator
    assert result.history[1].get("pseudo_objects", 0) > 0 and "disc_rel_acc" in result.history[1]["mean_metrics"]
    return f"{_weights_digest(ck['state_dict'])}:{_history_digest(result.history)}"


def _train(root: Path) -> str:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = tiny_config(steps=4, batch_size=2, log_every=1, warmup_steps=2, hflip=True)
    tr = Trainer(SGModel.from_config(cfg, VOCAB), cfg, VOCAB, root, device="cpu", progress=False)
    summary = tr.fit(tr.make_loader(ToyDataset(4)))
    ck = load_checkpoint(summary["checkpoint"])
    return f"{_weights_digest(ck['state_dict'])}:{_history_digest(ck['extra']['history'])}"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ADAPT_CASES))
def test_adaptation_is_pinned(name, tmp_path):
    assert _adapt(name, tmp_path) == PINNED[name], f"{name}: the adapted weights or the round history changed"


def test_supervised_training_is_pinned(tmp_path):
    assert _train(tmp_path) == PINNED["trainer"], "the trained weights or the loss history changed"


if __name__ == "__main__":  # print the table to paste into PINNED
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        for n in ADAPT_CASES:
            (Path(d) / n).mkdir()
            print(f'    "{n}": "{_adapt(n, Path(d) / n)}",')
        print(f'    "trainer": "{_train(Path(d))}",')
