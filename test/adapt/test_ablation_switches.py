"""Each ablation row of the benchmark changes exactly what its name says: first in the
configuration (the switches), then in what one real training step does (which images go forward,
whether the target look is transferred, which discriminators exist)."""

import dataclasses

import numpy as np
import pytest
import torch

from sim2sg_core.adapt.baselines import METHODS, configure
from sim2sg_core.adapt.config import load_adapt_config
from sim2sg_core.adapt.sim2sg import Sim2SGAdapter
from sim2sg_core.sim import Simulator
from sim2sg_core.train.config import config_from_dict

SIZE = (128, 48)
TINY_MODEL = {
    "encoder_channels": [8, 16, 24, 32, 48],
    "feature_channels": 32,
    "head_channels": 32,
    "relation_hidden": 64,
    "input_width": SIZE[0],
    "input_height": SIZE[1],
}


def _leaves(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def _diff(a: str, b: str) -> set:
    base = load_adapt_config()
    la = _leaves(dataclasses.asdict(configure(base, METHODS[a])))
    lb = _leaves(dataclasses.asdict(configure(base, METHODS[b])))
    return {k for k in la if la[k] != lb[k]}


@pytest.mark.parametrize(
    "method, reference, changed",
    [
        ("bn_target", "source_only", {"target_batchnorm"}),
        ("fda_only", "source_only", {"appearance_alignment.enabled", "appearance_alignment.discriminator"}),
        ("feature_only", "source_only", {"appearance_alignment.enabled", "appearance_alignment.spectrum_beta"}),
        ("prediction_only", "source_only", {"prediction_alignment.enabled"}),
        ("sim2sg_label", "source_only", {"label_alignment.enabled"}),
        ("sim2sg_full_no_fda", "sim2sg_full", {"appearance_alignment.spectrum_beta"}),
        ("sim2sg_full_pose_est", "sim2sg_full", {"label_alignment.camera_pose"}),
        ("sim2sg_dr", "sim2sg_full", set()),
        ("sim2sg_dr_cb", "sim2sg_dr", {"label_alignment.class_balanced_fraction"}),
        ("dr_continued", "source_only", set()),
        ("sim2sg_dr_label", "sim2sg_label", set()),
        ("sim2sg_after_dr", "sim2sg_full", set()),
        ("dr_then_continued", "source_only", set()),
    ],
)
def test_each_ablation_switches_only_what_it_names(method, reference, changed):
    assert _diff(method, reference) == changed
    if method in ("sim2sg_dr", "dr_continued", "sim2sg_dr_label", "sim2sg_after_dr", "dr_then_continued"):
        # the same, from the randomized pre-training (the last two: from the finished DR row's model)
        assert (METHODS[method].pretrain_domain, METHODS[reference].pretrain_domain) == ("randomized", "source")
        assert METHODS[method].init_from == ("domain_randomization" if "after" in method or "then" in method else "")
    if method == "fda_only":  # the shipped config transfers the target look when appearance is on
        assert configure(load_adapt_config(), METHODS[method]).appearance_alignment.spectrum_beta > 0


@pytest.fixture(scope="module")
def world():
    torch.set_num_threads(1)
    sim = Simulator.from_names("drive", "target2", 3, image_size=SIZE)
    targets = [sim.sample(i).image for i in range(8)]
    exp = config_from_dict({"model": TINY_MODEL, "train": {"env": "drive"}}, where="test")
    return exp, targets


def _tiny_adapter(world, method, steps_per_round=5, **overrides):
    """A Sim2SGAdapter for ``method`` on a fresh tiny model: 2 rounds (1 warm-up), batches of 4 + 2 target
    frames; ``overrides`` set further AdaptConfig fields."""
    exp, targets = world
    from sim2sg_core.model.sg_model import SGModel

    vocab = Simulator.from_names("drive", "source", 0).vocab
    torch.manual_seed(0)
    model = SGModel.from_config(exp, vocab)
    cfg = configure(load_adapt_config(), METHODS[method])
    cfg.env, cfg.seed, cfg.progress_bar, cfg.num_threads, cfg.device = "drive", 0, False, 1, "cpu"
    cfg.rounds, cfg.warmup_rounds, cfg.steps_per_round = 2, 1, steps_per_round
    cfg.batch_size, cfg.target_batch_size = 4, 2
    cfg.source_pool_size, cfg.label_alignment.samples_per_round = 8, 8
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return Sim2SGAdapter(
        model=model,
        vocab=vocab,
        experiment_config=exp,
        input_size=SIZE,
        mean=exp.model.mean,
        std=exp.model.std,
        config=cfg,
        target_images=targets,
        device="cpu",
    )


def _first_step(world, method):
    """What the first training step of ``method`` feeds the model, on a fresh tiny model."""
    adapter = _tiny_adapter(world, method)
    seen = []
    hook = adapter.model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    metrics = adapter.train_step()
    hook.remove()
    bn = next(m for m in adapter.model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    return {"x": seen[0], "metrics": metrics, "bn_mean": bn.running_mean.clone(), "adapter": adapter}


def test_one_step_of_each_ablation_does_what_it_names(world):
    src = _first_step(world, "source_only")
    bn = _first_step(world, "bn_target")
    fda = _first_step(world, "fda_only")
    feat = _first_step(world, "feature_only")
    # source only: the labelled batch alone, no discriminator
    assert src["x"].shape[0] == 4 and not any(k.endswith("_adv") for k in src["metrics"])
    # target BatchNorm statistics: the same labelled pixels plus 2 target frames, no discriminator and no
    # adversarial loss; the BatchNorm running statistics move away from source only's
    assert bn["x"].shape[0] == 6 and torch.equal(bn["x"][:4], src["x"])
    assert bn["adapter"].disc_z is None and bn["adapter"].disc_heat is None
    assert not any(k.endswith("_adv") for k in bn["metrics"])
    assert not torch.allclose(bn["bn_mean"], src["bn_mean"])
    # FDA only: no target frame goes forward and no discriminator exists, but the labelled images wear a
    # target look (different pixels from source only's same draw)
    assert fda["x"].shape[0] == 4 and fda["adapter"].disc_z is None and fda["adapter"].disc_heat is None
    assert not torch.equal(fda["x"], src["x"])
    assert not any(k.endswith("_adv") for k in fda["metrics"])
    # feature-level DA: the discriminator on Z and target frames, no spectrum transfer
    assert feat["adapter"].disc_z is not None and feat["adapter"].disc_heat is None
    assert feat["x"].shape[0] == 6 and torch.equal(feat["x"][:4], src["x"])
    assert "appearance_adv" in feat["metrics"]


@pytest.mark.slow
def test_estimated_pose_moves_the_label_aligner_camera(world):
    exp, _ = world
    step = _first_step(world, "sim2sg_full_pose_est")
    adapter = step["adapter"]
    start = (adapter.aligner.camera.height_m, adapter.aligner.camera.pitch)
    assert start == pytest.approx(adapter.sim.content.camera.mean_pose)  # the source pose, not target2's
    # ground-truth graphs of a camera mounted lower and pitched more than the source stand in for
    # confident predictions
    plain = Simulator.from_names("drive", "source", 0, image_size=SIZE)
    low = Simulator(
        env="drive",
        domain="source",
        seed=5,
        image_size=SIZE,
        camera=plain.camera.with_pose(1.3, 0.06),
        camera_pose_from_camera=True,
    )
    graphs = [low.sample(i).graph for i in range(20)]
    info = adapter._estimate_pose(graphs, 1)
    assert info is not None and info["objects"] >= 8
    got = (adapter.aligner.camera.height_m, adapter.aligner.camera.pitch)
    assert abs(got[1] - 0.06) < 0.02 and abs(got[0] - 1.3) / 1.3 < 0.15
    assert abs(got[0] - 1.3) < abs(start[0] - 1.3) and abs(got[1] - 0.06) < abs(start[1] - 0.06)
    # too few confident boxes: the camera stays
    assert adapter._estimate_pose(graphs[:1], 2) is None
    assert (adapter.aligner.camera.height_m, adapter.aligner.camera.pitch) == got
    assert np.isfinite(got).all()


def test_adaptation_steps_through_the_one_engine(world):
    """The full method's model and discriminators are groups of train.optim.Optimization: the same
    warm-up + cosine schedule (each from its own rate), and discriminators move only once adversarial."""
    adapter = _tiny_adapter(world, "sim2sg_full", steps_per_round=2, warmup_steps=1)
    cfg = adapter.cfg
    assert adapter.optim.group_names == ["model", "disc_z", "disc_heat", "disc_rel"]
    disc_before = [p.detach().clone() for p in adapter.disc_z.parameters()]
    lrs = []
    for _ in range(cfg.total_steps):
        m = adapter.train_step()
        groups = adapter.optim.optimizer.param_groups
        assert groups[1]["lr"] == pytest.approx(groups[0]["lr"] * cfg.appearance_alignment.lr / cfg.lr)
        lrs.append(m["lr"])
        if adapter.step == cfg.steps_per_round:  # end of the warm-up round: discriminators untouched
            assert all(torch.equal(a, b) for a, b in zip(disc_before, adapter.disc_z.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(disc_before, adapter.disc_z.parameters()))
    assert lrs[0] == pytest.approx(cfg.lr) and lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.2 * cfg.lr
