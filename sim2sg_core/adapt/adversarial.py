"""The adversarial half of an adaptation step: discriminators behind gradient-reversal layers.

* **Appearance alignment**: a per-location + image-level :class:`ConvDiscriminator` on the encoder
  features Z (``appearance_adv``).
* **Prediction alignment**: the same kind of discriminator on the detection heatmap probabilities plus a
  :class:`VectorDiscriminator` on the predicate probabilities of detected pairs (with both detection
  scores), together ``prediction_adv``.

Source is labelled 1, target 0; the first ``n_l`` images of a batch are the labelled (source-look)
stream, the rest unlabelled target frames. The GRL strength ``lam`` comes from the adapter's schedule.
The discriminators are parameter groups of the adapter's one :class:`~sim2sg_core.train.optim.Optimization`
(:meth:`Discriminators.param_groups`: GAN betas, no weight decay).
"""

from __future__ import annotations

from typing import Optional, Union

import torch

from sim2sg_core.adapt.config import AdaptConfig
from sim2sg_core.adapt.discriminators import (
    SOURCE_LABEL,
    TARGET_LABEL,
    ConvDiscriminator,
    VectorDiscriminator,
    domain_accuracy,
    domain_bce,
)
from sim2sg_core.adapt.grl import grad_reverse
from sim2sg_core.train.optim import ParamGroup

#: Adam betas of the discriminators' parameter groups (the usual adversarial-training choice).
DISCRIMINATOR_BETAS = (0.5, 0.999)

#: score above which detections form the pairs the relation discriminator sees
RELATION_PAIR_SCORE = 0.3


def map_adversarial(disc, maps: torch.Tensor, n_l: int, lam: float) -> tuple[torch.Tensor, float]:
    """Domain loss of a per-pixel + per-image discriminator on ``maps`` (the first ``n_l`` from the
    labelled stream) behind a gradient-reversal layer, and the discriminator's image-level accuracy."""
    reversed_maps = grad_reverse(maps, lam)
    pix_s, img_s = disc(reversed_maps[:n_l])
    pix_t, img_t = disc(reversed_maps[n_l:])
    loss = 0.5 * (
        domain_bce(pix_s, SOURCE_LABEL)
        + domain_bce(pix_t, TARGET_LABEL)
        + domain_bce(img_s, SOURCE_LABEL)
        + domain_bce(img_t, TARGET_LABEL)
    )
    return loss, 0.5 * (domain_accuracy(img_s, SOURCE_LABEL) + domain_accuracy(img_t, TARGET_LABEL))


def relation_adversarial(model, disc_rel, out: dict, n_l: int, lam: float):
    """Discriminator on the relationship predictions of detected pairs (predicate probabilities plus
    the pair's two detection scores), source pairs vs. target pairs: ``(loss, accuracy)``, or
    ``(None, None)`` when either stream has no pair."""
    dets = model.decode(
        {k: out[k].detach() for k in ("heatmap", "size", "offset")} | {"image_size": out["image_size"]},
        score_threshold=RELATION_PAIR_SCORE,
    )
    rels = model.infer_relations(out["features"], dets, out["image_size"])
    src: list[torch.Tensor] = []
    tgt: list[torch.Tensor] = []
    for i, (d, r) in enumerate(zip(dets, rels)):
        if not len(r["pairs"]):
            continue
        prob = torch.softmax(r["logits"].float(), dim=-1)
        sc = d["scores"].float()
        v = torch.cat([prob, sc[r["pairs"][:, 0], None], sc[r["pairs"][:, 1], None]], dim=1)
        (src if i < n_l else tgt).append(v)
    if not src or not tgt:
        return None, None
    vs = grad_reverse(torch.cat(src), lam)
    vt = grad_reverse(torch.cat(tgt), lam)
    ls, lt = disc_rel(vs), disc_rel(vt)
    loss = 0.5 * (domain_bce(ls, SOURCE_LABEL) + domain_bce(lt, TARGET_LABEL))
    return loss, 0.5 * (domain_accuracy(ls, SOURCE_LABEL) + domain_accuracy(lt, TARGET_LABEL))


