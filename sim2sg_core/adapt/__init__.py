"""Sim2SG domain adaptation: label, prediction and appearance alignment, baselines and benchmark.

The ROS adaptation node calls :func:`adapt_from_bags` (or :func:`run_adaptation` with any
:class:`TargetSource`); see ``sim2sg_core/adapt/sim2sg.py``.
"""

from sim2sg_core.adapt.config import AdaptConfig, AdaptConfigError, BenchProfile, load_adapt_config, load_bench_profile
from sim2sg_core.adapt.grl import GradientReversal, grad_reverse, grl_lambda
from sim2sg_core.adapt.sim2sg import (
    AdaptationError,
    AdaptationInterrupted,
    AdaptResult,
    adapt_from_bags,
    run_adaptation,
)
from sim2sg_core.adapt.targets import (
    ArrayTargetSource,
    BagTargetSource,
    ImageFolderSource,
    KittiTargetSource,
    SimTargetSource,
    TargetSource,
    TargetSourceError,
)

__all__ = [
    "AdaptConfig",
    "AdaptConfigError",
    "AdaptResult",
    "AdaptationError",
    "AdaptationInterrupted",
    "ArrayTargetSource",
    "BagTargetSource",
    "BenchProfile",
    "GradientReversal",
    "ImageFolderSource",
    "KittiTargetSource",
    "SimTargetSource",
    "TargetSource",
    "TargetSourceError",
    "adapt_from_bags",
    "grad_reverse",
    "grl_lambda",
    "load_adapt_config",
    "load_bench_profile",
    "run_adaptation",
]
