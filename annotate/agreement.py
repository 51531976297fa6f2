"""Inter-annotator agreement core: Krippendorff's alpha, its distances, bootstrap intervals.

Pure functions over annotators x units label matrices (rows are annotators, columns are units;
None or NaN marks a missing label). No database, no I/O, nothing runs at import. The figures
built on top (per annotator, pairwise kappa, the campaign summary) are in
``annotate.agreement_report``. Bad input raises ``AgreementInputError`` (a ValueError).

Point estimates go through the ``krippendorff`` package, fed value counts (units x values)
rather than the raw matrix. Where the package cannot scale (its coincidence step allocates
units x values x values, which rules out MASI over hundreds of distinct sets) and for bootstrap
intervals, an equivalent numpy computation on per-unit coincidences is used; the tests hold
it equal to the package to 1e-9.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeAlias

import krippendorff
import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, BeforeValidator
from threadpoolctl import threadpool_limits

from annotate.errors import AgreementInputError

Level: TypeAlias = Literal["nominal", "ordinal", "interval", "ratio"]
FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
# A level of measurement, or a square distance matrix over the labels (zero diagonal).
Metric: TypeAlias = Level | FloatArray
# annotators x units; a DataFrame, a NumPy array or a list of lists.
LabelMatrix: TypeAlias = pd.DataFrame | npt.NDArray[Any] | Sequence[Sequence[Any]]

_LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval", "ratio")
# The package materialises units x values x values arrays several times over; past this many
# cells (64 MiB of float64 each) the numpy path, which never does, takes over.
_PACKAGE_MAX_CELLS = 1 << 23
# Up to this many values a dense units x values count matrix is cheap; beyond it (MASI over
# many distinct sets) work is done per annotator pair or per value instead.
_DENSE_MAX_VALUES = 32
# Resamples are drawn in blocks so that the (resamples x units) weight matrix stays ~32 MiB.
_BLOCK_CELLS = 1 << 22
# Bootstrap sums of multiples of 2**-_EXACT_BITS (at the finest) are exact: see _exact_sums.
_EXACT_BITS = 10


# --- distances -------------------------------------------------------------------------------


def band_distance(credit: npt.ArrayLike) -> FloatArray:
    """Distance ``1 - credit`` for a tolerance-band credit matrix.

    ``credit`` is square over the action labels, symmetric, with 1 on the diagonal and values
    in [0, 1]. Raises AgreementInputError otherwise.

    Alpha under this distance ("banded alpha") is NOT always at least the nominal alpha, even
    with non-negative credits. With k_o the mean credit over the observed disagreeing pairs
    (off-diagonal coincidences) and k_e the mean credit over the chance-expected ones
    (n_c n_k, c != k), exactly ``1 - banded = (1 - nominal) (1 - k_o) / (1 - k_e)``: banded
    alpha is above nominal when annotators' misses are nearer misses than chance pairs would
    be (k_o > k_e), below it when they are farther (k_o < k_e), and equal to it under a
    constant off-diagonal credit.
    """
    matrix = np.asarray(credit, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise AgreementInputError(f"Credit matrix must be square, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)) or matrix.min() < 0 or matrix.max() > 1:
        raise AgreementInputError("Credit matrix values must lie in [0, 1]")
    if not np.allclose(np.diag(matrix), 1.0):
        raise AgreementInputError(
            f"Credit matrix diagonal must be 1, got {np.diag(matrix).tolist()}"
        )
    if not np.allclose(matrix, matrix.T):
        raise AgreementInputError("Credit matrix must be symmetric")
    distance: FloatArray = 1.0 - (matrix + matrix.T) / 2
    np.fill_diagonal(distance, 0.0)
    return distance


def masi_distance(a: AbstractSet[Any], b: AbstractSet[Any]) -> float:
    """MASI distance between two label sets (Passonneau 2006), in [0, 1].

    ``1 - jaccard * m`` with m = 1 for equal sets, 0.67 when one is a subset of the other,
    0.33 when they overlap otherwise, 0 when disjoint. Two empty sets ("the response is fine"
    twice) are at distance 0; an empty and a non-empty set at distance 1.
    """
    if not a and not b:
        return 0.0
    shared = len(a & b)
    jaccard = shared / len(a | b)
    if a == b:
        monotonicity = 1.0
    elif a <= b or b <= a:
        monotonicity = 0.67
    elif shared:
        monotonicity = 0.33
    else:
        monotonicity = 0.0
    return 1.0 - jaccard * monotonicity


def masi_distance_matrix(sets: Sequence[AbstractSet[Any]]) -> FloatArray:
    """Square matrix of pairwise MASI distances over ``sets``, in their order."""
    size = len(sets)
    matrix = np.zeros((size, size), dtype=np.float64)
    for i in range(size):
        for j in range(i + 1, size):
            matrix[i, j] = matrix[j, i] = masi_distance(sets[i], sets[j])
    return matrix


def _ordinal_distances(marginals: FloatArray) -> FloatArray:
    """Krippendorff's ordinal metric for each row of marginals: (batch, V) -> (batch, V, V)."""
    n_values = marginals.shape[-1]
    cumulative = np.concatenate(
        [np.zeros(marginals.shape[:-1] + (1,)), np.cumsum(marginals, axis=-1)], axis=-1
    )
    i, j = np.meshgrid(np.arange(n_values), np.arange(n_values), indexing="ij")
    low, high = np.minimum(i, j), np.maximum(i, j)
    between = cumulative[..., high + 1] - cumulative[..., low]
    result: FloatArray = (between - (marginals[..., i] + marginals[..., j]) / 2) ** 2
    return result


