"""Honest intervals and readings for Krippendorff's alpha: BCa bootstrap over pairable units.

Pure numpy over annotators x units label matrices, the layout of ``annotate.stats.agreement``.

Method. Units with two or more labels are resampled with replacement (the unit is what was
sampled from the population, so it is the unit that is resampled). Alpha of a resample only
depends on how many times each distinct unit *profile* (its label counts) was drawn, so a
resample is one multinomial draw over the distinct profiles: exactly the item bootstrap,
at a cost that grows with the number of profiles rather than units. The interval is the
bias-corrected and accelerated (BCa) one of Efron (1987): the percentile interval misses
mostly on the optimistic side at small n, because alpha's bootstrap distribution is skewed
(few disagreements, bounded above by 1); BCa's bias correction and jackknife acceleration
correct for exactly that. The coverage measured in simulation is noted at SMALL_N_CAVEAT.

Readings follow Krippendorff (2004, 2019): report the probability that alpha is below the
smallest acceptable values (0.667 for tentative conclusions, 0.8 for reliable data), here the
BCa confidence distribution evaluated there, and call a field "reliable" only when that
probability is small for 0.8.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from statistics import NormalDist
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from annotate.errors import AgreementInputError
from annotate.stats.agreement import _resolve_domain, value_counts_from_codes
from annotate.stats.bootstrap import OptionalAlpha
from annotate.stats.distances import (
    FloatArray,
    IntArray,
    LabelMatrix,
    MetricLike,
    _distance,
    _ordinal_distances,
    as_metric,
)

# Krippendorff's smallest acceptable alphas: tentative conclusions, and reliable data.
THRESHOLDS = (0.667, 0.8)
# "Small" probability of alpha below a threshold, for the readings.
SMALL = 0.05
# Below this many pairable units there is no interval at all; below SMALL_N a caveat.
MIN_UNITS = 10
SMALL_N = 50
# Resample rows per block, so the (rows x profiles) draws and (rows x V*V) sums stay small.
_BLOCK = 4096
_NORMAL = NormalDist()

Status = Literal["ok", "no_variation", "too_few_units", "degenerate", "no_resamples"]
Reading = Literal["reliable", "tentative", "uncertain", "unreliable", "undefined", "too few items"]

# Measured in the seeded simulation of tests/stats/test_intervals.py (2 annotators, 3 values,
# true alpha 0.92, 1,000 datasets per size, 2,000 resamples): among datasets given an interval,
# coverage of the 95% BCa interval was 98.3% at 30 items (22% got none: every item agreed),
# 97.3% at 100 and 94.7% at 450. The old percentile interval, on the same datasets (zero-width
# intervals counted as given): 77.0%, 93.7%, 93.7%.
SMALL_N_CAVEAT = (
    "Fewer than {limit} items carry two labels: the interval is wide and leans cautious, and "
    "had every item agreed there would be none (simulated at 30 items, true alpha 0.92: "
    "22% of datasets gave no interval; 98.3% of the intervals given covered the truth)."
)


class AlphaInterval(BaseModel):
    """Alpha with a BCa interval, the resamples behind it, and a plain reading."""

    alpha: OptionalAlpha
    ci: tuple[float, float] | None = None
    confidence: float = 0.95
    method: str = "bca"
    n_units: int = 0  # pairable units (two or more labels)
    n_resamples: int = 0  # requested
    n_used: int = 0  # resamples where alpha is defined
    n_undefined: int = 0  # resamples with no variation (alpha undefined), left out
    p_below: dict[str, float] | None = None  # {"0.667": P(alpha < 0.667), "0.8": ...}
    status: Status = "ok"
    reading: Reading = "undefined"
    note: str = ""


# --- profiles --------------------------------------------------------------------------------


def _profiles(codes: IntArray, n_values: int) -> tuple[IntArray, IntArray]:
    """Distinct label-count rows of the pairable units, and how many units have each."""
    counts = value_counts_from_codes(codes, n_values)
    pairable = counts[counts.sum(axis=1) >= 2]
    if pairable.shape[0] == 0:
        return np.zeros((0, n_values), dtype=np.int64), np.zeros(0, dtype=np.int64)
    base = int(pairable.max()) + 1
    if n_values * math.log2(base) < 62:
        # One int64 key per row (counts as base-(max+1) digits): far faster than a row unique.
        keys = pairable.astype(np.int64) @ (base ** np.arange(n_values, dtype=np.int64))
        _, first, multiplicity = np.unique(keys, return_index=True, return_counts=True)
        return pairable[first].astype(np.int64), multiplicity.astype(np.int64)
    distinct, multiplicity = np.unique(pairable, axis=0, return_counts=True)
    return distinct.astype(np.int64), multiplicity.astype(np.int64)


def _coincidences(profiles: IntArray) -> FloatArray:
    """Per profile, its V x V coincidence contribution, flattened: (profiles, V*V)."""
    c = profiles.astype(np.float64)
    n_values = c.shape[1]
    pairs = c[:, :, None] * c[:, None, :] - c[:, :, None] * np.eye(n_values)
    pairs /= (c.sum(axis=1) - 1.0)[:, None, None]
    flat: FloatArray = pairs.reshape(c.shape[0], n_values * n_values)
    return flat


def _alphas(
    summed: FloatArray, n_values: int, dist: FloatArray | None, *, nominal_ok: bool = True
) -> FloatArray:
    """Alpha for each row of summed coincidences (rows x V*V); NaN where undefined."""
    pairs = summed.reshape(-1, n_values, n_values)
    marginals = pairs.sum(axis=2)
    total = marginals.sum(axis=1)
    if dist is None:
        d = _ordinal_distances(marginals)
        observed = (pairs * d).sum(axis=(1, 2))
        spread = np.einsum("bv,bvw,bw->b", marginals, d, marginals)
    else:
        observed = (summed @ dist.ravel()).astype(np.float64)
        spread = ((marginals @ dist) * marginals).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = spread / (total - 1.0)
        # Rounding can leave a tiny positive spread where every label is one value.
        defined = (total >= 2) & (expected > 1e-12 * np.maximum(observed, 1.0))
        result: FloatArray = np.where(defined, 1.0 - observed / expected, np.nan)
    return result


# --- the interval ----------------------------------------------------------------------------


def _quantile(sorted_values: FloatArray, q: float) -> float:
    return float(np.quantile(sorted_values, min(max(q, 0.0), 1.0)))


def _bca(
    point: float,
    boot: FloatArray,
    jack: FloatArray,
    jack_weights: FloatArray,
    confidence: float,
    thresholds: Sequence[float],
) -> tuple[tuple[float, float], dict[str, float]]:
    """BCa interval and the confidence distribution at ``thresholds`` (P(alpha < t))."""
    boot = np.sort(boot)
    b = boot.size
    # Mid-rank: half of the resamples equal to the estimate count as below it (alpha's
    # bootstrap distribution is discrete when few units disagree).
    below = float((boot < point).sum() + 0.5 * (boot == point).sum())
    z0 = _NORMAL.inv_cdf(min(max(below / b, 0.5 / b), 1 - 0.5 / b))
    mean = float((jack_weights * jack).sum() / jack_weights.sum())
    u = mean - jack
    den = float((jack_weights * u**2).sum())
    accel = float((jack_weights * u**3).sum()) / (6.0 * den**1.5) if den > 0 else 0.0

    def level(z: float) -> float:
        shifted = z0 + z
        return _NORMAL.cdf(z0 + shifted / (1.0 - accel * shifted))

    tail = (1.0 - confidence) / 2
    low = _quantile(boot, level(_NORMAL.inv_cdf(tail)))
    high = _quantile(boot, level(_NORMAL.inv_cdf(1.0 - tail)))

    probabilities: dict[str, float] = {}
    for t in thresholds:
        share = float((boot < t).sum() + 0.5 * (boot == t).sum()) / b
        share = min(max(share, 0.5 / b), 1 - 0.5 / b)
        w = _NORMAL.inv_cdf(share) - z0
        denom = 1.0 + accel * w
        # Past the pole of the acceleration map the distribution is saturated at 0 or 1.
        p = _NORMAL.cdf(w / denom - z0) if denom > 0 else (0.0 if w < 0 else 1.0)
        probabilities[f"{t:g}"] = p
    return (low, high), probabilities


def _reading(point: float, p_below: dict[str, float], thresholds: Sequence[float]) -> Reading:
    low, high = min(thresholds), max(thresholds)
    if point < low:
        return "unreliable"
    if p_below[f"{high:g}"] < SMALL:
        return "reliable"
    if p_below[f"{low:g}"] < SMALL:
        return "tentative"
    return "uncertain"


def alpha_interval(
    data: LabelMatrix,
    level: MetricLike = "nominal",
    labels: Sequence[Hashable] | None = None,
    value_domain: Sequence[float] | npt.ArrayLike | None = None,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    thresholds: Sequence[float] = THRESHOLDS,
    min_units: int = MIN_UNITS,
) -> AlphaInterval:
    """Alpha with a BCa bootstrap interval over pairable units, and what it supports.

    Arguments as ``annotate.stats.agreement.alpha`` (``level`` a level name or a distance matrix
    over ``labels``). ``status`` says why there is no interval: "no_variation" (every label is
    one value: alpha is undefined and more labels of the same kind will not change that),
    "too_few_units" (fewer than ``min_units`` units carry two labels), "degenerate" (every
    resample gives the same alpha: no spread to build an interval from), "no_resamples"
    (``n_resamples`` 0, or no resample defined). ``p_below`` maps each threshold to the
    probability that alpha is below it; ``reading`` is "reliable" only when that probability
    for the largest threshold is below 5%. Seeded: same data and seed, same figures.
    """
    if not 0 < confidence < 1:
        raise AgreementInputError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 0:
        raise AgreementInputError(f"n_resamples must be non-negative, got {n_resamples}")
    level = as_metric(level)
    codes, domain, values = _resolve_domain(data, level, labels, value_domain)
    n_values = len(domain)
    profiles, multiplicity = _profiles(codes, n_values)
    n_units = int(multiplicity.sum())
    base = AlphaInterval(
        alpha=None, confidence=confidence, n_units=n_units, n_resamples=n_resamples
    )
    if n_units == 0:
        return base.model_copy(
            update={
                "status": "too_few_units",
                "reading": "too few items",
                "note": "No item carries two labels yet.",
            }
        )
    no_variation = base.model_copy(
        update={
            "status": "no_variation",
            "reading": "undefined",
            "note": "No variation: every label is the same value, so alpha is undefined; "
            "more labels of the same kind will not change that.",
        }
    )
    if n_values < 2:
        return no_variation
    ordinal = isinstance(level, str) and level == "ordinal"
    per_profile = _coincidences(profiles)
    total = multiplicity.astype(np.float64) @ per_profile
    marginals = total.reshape(n_values, n_values).sum(axis=1)
    dist = None if ordinal else _distance(level, n_values, values, marginals)
    point = float(_alphas(total[None, :], n_values, dist)[0])
    if not math.isfinite(point):
        return no_variation
    base = base.model_copy(update={"alpha": point})
    if n_units < min_units:
        return base.model_copy(
            update={
                "status": "too_few_units",
                "reading": "too few items",
                "note": f"Only {n_units} items carry two labels (need {min_units} for an "
                "interval).",
            }
        )
    if n_resamples == 0:
        return base.model_copy(update={"status": "no_resamples", "reading": "undefined"})
    rng = np.random.default_rng(seed)
    shares = multiplicity / n_units
    boot = np.empty(n_resamples)
    for start in range(0, n_resamples, _BLOCK):
        rows = min(_BLOCK, n_resamples - start)
        draws = rng.multinomial(n_units, shares, size=rows).astype(np.float64)
        boot[start : start + rows] = _alphas(draws @ per_profile, n_values, dist)
    defined = boot[np.isfinite(boot)]
    used = int(defined.size)
    update: dict[str, object] = {"n_used": used, "n_undefined": n_resamples - used}
    if used == 0:
        update |= {"status": "no_resamples", "reading": "undefined"}
        return base.model_copy(update=update)
    if float(defined.max() - defined.min()) <= 1e-12:
        update |= {
            "status": "degenerate",
            "reading": "too few items",
            "note": f"Every resample gives alpha {point:.3f}: with {n_units} items there is "
            "no spread to build an interval from; label more items.",
        }
        return base.model_copy(update=update)
    # Jackknife over units: dropping any unit of a profile gives the same alpha.
    jack = _alphas(total[None, :] - per_profile, n_values, dist)
    keep = np.isfinite(jack)
    ci, p_below = _bca(
        point,
        defined,
        jack[keep],
        multiplicity[keep].astype(np.float64),
        confidence,
        thresholds,
    )
    note = ""
    if n_units < SMALL_N:
        note = SMALL_N_CAVEAT.format(limit=SMALL_N)
    update |= {
        "ci": ci,
        "p_below": p_below,
        "reading": _reading(point, p_below, thresholds),
        "note": note,
    }
    return base.model_copy(update=update)
