"""The one optimisation engine every training loop steps through: supervised training (``Trainer.fit`` →
``Trainer.train_step``), domain adaptation (``adapt.sim2sg.run_adaptation`` → ``Sim2SGAdapter.train_step``)
and so every benchmark row.

:class:`Optimization` holds one AdamW over named parameter groups (the model, and each discriminator with
its own learning rate and betas), a linear warm-up + cosine schedule that scales every group from its own
base rate, the NaN guard, gradient clipping and the AMP context. A loop computes its named losses and calls
:meth:`Optimization.step`; what differs between loops is only where the batches and losses come from.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Optional, Union

import torch

from sim2sg_core.utils.device import autocast_context


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite; the message names the step and every loss term."""


class WarmupCosine:
    """Linear warm-up then cosine decay to 0 over the run, whose length is steps or wall time.

    Progress is ``max(step / total_steps, elapsed / total_seconds)`` so a time-budgeted run still
    anneals fully by its deadline. Every parameter group is scaled from its own base rate (its ``lr``
    when the schedule was built), so a discriminator keeps its ratio to the model. State (step,
    elapsed seconds) is checkpointed for resume.
    """

    def __init__(self, optimizer, base_lr: float, warmup_steps: int, total_steps: int, total_seconds: float = 0.0):
        self.optimizer, self.base_lr = optimizer, float(base_lr)
        self.warmup_steps, self.total_steps = int(warmup_steps), int(total_steps)
        self.total_seconds = float(total_seconds)
        self.step_count, self.elapsed = 0, 0.0
        for g in optimizer.param_groups:
            g.setdefault("base_lr", g["lr"])

    def progress(self) -> float:
        p = self.step_count / max(self.total_steps, 1)
        if self.total_seconds > 0:
            p = max(p, self.elapsed / self.total_seconds)
        return min(p, 1.0)

    def factor(self) -> float:
        """The schedule's multiplier of every group's base rate now."""
        warm = min(1.0, (self.step_count + 1) / max(self.warmup_steps, 1))
        return warm * 0.5 * (1.0 + math.cos(math.pi * self.progress()))

    def lr(self) -> float:
        """The model's learning rate now (``base_lr`` × :meth:`factor`)."""
        return self.base_lr * self.factor()

    def apply(self) -> float:
        f = self.factor()
        for g in self.optimizer.param_groups:
            g["lr"] = g["base_lr"] * f
        return self.base_lr * f

    def state_dict(self) -> dict:
        return {"step_count": self.step_count, "elapsed": self.elapsed}

    def load_state_dict(self, d: dict) -> None:
        self.step_count, self.elapsed = int(d["step_count"]), float(d["elapsed"])


@dataclasses.dataclass
class ParamGroup:
    """Parameters optimised together. ``lr``/``betas``/``weight_decay`` default to the engine's."""

    name: str
    params: list
    lr: Optional[float] = None
    betas: Optional[tuple[float, float]] = None
    weight_decay: Optional[float] = None


class Optimization:
    """AdamW over named groups + warm-up/cosine + NaN guard + clipping + AMP: one step of any loop.

    ``total_steps`` / ``total_seconds`` may be changed before a run (``Trainer.fit`` sets them from its
    budget). ``grad_clip`` <= 0 disables clipping (over every optimised parameter). ``amp``: bfloat16
    autocast where the device supports it (CUDA), a no-op on CPU.
    """

    def __init__(
        self,
        groups: Iterable[ParamGroup],
        *,
        lr: float,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        warmup_steps: int = 0,
        total_steps: int = 1,
        total_seconds: float = 0.0,
        grad_clip: float = 0.0,
        device: Union[str, torch.device] = "cpu",
        amp: bool = True,
    ):
        torch_groups = []
        self.group_names: list[str] = []
        for g in groups:
            params = [p for p in g.params if p.requires_grad]
            if not params:
                continue
            torch_groups.append(
                {
                    "params": params,
                    "lr": float(lr if g.lr is None else g.lr),
                    "betas": tuple(betas if g.betas is None else g.betas),
                    "weight_decay": float(weight_decay if g.weight_decay is None else g.weight_decay),
                }
            )
            self.group_names.append(g.name)
        if not torch_groups:
            raise ValueError("nothing to optimise: every parameter is frozen")
        self.optimizer = torch.optim.AdamW(torch_groups, lr=lr, weight_decay=weight_decay, betas=betas)
        self.scheduler = WarmupCosine(self.optimizer, lr, warmup_steps, total_steps, total_seconds)
        self.grad_clip, self.amp, self.base_lr = float(grad_clip), bool(amp), float(lr)
        self.device = torch.device(device)
        self.step_count = 0

    @property
    def parameters(self) -> list:
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def autocast(self):
        return autocast_context(self.device, self.amp)

    def step(self, losses: dict) -> dict:
        """Sum ``losses`` (name → scalar tensor), guard against NaN, back-propagate, clip, step, advance
        the schedule. Parameters that got no gradient (a discriminator sitting out a warm-up step) are
        left alone. Returns the losses as floats plus ``total`` and ``lr`` (the model's rate)."""
        if not losses:
            raise ValueError("the batch produced no losses (no labelled image)")
        lr = self.scheduler.apply()
        total = sum(v.float() for v in losses.values())
        if not torch.isfinite(total):
            parts = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in losses.items())
            raise TrainingDivergedError(
                f"loss became {float(total.detach())} at step {self.step_count} ({parts}); "
                f"try a lower learning rate than {self.base_lr} or check the labels"
            )
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_([p for p in self.parameters if p.grad is not None], self.grad_clip)
        self.optimizer.step()
        self.step_count += 1
        self.scheduler.step_count = self.step_count
        logged = {k: float(v.detach()) for k, v in losses.items()}
        logged.update(total=float(total.detach()), lr=lr)
        return logged

    def set_step(self, step: int) -> None:
        """Continue the schedule from ``step`` (resume)."""
        self.step_count = int(step)
        self.scheduler.step_count = self.step_count

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scheduler"):
            self.scheduler.load_state_dict(state["scheduler"])
        for g in self.optimizer.param_groups:  # an older checkpoint's groups lack the schedule's base rate
            g.setdefault("base_lr", g["lr"])


class StepsThroughEngine:
    """``step``, the optimisation steps a loop has taken, as its engine's count (``self.optim``, an
    :class:`Optimization`), which also drives the schedule: the trainer and the adapter keep no second counter."""

    optim: Optimization

    @property
    def step(self) -> int:
        return self.optim.step_count

    @step.setter
    def step(self, value: int) -> None:
        self.optim.set_step(value)