def _check_distance_matrix(matrix: npt.ArrayLike, n_values: int) -> FloatArray:
    dist = np.asarray(matrix, dtype=np.float64)
    if dist.shape != (n_values, n_values):
        raise AgreementInputError(
            f"Distance matrix must be {n_values}x{n_values} to match the labels, got {dist.shape}"
        )
    if not np.all(np.isfinite(dist)) or dist.min() < 0:
        raise AgreementInputError("Distance matrix values must be finite and non-negative")
    if not np.allclose(np.diag(dist), 0.0) or not np.allclose(dist, dist.T):
        raise AgreementInputError("Distance matrix must be symmetric with a zero diagonal")
    return dist


def _distance(
    metric: Metric, n_values: int, values: FloatArray, marginals: FloatArray
) -> FloatArray:
    """Distance matrix over value indices; ``marginals`` only matter for the ordinal metric."""
    if isinstance(metric, np.ndarray):
        return _check_distance_matrix(metric, n_values)
    if metric == "nominal":
        return 1.0 - np.eye(n_values)
    if metric == "ordinal":
        return _ordinal_distances(marginals)
    diff = values[:, None] - values[None, :]
    if metric == "interval":
        interval: FloatArray = diff**2
        return interval
    total = values[:, None] + values[None, :]
    ratio = np.divide(diff, total, out=np.zeros_like(diff), where=total != 0)
    squared: FloatArray = ratio**2
    return squared


# --- encoding --------------------------------------------------------------------------------


def _as_object_matrix(data: LabelMatrix) -> npt.NDArray[np.object_]:
    if isinstance(data, pd.DataFrame):
        matrix = data.to_numpy(dtype=object)
    else:
        matrix = np.asarray(data, dtype=object)
    if matrix.ndim != 2:
        raise AgreementInputError(
            f"Label data must be 2-D (annotators x units), got shape {matrix.shape}"
        )
    return matrix


def _sort_key(value: object) -> tuple[Any, ...]:
    if isinstance(value, AbstractSet):
        return (len(value), sorted(str(item) for item in value))
    return (type(value).__name__, str(value))


def _sorted_distinct(values: Sequence[Hashable]) -> list[Hashable]:
    try:
        return sorted(values)  # type: ignore[type-var]
    except TypeError:
        # Sets and mixed types have no total order; any stable one will do for nominal data.
        return sorted(values, key=_sort_key)


