"""The one optimisation engine (train/optim.py): per-group schedule, NaN guard, groups without a gradient
left alone, clipping, resume of the schedule."""

from __future__ import annotations

import pytest
import torch

from sim2sg_core.train.optim import Optimization, ParamGroup, TrainingDivergedError


def _engine(**kw):
    torch.manual_seed(0)
    model, disc = torch.nn.Linear(4, 2), torch.nn.Linear(2, 1)
    opts = dict(lr=1e-2, weight_decay=0.0, warmup_steps=2, total_steps=10)
    opts.update(kw)
    eng = Optimization(
        [ParamGroup("model", list(model.parameters())), ParamGroup("disc", list(disc.parameters()), lr=4e-2)],
        **opts,
    )
    return eng, model, disc


def test_every_group_follows_the_schedule_from_its_own_rate():
    eng, model, disc = _engine()
    assert eng.group_names == ["model", "disc"]
    seen = []
    for _ in range(10):
        logged = eng.step({"l": model(torch.ones(1, 4)).sum() + disc(torch.ones(1, 2)).sum()})
        model_lr, disc_lr = (g["lr"] for g in eng.optimizer.param_groups)
        assert logged["lr"] == pytest.approx(model_lr)
        assert disc_lr == pytest.approx(4 * model_lr)
        seen.append(model_lr)
    assert seen[0] == pytest.approx(0.5e-2, rel=1e-3)  # warm-up: (0 + 1) / 2 of the rate, cosine ~1
    assert seen[1] > seen[0] and seen[-1] < 0.05 * seen[1]  # then cosine decay towards 0
    assert eng.step_count == 10


def test_a_group_without_gradient_is_left_alone():
    eng, model, disc = _engine()
    before = [p.detach().clone() for p in disc.parameters()]
    eng.step({"l": model(torch.ones(1, 4)).pow(2).sum()})  # the discriminator sits this step out
    assert all(torch.equal(a, b) for a, b in zip(before, disc.parameters()))
    eng.step({"l": disc(torch.ones(1, 2)).sum()})
    assert not all(torch.equal(a, b) for a, b in zip(before, disc.parameters()))


def test_nan_guard_names_the_step_and_every_term():
    eng, model, _ = _engine()
    eng.step({"ok": model(torch.ones(1, 4)).sum()})
    with pytest.raises(TrainingDivergedError, match=r"loss became nan at step 1 .*ok=.*broken=nan"):
        eng.step({"ok": model(torch.ones(1, 4)).sum(), "broken": torch.tensor(float("nan"))})


def test_clipping_bounds_the_update():
    big = {"l": None}
    for clip, expect_small in ((0.0, False), (1e-3, True)):
        eng, model, _ = _engine(grad_clip=clip, warmup_steps=0)
        w = model.weight.detach().clone()
        big["l"] = model(torch.full((1, 4), 1e4)).sum()
        eng.step(big)
        norm = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in model.parameters()]))
        assert (norm <= 1e-3 + 1e-9) == expect_small
        assert not torch.equal(w, model.weight)


def test_the_schedule_resumes_where_it_stopped():
    a, model_a, disc_a = _engine()
    for _ in range(4):
        a.step({"l": model_a(torch.ones(1, 4)).sum() + disc_a(torch.ones(1, 2)).sum()})
    b, _, _ = _engine()
    b.load_state_dict(a.state_dict())
    b.set_step(a.step_count)
    assert b.scheduler.lr() == pytest.approx(a.scheduler.lr())
    assert b.optimizer.param_groups[1]["base_lr"] == pytest.approx(4e-2)


def test_nothing_to_optimise_is_refused():
    frozen = torch.nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="nothing to optimise"):
        Optimization([ParamGroup("model", list(frozen.parameters()))], lr=1e-3)


def test_an_optimizer_state_saved_before_per_group_rates_still_loads():
    """Checkpoints written before the engine lack each group's base rate; loading fills it from the group's lr."""
    a, model, disc = _engine()
    a.step({"l": model(torch.ones(1, 4)).sum() + disc(torch.ones(1, 2)).sum()})
    old = a.state_dict()
    for g in old["optimizer"]["param_groups"]:
        del g["base_lr"]
    b, model_b, disc_b = _engine()
    b.load_state_dict({"optimizer": old["optimizer"]})
    assert all("base_lr" in g for g in b.optimizer.param_groups)
    b.step({"l": model_b(torch.ones(1, 4)).sum() + disc_b(torch.ones(1, 2)).sum()})  # the schedule applies
