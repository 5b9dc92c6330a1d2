"""Gradient-reversal layer (Ganin & Lempitsky) and the Sim2SG strength schedule.

The discriminator after the GRL learns to tell source from target; the reversed gradient drives
the encoder/predictor in front of it to make the two indistinguishable, in one backward pass.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _GradientReversal(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by ``-lambda``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lambd: float) -> torch.Tensor:
        ctx.lambd = float(lambd)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return grad_output.neg() * ctx.lambd, None


def grad_reverse(x: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
    """Return ``x`` unchanged; gradients flowing back through it are scaled by ``-lambd``."""
    return _GradientReversal.apply(x, lambd)


def grl_lambda(progress: float, gamma: float = 10.0) -> float:
    """Reversal strength ``2 / (1 + exp(-gamma * p)) - 1`` for progress ``p`` in [0, 1].

    Starts at 0 so noisy early discriminator gradients do not wreck the features, ramps to ~1.
    """
    p = min(max(float(progress), 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse`; set ``.lambd`` from the schedule each step."""

    def __init__(self, lambd: float = 1.0):
        super().__init__()
        self.lambd = float(lambd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.lambd)

    def extra_repr(self) -> str:
        return f"lambd={self.lambd:.4f}"