def encode_labels(
    data: LabelMatrix, labels: Sequence[Hashable] | None = None
) -> tuple[IntArray, list[Hashable]]:
    """Map an annotators x units label matrix to integer codes over a value domain.

    Returns ``(codes, domain)``: codes has the shape of ``data`` with -1 where the label is
    missing (None or NaN), else the index of the label in ``domain``. ``domain`` is ``labels``
    when given (pass it, so a label absent from this batch does not shift the others), else the
    distinct values present, sorted. Raises AgreementInputError for a value outside ``labels``.
    """
    matrix = _as_object_matrix(data)
    try:
        flat_codes, uniques = pd.factorize(matrix.ravel())
    except TypeError as error:
        raise AgreementInputError(
            f"Labels must be hashable (use frozenset for sets): {error}"
        ) from None
    domain = list(labels) if labels is not None else _sorted_distinct(list(uniques))
    index = {label: i for i, label in enumerate(domain)}
    if len(index) != len(domain):
        raise AgreementInputError(f"Labels contain duplicates: {domain!r}")
    # Slot -1 of the mapping catches factorize's -1 for missing values.
    mapping = np.full(len(uniques) + 1, -1, dtype=np.int64)
    for position, value in enumerate(uniques):
        code = index.get(value)
        if code is None:
            known = ", ".join(str(label) for label in domain)
            raise AgreementInputError(f"Label `{value}` is not one of {known}")
        mapping[position] = code
    return mapping[flat_codes].reshape(matrix.shape), domain


def value_counts_from_codes(codes: npt.ArrayLike, n_values: int) -> IntArray:
    """Units x values matrix counting how many annotators gave each value to each unit.

    ``codes`` is annotators x units with -1 for missing (as from ``encode_labels``). This is the
    ``value_counts`` input of ``krippendorff.alpha``.
    """
    code_matrix = np.asarray(codes, dtype=np.int64)
    if code_matrix.ndim != 2:
        raise AgreementInputError(
            f"Codes must be 2-D (annotators x units), got shape {code_matrix.shape}"
        )
    if code_matrix.size and code_matrix.max() >= n_values:
        raise AgreementInputError(
            f"Code {int(code_matrix.max())} is out of range for {n_values} values"
        )
    n_units = code_matrix.shape[1]
    present = code_matrix >= 0
    units = np.broadcast_to(np.arange(n_units), code_matrix.shape)[present]
    flat = np.bincount(units * n_values + code_matrix[present], minlength=n_units * n_values)
    return flat.reshape(n_units, n_values)


def _resolve_domain(
    data: LabelMatrix,
    level: Metric,
    labels: Sequence[Hashable] | None,
    value_domain: Sequence[float] | npt.ArrayLike | None,
) -> tuple[IntArray, list[Hashable], FloatArray]:
    """Encode ``data`` and work out the numeric value of each label for interval/ratio."""
    if not isinstance(level, np.ndarray) and level not in _LEVELS:
        raise AgreementInputError(f"Unknown level {level!r}: expected one of {_LEVELS} or a matrix")
    if labels is None and value_domain is not None:
        labels = list(np.asarray(value_domain).tolist())
    codes, domain = encode_labels(data, labels)
    if isinstance(level, np.ndarray):
        _check_distance_matrix(level, len(domain))
    numeric = all(
        isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in domain
    )
    if isinstance(level, str) and level in ("interval", "ratio"):
        source = value_domain if value_domain is not None else (domain if numeric else None)
        if source is None:
            raise AgreementInputError(
                f"Level {level!r} needs numeric labels or a numeric value_domain"
            )
        values = np.asarray(source, dtype=np.float64)
        if values.shape != (len(domain),):
            raise AgreementInputError(f"value_domain must have one value per label ({len(domain)})")
    else:
        if isinstance(level, str) and level == "ordinal" and labels is None and not numeric:
            raise AgreementInputError(
                "Level 'ordinal' over non-numeric labels needs `labels` in order"
            )
        values = np.arange(len(domain), dtype=np.float64)
    return codes, domain, values


