"""Bootstrap confidence intervals for alpha, resampling items (pure)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, BeforeValidator
from threadpoolctl import threadpool_limits

from annotate.errors import AgreementInputError
from annotate.stats import agreement
from annotate.stats.agreement import (
    _point_alpha,
    _resolve_domain,
    _unit_pair_sums,
    value_counts_from_codes,
)
from annotate.stats.distances import (
    FloatArray,
    IntArray,
    LabelMatrix,
    Metric,
    MetricLike,
    _distance,
    _ordinal_distances,
    as_metric,
)

# Resamples are drawn in blocks so that the (resamples x units) weight matrix stays ~32 MiB.
_BLOCK_CELLS = 1 << 22

# Bootstrap sums of multiples of 2**-_EXACT_BITS (at the finest) are exact: see _exact_sums.
_EXACT_BITS = 10

# The seed of the projection that groups units with equal rows (any fixed seed will do).
_PROFILE_SEED = 20_261_206


@dataclass(frozen=True)
class _Resamplable:
    """Per-unit pieces from which alpha of any weighted resample of units is a weighted sum."""

    n_values: int
    observed: FloatArray | None  # units: pair distance sums / (labels - 1); fixed metrics only
    counts: FloatArray | None  # units x values, pairable units only (zero rows otherwise)
    sparse: list[tuple[IntArray, FloatArray]] | None  # per value: (units, counts) when V is large
    dist: FloatArray | None  # None for ordinal, whose distances move with the marginals
    coincidences: FloatArray | None  # units x V*V, ordinal only


def _resamplable(
    codes: IntArray, n_values: int, metric: Metric, values: FloatArray
) -> _Resamplable:
    labelled = (codes >= 0).sum(axis=0)
    pair_codes = np.where(labelled >= 2, codes, -1)
    weights = np.divide(1.0, labelled - 1.0, out=np.zeros(labelled.shape), where=labelled >= 2)
    ordinal = isinstance(metric, str) and metric == "ordinal"
    if ordinal and n_values > agreement.DENSE_MAX_VALUES:
        raise AgreementInputError(
            f"Ordinal bootstrap supports up to {agreement.DENSE_MAX_VALUES} values"
        )
    dense = n_values <= agreement.DENSE_MAX_VALUES
    counts = value_counts_from_codes(pair_codes, n_values).astype(np.float64) if dense else None
    sparse = None if dense else _sparse_counts(pair_codes, n_values)
    if ordinal:
        assert counts is not None
        per_unit = counts[:, :, None] * counts[:, None, :]
        per_unit -= counts[:, :, None] * np.eye(n_values)
        per_unit *= weights[:, None, None]
        flat = per_unit.reshape(len(weights), n_values * n_values)  # -1 fails on 0 units
        return _Resamplable(n_values, None, counts, None, None, flat)
    marginals = np.bincount(pair_codes[pair_codes >= 0], minlength=n_values).astype(np.float64)
    dist = _distance(metric, n_values, values, marginals)
    if counts is not None:  # `_unit_pair_sums`'s dense sums, from the counts made above
        sums = ((counts @ dist) * counts).sum(axis=1) - counts @ np.diag(dist)
    else:
        sums = _unit_pair_sums(pair_codes, n_values, dist, dense=False)
    return _Resamplable(n_values, sums * weights, counts, sparse, dist, None)


def _sparse_counts(codes: IntArray, n_values: int) -> list[tuple[IntArray, FloatArray]]:
    present = codes >= 0
    units = np.broadcast_to(np.arange(codes.shape[1]), codes.shape)[present]
    keys, key_counts = np.unique(units * n_values + codes[present], return_counts=True)
    by_value = keys % n_values
    return [
        (keys[by_value == v] // n_values, key_counts[by_value == v].astype(np.float64))
        for v in range(n_values)
    ]


def _resampled_alphas(
    item: _Resamplable,
    weights: FloatArray,
    marginals: FloatArray | None = None,
    *,
    observed: FloatArray | None = None,
    coincidences: FloatArray | None = None,
) -> FloatArray:
    """Alpha for each row of a (resamples x units) multiplicity matrix.

    ``marginals``, ``observed`` and ``coincidences`` are ``weights @ item.counts``,
    ``weights @ item.observed`` and ``weights @ item.coincidences`` when the caller has them.
    """
    if item.coincidences is not None:
        if coincidences is None:
            coincidences = weights @ item.coincidences
        pairs = coincidences.reshape(-1, item.n_values, item.n_values)
        marginals = pairs.sum(axis=2)
        dist = _ordinal_distances(marginals)
        observed = (pairs * dist).sum(axis=(1, 2))
        spread = np.einsum("bv,bvw,bw->b", marginals, dist, marginals)
    else:
        assert item.dist is not None and item.observed is not None
        if marginals is not None:
            pass
        elif item.counts is not None:
            marginals = weights @ item.counts
        else:
            assert item.sparse is not None
            marginals = np.empty((weights.shape[0], item.n_values))
            for value, (units, unit_counts) in enumerate(item.sparse):
                marginals[:, value] = weights[:, units] @ unit_counts
        if observed is None:
            observed = weights @ item.observed
        spread = ((marginals @ item.dist) * marginals).sum(axis=1)
    total = marginals.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = spread / (total - 1)
        result: FloatArray = np.where(
            (total >= 2) & (expected > 0), 1 - observed / expected, np.nan
        )
    return result


def _exact_sums(values: FloatArray, n_units: int) -> bool:
    """Whether the bootstrap's weighted sums of `values` are exact in float64 in any order.

    The weights are whole numbers adding up to `n_units`. When the values are multiples of
    2**-k (k <= _EXACT_BITS) and n_units times the largest stays below 2**53 at that scale,
    every product and every partial sum is such a multiple, small enough to be represented:
    no addition rounds, so one matrix product over many columns gives the very figures that
    one product per column does.
    """
    if not np.all(np.isfinite(values)):
        return False
    top = float(np.abs(values).max(initial=0.0))
    for bits in range(_EXACT_BITS + 1):
        scaled = np.ldexp(values, bits)
        if np.array_equal(scaled, np.floor(scaled)):
            return top * 2.0**bits * n_units < 2.0**53
    return False


def _multiplicities(rng: np.random.Generator, n_units: int, rows: int) -> FloatArray:
    """(rows x units) counts of how often each unit is drawn in each resample of n_units."""
    draws = rng.integers(0, n_units, size=(rows, n_units))
    # Row by row: no offset pass over the draws, no int64 copy of the counts to convert.
    counts = np.empty((rows, n_units), dtype=np.float64)
    for row in range(rows):
        counts[row] = np.bincount(draws[row], minlength=n_units)
    return counts


def _all_stacked(items: Sequence[_Resamplable], at: dict[tuple[int, str], slice]) -> bool:
    """Whether every figure a resample needs of every item is an exact weighted sum."""
    for i, item in enumerate(items):
        needed = ("coincidences",) if item.coincidences is not None else ("counts", "observed")
        if any((i, name) not in at for name in needed):
            return False
    return True


def _by_profile(columns: Sequence[FloatArray]) -> tuple[IntArray, FloatArray] | None:
    """(each unit's profile, profiles x columns): units whose rows are equal in every block
    of `columns` share a profile. None when a check finds two different rows grouped."""
    n_units = columns[0].shape[0]
    # A fixed random projection names each row; equal rows always get equal names, and the
    # check below catches any two different rows that would share one.
    directions = np.random.default_rng(_PROFILE_SEED)
    names = np.zeros(n_units)
    for part in columns:
        names += part @ directions.standard_normal(part.shape[1])
    _, first, group = np.unique(names, return_index=True, return_inverse=True)
    group = group.ravel()
    for part in columns:
        if not np.array_equal(part[first][group], part):
            return None
    return group.astype(np.int64), np.hstack([part[first] for part in columns])


def _grouped_multiplicities(
    rng: np.random.Generator, group: IntArray, n_groups: int, rows: int
) -> FloatArray:
    """(rows x profiles): how often each profile is drawn in each resample of the units.

    The very draws of `_multiplicities` (the same generator calls), summed per profile: a
    resample's weighted sum over units equals its sum over profiles, and with the sums exact
    (see _exact_sums) the figures are the same as summing over units.
    """
    n_units = group.shape[0]
    draws = rng.integers(0, n_units, size=(rows, n_units))
    counts = np.empty((rows, n_groups), dtype=np.float64)
    for row in range(rows):
        counts[row] = np.bincount(group[draws[row]], minlength=n_groups)
    return counts


def _percentile_ci(alphas: FloatArray, confidence: float) -> tuple[float, float] | None:
    defined = alphas[np.isfinite(alphas)]
    if defined.size == 0:
        return None
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(defined, [tail, 1.0 - tail])
    return float(low), float(high)


def _bootstrap_cis(
    items: Sequence[_Resamplable], n_units: int, n_resamples: int, confidence: float, seed: int
) -> list[tuple[float, float] | None]:
    """Percentile intervals for several fields from one shared set of unit resamples."""
    if not 0 < confidence < 1:
        raise AgreementInputError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples <= 0 or n_units == 0 or not items:
        return [None] * len(items)
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_CELLS // n_units)
    alphas = np.empty((len(items), n_resamples))
    # Every field's value counts side by side, and its per-unit observed disagreement (or
    # ordinal coincidences) where their weighted sums are exact, so that each block of
    # weights is read once for all of them rather than once per field (the products are
    # memory-bound). Counts and weights are small integers, and see _exact_sums for the rest:
    # the sums come out the same whatever the order, so the figures are the same.
    columns: list[FloatArray] = []
    at: dict[tuple[int, str], slice] = {}
    width = 0
    for i, item in enumerate(items):
        parts = {
            "counts": item.counts if item.dist is not None else None,
            "observed": item.observed[:, None] if item.observed is not None else None,
            "coincidences": item.coincidences,
        }
        for name, part in parts.items():
            if part is not None and (name == "counts" or _exact_sums(part, n_units)):
                at[i, name] = slice(width, width + part.shape[1])
                width += part.shape[1]
                columns.append(part)
    stacked = _by_profile(columns) if columns and _all_stacked(items, at) else None
    # One BLAS thread: these products are small, and on a busy machine extra threads spin
    # rather than help (3 s became 8 s on two loaded cores).
    with threadpool_limits(limits=1, user_api="blas"):
        if stacked is not None:
            group, table = stacked
            for start in range(0, n_resamples, block):
                rows = min(block, n_resamples - start)
                products = _grouped_multiplicities(rng, group, table.shape[0], rows) @ table
                for row, item in enumerate(items):
                    got = {name: products[:, where] for (i, name), where in at.items() if i == row}
                    alphas[row, start : start + rows] = _resampled_alphas(
                        item,
                        products,  # only its row count is read: every sum is in `got`
                        got.get("counts"),
                        observed=got["observed"][:, 0] if "observed" in got else None,
                        coincidences=got.get("coincidences"),
                    )
            return [_percentile_ci(row, confidence) for row in alphas]
        whole = np.hstack(columns) if columns else None
        for start in range(0, n_resamples, block):
            weights = _multiplicities(rng, n_units, min(block, n_resamples - start))
            summed = weights @ whole if whole is not None else None
            for row, item in enumerate(items):
                got = {
                    name: summed[:, where]
                    for (i, name), where in at.items()
                    if i == row and summed is not None
                }
                observed = got.get("observed")
                alphas[row, start : start + weights.shape[0]] = _resampled_alphas(
                    item,
                    weights,
                    got.get("counts"),
                    observed=None if observed is None else observed[:, 0],
                    coincidences=got.get("coincidences"),
                )
    return [_percentile_ci(row, confidence) for row in alphas]


def _nan_to_none(value: object) -> object:
    if isinstance(value, float | np.floating) and not math.isfinite(float(value)):
        return None
    return value


# alpha is None where undefined, so the JSON never carries NaN.
OptionalAlpha = Annotated[float | None, BeforeValidator(_nan_to_none)]


class AlphaEstimate(BaseModel):
    """An alpha with its bootstrap interval; None where undefined or not computed."""

    alpha: OptionalAlpha
    ci: tuple[float, float] | None = None
    n_units: int = 0


def bootstrap_alpha(
    data: LabelMatrix,
    level: MetricLike = "nominal",
    labels: Sequence[Hashable] | None = None,
    value_domain: Sequence[float] | npt.ArrayLike | None = None,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> AlphaEstimate:
    """Alpha with a percentile bootstrap interval over units (seeded, vectorised).

    Units (columns) are drawn with replacement, all of them per resample; resamples where alpha
    is undefined (e.g. one value only) are dropped before taking percentiles. ``n_units`` is
    the number of pairable units (two or more labels). Arguments otherwise as ``alpha``.
    """
    metric = as_metric(level)
    codes, domain, values = _resolve_domain(data, metric, labels, value_domain)
    point = _point_alpha(codes, len(domain), metric, values)
    item = _resamplable(codes, len(domain), metric, values)
    (ci,) = _bootstrap_cis([item], codes.shape[1], n_resamples, confidence, seed)
    return AlphaEstimate(alpha=point, ci=ci, n_units=int(((codes >= 0).sum(axis=0) >= 2).sum()))