class Discriminators:
    """The run's discriminators (each None when its alignment is off) and their weighted losses."""

    def __init__(
        self,
        *,
        disc_z: Optional[ConvDiscriminator] = None,
        disc_heat: Optional[ConvDiscriminator] = None,
        disc_rel: Optional[VectorDiscriminator] = None,
        appearance_weight: float = 1.0,
        prediction_weight: float = 1.0,
        appearance_lr: Optional[float] = None,
        prediction_lr: Optional[float] = None,
    ):
        """``*_lr``: the groups' base learning rates (None: the engine's)."""
        self.disc_z, self.disc_heat, self.disc_rel = disc_z, disc_heat, disc_rel
        self.appearance_weight, self.prediction_weight = float(appearance_weight), float(prediction_weight)
        self.appearance_lr, self.prediction_lr = appearance_lr, prediction_lr

    @classmethod
    def from_config(
        cls,
        config: AdaptConfig,
        *,
        feature_channels: int,
        num_classes: int,
        num_predicates: int,
        device: Union[str, torch.device] = "cpu",
    ) -> "Discriminators":
        """The discriminators ``config`` switches on, built (in the order Z, heatmap, relations, which fixes
        the torch draws of their initial weights) on ``device``."""
        a, p = config.appearance_alignment, config.prediction_alignment
        disc_z = (
            ConvDiscriminator(
                in_channels=feature_channels, hidden_channels=a.hidden_channels, num_layers=a.num_layers
            ).to(device)
            if a.enabled and a.discriminator
            else None
        )
        disc_heat = (
            ConvDiscriminator(in_channels=num_classes, hidden_channels=p.hidden_channels, num_layers=p.num_layers).to(
                device
            )
            if p.enabled
            else None
        )
        disc_rel = (
            VectorDiscriminator(in_features=num_predicates + 2, hidden_features=p.hidden_channels).to(device)
            if p.enabled
            else None
        )
        return cls(
            disc_z=disc_z,
            disc_heat=disc_heat,
            disc_rel=disc_rel,
            appearance_weight=a.weight,
            prediction_weight=p.weight,
            appearance_lr=a.lr,
            prediction_lr=p.lr,
        )

    def named(self) -> list[tuple[str, torch.nn.Module]]:
        """(state key, module) of every discriminator that exists, in the order Z, heatmap, relations."""
        return [
            (k, d) for k, d in (("z", self.disc_z), ("heat", self.disc_heat), ("rel", self.disc_rel)) if d is not None
        ]

    def modules(self) -> list[torch.nn.Module]:
        return [d for _, d in self.named()]

    def param_groups(self) -> list[ParamGroup]:
        """One optimiser group per discriminator: its alignment's rate, GAN betas, no weight decay."""
        rates = {"z": self.appearance_lr, "heat": self.prediction_lr, "rel": self.prediction_lr}
        return [
            ParamGroup(f"disc_{k}", list(d.parameters()), lr=rates[k], betas=DISCRIMINATOR_BETAS, weight_decay=0.0)
            for k, d in self.named()
        ]

    def losses(self, model, out: dict, n_l: int, lam: float) -> tuple[dict, dict]:
        """(losses, metrics) of one batch's model outputs ``out``: ``appearance_adv`` / ``prediction_adv``
        and the discriminators' accuracies (``disc_z_acc``, ``disc_heat_acc``, ``disc_rel_acc``)."""
        losses: dict = {}
        metrics: dict = {}
        if self.disc_z is not None:
            l_z, metrics["disc_z_acc"] = map_adversarial(self.disc_z, out["features"], n_l, lam)
            losses["appearance_adv"] = self.appearance_weight * l_z
        if self.disc_heat is not None:
            heat = torch.sigmoid(out["heatmap"].float())
            l_h, metrics["disc_heat_acc"] = map_adversarial(self.disc_heat, heat, n_l, lam)
            l_r, acc_r = (
                (None, None) if self.disc_rel is None else relation_adversarial(model, self.disc_rel, out, n_l, lam)
            )
            losses["prediction_adv"] = self.prediction_weight * (l_h + (l_r if l_r is not None else 0.0))
            if acc_r is not None:
                metrics["disc_rel_acc"] = acc_r
        return losses, metrics

    def state_dict(self) -> dict:
        """Each discriminator's state under its key (``z``, ``heat``, ``rel``): the resume state's layout."""
        return {k: d.state_dict() for k, d in self.named()}

    def load_state_dict(self, state: dict) -> None:
        for k, d in self.named():
            if k in state:
                d.load_state_dict(state[k])