# --- the computation -------------------------------------------------------------------------


def _unit_pair_sums(
    codes: IntArray, n_values: int, dist: FloatArray, *, dense: bool | None = None
) -> FloatArray:
    """Per unit, the summed distance over ordered pairs of distinct annotators' labels."""
    if dense is None:
        dense = n_values <= _DENSE_MAX_VALUES
    if dense:
        counts = value_counts_from_codes(codes, n_values).astype(np.float64)
        # c^T D c also pairs each label with itself; the diagonal term takes that back out.
        dense_sums: FloatArray = ((counts @ dist) * counts).sum(axis=1) - counts @ np.diag(dist)
        return dense_sums
    present = codes >= 0
    # Sorting pushes missing labels (coded n_values) to the bottom of each column, so only the
    # first `depth` rows can hold labels; the padded zero row and column make them cost nothing.
    ordered = np.sort(np.where(present, codes, n_values), axis=0)
    depth = int(present.sum(axis=0).max(initial=0))
    padded = np.pad(dist, ((0, 1), (0, 1)))
    sums = np.zeros(codes.shape[1], dtype=np.float64)
    for i in range(depth):
        for j in range(i + 1, depth):
            sums += padded[ordered[i], ordered[j]]
    result: FloatArray = 2.0 * sums
    return result


def _alpha_from_parts(observed: float, marginals: FloatArray, dist: FloatArray) -> float:
    """``1 - D_o / D_e`` with both sides multiplied through by n (the pairable value count)."""
    total = float(marginals.sum())
    if total < 2:
        return math.nan
    expected = float(marginals @ dist @ marginals) / (total - 1)
    if not expected > 0:
        return math.nan
    return 1.0 - observed / expected


def _numpy_alpha(codes: IntArray, n_values: int, metric: Metric, values: FloatArray) -> float:
    """Alpha from codes without the package; equals it to rounding (see the tests)."""
    labelled = (codes >= 0).sum(axis=0)
    pairable = labelled >= 2
    if n_values < 2 or not pairable.any():
        return math.nan
    sub = codes[:, pairable]
    marginals = np.bincount(sub[sub >= 0], minlength=n_values).astype(np.float64)
    dist = _distance(metric, n_values, values, marginals)
    sums = _unit_pair_sums(sub, n_values, dist)
    return _alpha_from_parts(float((sums / (labelled[pairable] - 1)).sum()), marginals, dist)


def _package_metric(metric: Metric, n_values: int) -> Any:
    if not isinstance(metric, np.ndarray):
        return metric
    dist = _check_distance_matrix(metric, n_values)

    def lookup(v1: Any, v2: Any, i1: IntArray, i2: IntArray, n_v: Any, dtype: Any = None) -> Any:
        return dist[i1, i2]

    return lookup


def alpha_from_counts(
    counts: npt.ArrayLike,
    level: Metric = "nominal",
    value_domain: Sequence[float] | npt.ArrayLike | None = None,
) -> float:
    """Krippendorff's alpha from a units x values count matrix (the scalable entry point).

    ``level`` is "nominal", "ordinal" (values in column order), "interval", "ratio" or a
    symmetric zero-diagonal distance matrix over the columns. ``value_domain`` gives the numeric
    value of each column for interval/ratio (default 0..V-1). Returns NaN when alpha is
    undefined: fewer than two values, no unit with two labels, or no variation.
    """
    count_matrix = np.asarray(counts)
    if count_matrix.ndim != 2:
        raise AgreementInputError(
            f"Counts must be 2-D (units x values), got shape {count_matrix.shape}"
        )
    n_units, n_values = count_matrix.shape
    values = (
        np.arange(n_values, dtype=np.float64)
        if value_domain is None
        else np.asarray(value_domain, dtype=np.float64)
    )
    if values.shape != (n_values,):
        raise AgreementInputError(f"value_domain must have one value per column ({n_values})")
    if isinstance(level, np.ndarray):
        _check_distance_matrix(level, n_values)
    labelled = count_matrix.sum(axis=1)
    if n_values < 2 or not (labelled >= 2).any():
        return math.nan
    if n_units * n_values * n_values > _PACKAGE_MAX_CELLS:
        pairable = count_matrix[labelled >= 2].astype(np.float64)
        marginals = pairable.sum(axis=0)
        dist = _distance(level, n_values, values, marginals)
        sums = ((pairable @ dist) * pairable).sum(axis=1) - pairable @ np.diag(dist)
        observed = float((sums / (labelled[labelled >= 2] - 1)).sum())
        return _alpha_from_parts(observed, marginals, dist)
    with np.errstate(divide="ignore", invalid="ignore"):
        result = float(
            krippendorff.alpha(
                value_counts=count_matrix,
                value_domain=values,
                level_of_measurement=_package_metric(level, n_values),
            )
        )
    return result if math.isfinite(result) else math.nan


