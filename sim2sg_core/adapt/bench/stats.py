"""Mean ± sample standard deviation over seeds, and its table cell (shared by every benchmark table)."""

from __future__ import annotations

import math

import numpy as np


def valid(values: list) -> list[float]:
    """The values that are numbers (None and NaN dropped: a row without that figure)."""
    return [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]


def mean_std(values: list) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value) of the valid values; NaN, NaN when none is."""
    v = valid(values)
    if not v:
        return math.nan, math.nan
    return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0


def fmt_mean_std(mean_std: tuple[float, float], n: int) -> str:
    """``mean ± std`` for several seeds, ``mean`` for one, ``n/a`` without a value."""
    mean, std = mean_std
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.3f} ± {std:.3f}" if n > 1 else f"{mean:.3f}"
