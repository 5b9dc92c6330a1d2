"""Domain discriminators for Sim2SG's adversarial alignment terms.

* :class:`ConvDiscriminator` — per-location (and pooled image-level) source/target classifier over a
  feature map. On the encoder features Z it is the *appearance* discriminator; on the detector's
  heatmap (class probabilities per location) it is the *prediction* discriminator.
* :class:`VectorDiscriminator` — classifier over sets of vectors, e.g. the predicate distribution of
  each candidate relationship, so prediction alignment can also cover the relationship head.

Convention (as in the paper): source is labelled 1, target 0. The GRL is applied by the caller (see
:mod:`sim2sg_core.adapt.grl`) so the discriminators themselves stay ordinary classifiers that can be
trained and tested on their own.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

SOURCE_LABEL = 1.0
TARGET_LABEL = 0.0


class ConvDiscriminator(nn.Module):
    """Fully-convolutional domain classifier: one logit per location plus one per image.

    ``forward`` returns ``(pixel_logits[B,1,H,W], image_logits[B])``. The per-location head sees
    local texture/appearance; the image-level head (global average + max pooling of the hidden
    map) sees global statistics — DA-Faster's two levels, sharing the first layers.
    """

    def __init__(self, *, in_channels: int, hidden_channels: int = 64, num_layers: int = 2):
        super().__init__()
        if in_channels <= 0:
            raise ValueError(f"ConvDiscriminator in_channels must be positive, got {in_channels}")
        layers: list[nn.Module] = []
        c = in_channels
        for _ in range(max(1, num_layers)):
            layers += [nn.Conv2d(c, hidden_channels, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            c = hidden_channels
        self.body = nn.Sequential(*layers)
        self.pixel_head = nn.Conv2d(c, 1, 1)
        self.image_head = nn.Sequential(
            nn.Linear(2 * c, hidden_channels), nn.LeakyReLU(0.2, inplace=True), nn.Linear(hidden_channels, 1)
        )
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ConvDiscriminator expects [B,{self.in_channels},H,W], got {tuple(x.shape)}")
        h = self.body(x)
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return self.pixel_head(h), self.image_head(pooled).squeeze(1)

    def loss(
        self, x: torch.Tensor, domain_label: float, *, pixel_weight: float = 1.0, image_weight: float = 1.0
    ) -> torch.Tensor:
        """Binary cross-entropy of both heads against one domain label for the whole batch."""
        pix, img = self(x)
        return pixel_weight * domain_bce(pix, domain_label) + image_weight * domain_bce(img, domain_label)


class VectorDiscriminator(nn.Module):
    """MLP domain classifier over a set of vectors ``[N, D]`` (one logit per vector)."""

    def __init__(self, *, in_features: int, hidden_features: int = 64):
        super().__init__()
        self.in_features = in_features
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden_features),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden_features, hidden_features),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden_features, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"VectorDiscriminator expects [N,{self.in_features}], got {tuple(x.shape)}")
        return self.net(x).squeeze(1)

    def loss(self, x: torch.Tensor, domain_label: float) -> Optional[torch.Tensor]:
        """BCE against one domain label; None when the set is empty (no candidate pairs)."""
        if x.shape[0] == 0:
            return None
        return domain_bce(self(x), domain_label)


def domain_bce(logits: torch.Tensor, domain_label: float) -> torch.Tensor:
    """Mean binary cross-entropy of ``logits`` against a constant domain label (1 source, 0 target)."""
    target = torch.full_like(logits, float(domain_label))
    return F.binary_cross_entropy_with_logits(logits, target)


def domain_accuracy(logits: torch.Tensor, domain_label: float) -> float:
    """Fraction of logits on the right side of 0 — a progress metric for logging."""
    pred = (logits.detach() > 0).float()
    return float((pred == float(domain_label)).float().mean().item()) if logits.numel() else float("nan")