def alpha(
    data: LabelMatrix,
    level: Metric = "nominal",
    labels: Sequence[Hashable] | None = None,
    value_domain: Sequence[float] | npt.ArrayLike | None = None,
) -> float:
    """Krippendorff's alpha for an annotators x units label matrix.

    Values may be strings, numbers or frozensets; None or NaN is missing. ``labels`` is the
    value domain in order (required for "ordinal" over strings, and always advisable so a label
    absent from this batch does not change the result). ``level`` is "nominal", "ordinal",
    "interval", "ratio" or a distance matrix over ``labels`` (e.g. ``band_distance(credit)``).
    ``value_domain`` gives numeric values per label for interval/ratio; alone it also serves as
    ``labels``. Returns NaN when alpha is undefined (no variation, or no unit with two labels).
    """
    codes, domain, values = _resolve_domain(data, level, labels, value_domain)
    return _point_alpha(codes, len(domain), level, values)


def _point_alpha(codes: IntArray, n_values: int, metric: Metric, values: FloatArray) -> float:
    """The package on value counts while its units x V x V temporaries stay small, else numpy."""
    if codes.shape[1] * n_values * n_values <= _PACKAGE_MAX_CELLS:
        return alpha_from_counts(value_counts_from_codes(codes, n_values), metric, values)
    return _numpy_alpha(codes, n_values, metric, values)


def coincidence_matrix(data: LabelMatrix, labels: Sequence[Hashable] | None = None) -> FloatArray:
    """Krippendorff's values x values coincidence matrix (pairable units only), over ``labels``.

    Its row sums are the pairable value counts n_c; entry (c, k) counts ordered label pairs
    (c, k) from distinct annotators within a unit, each unit weighted 1 / (labels - 1).
    """
    codes, domain = encode_labels(data, labels)
    counts = value_counts_from_codes(codes, len(domain)).astype(np.float64)
    labelled = counts.sum(axis=1)
    weights = np.divide(1.0, labelled - 1, out=np.zeros_like(labelled), where=labelled >= 2)
    weighted = counts * weights[:, None]
    result: FloatArray = weighted.T @ counts - np.diag(weighted.sum(axis=0))
    return result


# --- sets ------------------------------------------------------------------------------------


def _encode_sets(
    sets_matrix: LabelMatrix, categories: Sequence[str] | None
) -> tuple[IntArray, list[frozenset[Any]]]:
    codes, domain = encode_labels(sets_matrix)
    known = None if categories is None else set(categories)
    distinct: list[frozenset[Any]] = []
    for value in domain:
        if not isinstance(value, AbstractSet):
            raise AgreementInputError(
                f"Failure categories must be frozensets or None, got {value!r}"
            )
        if known is not None and not value <= known:
            unknown = ", ".join(sorted(str(item) for item in value - known))
            raise AgreementInputError(f"Unknown failure categories: {unknown}")
        distinct.append(frozenset(value))
    return codes, distinct


def _membership_codes(codes: IntArray, distinct: Sequence[frozenset[Any]], item: str) -> IntArray:
    """Binary codes (1 ticked, 0 not, -1 missing) for one category from set codes."""
    member = np.array([item in s for s in distinct] + [False], dtype=np.int64)
    return np.where(codes >= 0, member[codes], -1)


