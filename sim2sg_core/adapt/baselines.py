"""The benchmark's methods: Sim2SG ablations and the baselines, each one configuration of the same code.

Every method starts from the same model architecture and gets the same number of optimisation
steps (``BenchProfile.budget_steps``), all through the one optimisation engine (``train.optim``: AdamW,
warm-up + cosine restarted per phase, NaN guard, clipping):

* ``adapt`` methods continue the shared source pre-training (``source_steps``) for the adaptation
  budget (``rounds × steps_per_round``) with :func:`sim2sg_core.adapt.sim2sg.run_adaptation`; they
  differ only in the switches they set. ``source_only`` is that loop with every switch off, i.e.
  more supervised source training for the same number of steps.
* ``supervised`` methods train from scratch with the project's :class:`Trainer` for the whole
  budget on one labelled simulator domain (``randomized``: domain randomisation).
* ``finetune`` methods continue the source pre-training with the :class:`Trainer` on a labelled
  domain for the adaptation budget: the oracle fine-tunes on labelled *target* images — the only
  row that ever sees target labels, by design (the upper bound).

The exception to the equal budget is named in the tables: an ``adapt`` row with ``init_from`` starts from a
supervised row's finished model (DR's) and spends that budget plus the adaptation steps; its control is the
same row with every switch off.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from sim2sg_core.adapt.config import AdaptConfig


@dataclass(frozen=True)
class Method:
    name: str
    #: Row label in the table (paper wording).
    label: str
    #: "adapt" (source checkpoint + adaptation loop), "supervised" (from scratch on a labelled domain)
    #: or "finetune" (source checkpoint + supervised training on a labelled domain).
    kind: str
    #: For supervised methods: the labelled domain ("target" means the profile's target domain).
    train_domain: str = "source"
    #: For adapt methods: the switches (dotted AdaptConfig paths → value).
    switches: dict = field(default_factory=dict)
    #: For adapt methods: the labelled domain of the pre-training the adaptation starts from (and
    #: renders its labelled / label-aligned data in): "source" or "randomized" (DR + Sim2SG).
    pretrain_domain: str = "source"
    #: For adapt methods: start from this supervised row's finished model (trained for the whole
    #: budget on ``pretrain_domain``, shared with that row) instead of a ``source_steps`` pre-training;
    #: the row then spends the budget plus the adaptation steps.
    init_from: str = ""


_OFF = {
    "label_alignment.enabled": False,
    "prediction_alignment.enabled": False,
    "appearance_alignment.enabled": False,
    "self_training.enabled": False,
    "evidence.enabled": False,
    "target_batchnorm": False,
}
_FULL = {
    **_OFF,
    "label_alignment.enabled": True,
    "prediction_alignment.enabled": True,
    "appearance_alignment.enabled": True,
}

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("source_only", "Source only", "adapt", switches=dict(_OFF)),
        Method("domain_randomization", "Domain randomization", "supervised", train_domain="randomized"),
        Method(
            "self_training", "Pseudo-label self-training", "adapt", switches={**_OFF, "self_training.enabled": True}
        ),
        # Ablations that isolate one ingredient each. Every adversarial row also sends target
        # frames through BatchNorm in train mode; this row does only that (AdaBN-like), no discriminator.
        Method("bn_target", "Target BatchNorm statistics only", "adapt", switches={**_OFF, "target_batchnorm": True}),
        # The image-level low-frequency spectrum transfer (FDA) alone: no discriminator, no target forward
        Method(
            "fda_only",
            "FDA spectrum transfer only",
            "adapt",
            switches={**_OFF, "appearance_alignment.enabled": True, "appearance_alignment.discriminator": False},
        ),
        # DA-Faster style: the feature-level GRL + discriminator on Z alone (no image-level transfer)
        Method(
            "feature_only",
            "Feature-level DA (GRL on Z only)",
            "adapt",
            switches={**_OFF, "appearance_alignment.enabled": True, "appearance_alignment.spectrum_beta": 0.0},
        ),
        # The prediction-level GRL + discriminators (heatmap, relationships) alone
        Method(
            "prediction_only",
            "Prediction alignment only",
            "adapt",
            switches={**_OFF, "prediction_alignment.enabled": True},
        ),
        Method("sim2sg_label", "Sim2SG: label alignment", "adapt", switches={**_OFF, "label_alignment.enabled": True}),
        Method(
            "sim2sg_label_pred",
            "Sim2SG: + prediction alignment",
            "adapt",
            switches={**_OFF, "label_alignment.enabled": True, "prediction_alignment.enabled": True},
        ),
        Method("sim2sg_full", "Sim2SG: + appearance alignment (full)", "adapt", switches=dict(_FULL)),
        # The full method without the image-level spectrum transfer (FDA)
        Method(
            "sim2sg_full_no_fda",
            "Sim2SG full without FDA",
            "adapt",
            switches={**_FULL, "appearance_alignment.spectrum_beta": 0.0},
        ),
        # The full method with the target camera pose estimated from the pseudo-labels, not configured
        Method(
            "sim2sg_full_pose_est",
            "Sim2SG full, camera pose estimated",
            "adapt",
            switches={**_FULL, "label_alignment.camera_pose": "estimated"},
        ),
        # Domain randomisation and Sim2SG together: pre-train on the randomized domain, then adapt
        Method("sim2sg_dr", "DR + Sim2SG (full)", "adapt", pretrain_domain="randomized", switches=dict(_FULL)),
        # Diagnosing DR + Sim2SG: the randomized pre-training continued in the adaptation loop with every
        # switch off (what source_only is to Sim2SG), and with label alignment alone
        Method(
            "dr_continued",
            "DR pre-training, continued (no adaptation)",
            "adapt",
            pretrain_domain="randomized",
            switches=dict(_OFF),
        ),
        Method(
            "sim2sg_dr_label",
            "DR + label alignment only",
            "adapt",
            pretrain_domain="randomized",
            switches={**_OFF, "label_alignment.enabled": True},
        ),
        # DR + Sim2SG without the two-phase cost: adaptation starts from the finished DR model (the
        # `domain_randomization` row's, 540 steps) and adds 240 adaptation steps; `dr_then_continued` is the
        # same 240 steps with every switch off, the matched-budget control (chosen from the quick profile's
        # `val` diagnosis in docs/results/engine_quick/, before any test result of these rows)
        Method(
            "sim2sg_after_dr",
            "DR model + Sim2SG (full)",
            "adapt",
            pretrain_domain="randomized",
            init_from="domain_randomization",
            switches=dict(_FULL),
        ),
        Method(
            "dr_then_continued",
            "DR model, continued (no adaptation)",
            "adapt",
            pretrain_domain="randomized",
            init_from="domain_randomization",
            switches=dict(_OFF),
        ),
        # DR + Sim2SG with class-balanced pseudo-label confidence: a domain-randomised model is less sure
        # of some classes on the target, and a global threshold would drop them from label alignment
        Method(
            "sim2sg_dr_cb",
            "DR + Sim2SG, class-balanced pseudo-labels",
            "adapt",
            pretrain_domain="randomized",
            switches={**_FULL, "label_alignment.class_balanced_fraction": 0.5},
        ),
        # Full Sim2SG whose pseudo-labels must also convince the ImageNet classifier (real-car evidence)
        Method(
            "sim2sg_evidence", "Sim2SG full + ImageNet evidence", "adapt", switches={**_FULL, "evidence.enabled": True}
        ),
        # DR + Sim2SG whose confident, ImageNet-vetted predictions on the target frames also train the
        # model directly (self-training), so it sees real pixels with (pseudo) labels
        Method(
            "sim2sg_dr_st",
            "DR + Sim2SG + vetted self-training",
            "adapt",
            pretrain_domain="randomized",
            switches={**_FULL, "evidence.enabled": True, "self_training.enabled": True},
        ),
        Method("oracle", "Oracle (labelled target)", "finetune", train_domain="target"),
    )
}

#: Table order (the paper's Table 1: baselines, the Sim2SG ablations, then the oracle).
METHOD_ORDER = list(METHODS)


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known: {METHOD_ORDER}") from None


def configure(base: AdaptConfig, method: Method) -> AdaptConfig:
    """A copy of ``base`` with ``method``'s switches applied (each ablation = flags only)."""
    if method.kind != "adapt":
        raise ValueError(f"method {method.name!r} is {method.kind}, not an adaptation method")
    cfg = copy.deepcopy(base)
    for path, value in method.switches.items():
        obj = cfg
        parts = path.split(".")
        for p in parts[:-1]:
            obj = getattr(obj, p)
        if not hasattr(obj, parts[-1]):
            raise ValueError(f"method {method.name}: AdaptConfig has no field {path!r}")
        setattr(obj, parts[-1], value)
    return cfg.validate(f"method {method.name}")