def category_alphas(sets_matrix: LabelMatrix, categories: Sequence[str]) -> dict[str, float]:
    """Binary (ticked or not) nominal alpha per category, from an annotators x units set matrix.

    Cells are frozensets of category names or None (missing). An empty set is a label ("the
    response is fine"): every category counts as not ticked there. NaN for a category with no
    variation (never, or always, ticked).
    """
    codes, distinct = _encode_sets(sets_matrix, categories)
    return {
        item: alpha_from_counts(
            value_counts_from_codes(_membership_codes(codes, distinct, item), 2), "nominal"
        )
        for item in categories
    }


def masi_alpha(sets_matrix: LabelMatrix, categories: Sequence[str] | None = None) -> float:
    """Alpha over whole label sets under MASI distance, empty sets included as labels.

    Each distinct set present becomes one value; distances between values are
    ``masi_distance``. ``categories``, when given, validates the set members.
    """
    codes, distinct = _encode_sets(sets_matrix, categories)
    if len(distinct) < 2:
        return math.nan
    dist = masi_distance_matrix(distinct)
    return _point_alpha(codes, len(distinct), dist, np.arange(len(distinct), dtype=np.float64))


# --- bootstrap -------------------------------------------------------------------------------


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
    if ordinal and n_values > _DENSE_MAX_VALUES:
        raise AgreementInputError(f"Ordinal bootstrap supports up to {_DENSE_MAX_VALUES} values")
    dense = n_values <= _DENSE_MAX_VALUES
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
    observed = _unit_pair_sums(pair_codes, n_values, dist) * weights
    return _Resamplable(n_values, observed, counts, sparse, dist, None)


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
    stacked = np.hstack(columns) if columns else None
    # One BLAS thread: these products are small, and on a busy machine extra threads spin
    # rather than help (3 s became 8 s on two loaded cores).
    with threadpool_limits(limits=1, user_api="blas"):
        for start in range(0, n_resamples, block):
            weights = _multiplicities(rng, n_units, min(block, n_resamples - start))
            products = weights @ stacked if stacked is not None else None
            for row, item in enumerate(items):
                got = {
                    name: products[:, where]
                    for (i, name), where in at.items()
                    if i == row and products is not None
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
    level: Metric = "nominal",
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
    codes, domain, values = _resolve_domain(data, level, labels, value_domain)
    point = _point_alpha(codes, len(domain), level, values)
    item = _resamplable(codes, len(domain), level, values)
    (ci,) = _bootstrap_cis([item], codes.shape[1], n_resamples, confidence, seed)
    return AlphaEstimate(alpha=point, ci=ci, n_units=int(((codes >= 0).sum(axis=0) >= 2).sum()))


# --- per item and per annotator --------------------------------------------------------------


def disagreement_scores(
    data: LabelMatrix,
    distance: Metric = "nominal",
    labels: Sequence[Hashable] | None = None,
    value_domain: Sequence[float] | npt.ArrayLike | None = None,
) -> FloatArray:
    """Per unit, the mean distance between two different annotators' labels.

    0 when the labels are unanimous or fewer than two; up to 1 for nominal and band distances
    (pass ``band_distance(credit)`` for right_action so near-misses score low). Sort descending
    to order an adjudication queue.
    """
    codes, domain, values = _resolve_domain(data, distance, labels, value_domain)
    labelled = (codes >= 0).sum(axis=0)
    pairable = np.where(labelled >= 2, codes, -1)
    marginals = np.bincount(pairable[pairable >= 0], minlength=len(domain)).astype(np.float64)
    dist = _distance(distance, len(domain), values, marginals)
    sums = _unit_pair_sums(codes, len(domain), dist)
    pairs = (labelled * (labelled - 1)).astype(np.float64)
    scores: FloatArray = np.divide(sums, pairs, out=np.zeros_like(sums), where=pairs > 0)
    return scores
