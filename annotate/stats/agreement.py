"""Krippendorff's alpha for any level or distance, per category and over sets (pure)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from annotate.errors import AgreementInputError
from annotate.stats.distances import (
    _LEVELS,
    EncodedLabels,
    FloatArray,
    IntArray,
    LabelMatrix,
    Metric,
    MetricLike,
    _check_distance_matrix,
    _distance,
    as_metric,
    masi_distance_matrix,
)
from annotate.stats.exact_alpha import package_alpha

# The package materialises units x values x values arrays several times over; past this many
# cells (64 MiB of float64 each) the numpy path, which never does, takes over.
_PACKAGE_MAX_CELLS = 1 << 23

# Up to this many values a dense units x values count matrix is cheap; beyond it (MASI over
# many distinct sets) work is done per annotator pair or per value instead.
DENSE_MAX_VALUES = 32


def _as_object_matrix(data: LabelMatrix) -> npt.NDArray[np.object_]:
    if isinstance(data, EncodedLabels):
        return data.to_objects()
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
    uniques: Any
    if isinstance(data, EncodedLabels):
        shape = data.codes.shape
        flat_codes, uniques = _present_codes(data, ordered=labels is None)
    else:
        matrix = _as_object_matrix(data)
        shape = matrix.shape
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
    return mapping[flat_codes].reshape(shape), domain


def _present_codes(data: EncodedLabels, ordered: bool) -> tuple[IntArray, list[Any]]:
    """What `pd.factorize` gives for the matrix `data` stands for: flat codes over the values
    present. `ordered`: the values in order of first appearance, as factorize has them (the
    order matters where sets are sorted, by inclusion); else in the order of `data.values`."""
    codes = np.asarray(data.codes, dtype=np.int64).ravel()
    if codes.size and int(codes.max()) >= len(data.values):
        raise AgreementInputError(
            f"Code {int(codes.max())} is out of range for {len(data.values)} values"
        )
    if ordered:
        found, first = np.unique(codes, return_index=True)
        present = found[found >= 0][np.argsort(first[found >= 0], kind="stable")]
    else:
        (present,) = np.nonzero(np.bincount(codes + 1, minlength=len(data.values) + 1)[1:])
    renumber = np.full(len(data.values) + 1, -1, dtype=np.int64)  # the last slot is -1's
    renumber[present] = np.arange(len(present))
    return renumber[codes], [data.values[i] for i in present]


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
    # One bin per (unit, value), and one past the end that takes the missing labels: no
    # gather of the present ones.
    cells = np.where(
        code_matrix >= 0, code_matrix + np.arange(n_units) * n_values, n_units * n_values
    )
    flat = np.bincount(cells.ravel(), minlength=n_units * n_values + 1)[:-1]
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


def _unit_pair_sums(
    codes: IntArray, n_values: int, dist: FloatArray, *, dense: bool | None = None
) -> FloatArray:
    """Per unit, the summed distance over ordered pairs of distinct annotators' labels."""
    if dense is None:
        dense = n_values <= DENSE_MAX_VALUES
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


def pool_unanimous(counts: npt.ArrayLike) -> IntArray:
    """A smaller units x values count matrix with the same coincidences, so the same alpha.

    Units with fewer than two labels add nothing to the coincidence matrix and are dropped.
    A unit whose m labels all take value c adds m(m - 1) / (m - 1) = m to o_cc and nothing
    anywhere else, so every unanimous unit on c together adds what one unit with all their
    labels on c adds: they become that one row (a row per value, after the mixed units in
    their order). Alpha at every level (and under any distance) is a function of the
    coincidences alone, so it is unchanged; only the order of the floating-point sum over
    units differs, which moves at most the last bits when some weights 1 / (m - 1) are not
    exact in binary. ``counts`` must be whole, non-negative numbers.
    """
    count_matrix = np.asarray(counts)
    if count_matrix.ndim != 2:
        raise AgreementInputError(
            f"Counts must be 2-D (units x values), got shape {count_matrix.shape}"
        )
    labelled = count_matrix.sum(axis=1)
    pairable = count_matrix[labelled >= 2]
    unanimous = pairable.max(axis=1, initial=0) == labelled[labelled >= 2]
    pooled = pairable[unanimous].sum(axis=0)
    (used,) = np.nonzero(pooled)
    merged = np.zeros((len(used), count_matrix.shape[1]), dtype=count_matrix.dtype)
    merged[np.arange(len(used)), used] = pooled[used]
    result: IntArray = np.concatenate([pairable[~unanimous], merged])
    return result


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
    level: MetricLike = "nominal",
    value_domain: Sequence[float] | npt.ArrayLike | None = None,
) -> float:
    """Krippendorff's alpha from a units x values count matrix (the scalable entry point).

    ``level`` is "nominal", "ordinal" (values in column order), "interval", "ratio" or a
    symmetric zero-diagonal distance matrix over the columns. ``value_domain`` gives the numeric
    value of each column for interval/ratio (default 0..V-1). Returns NaN when alpha is
    undefined: fewer than two values, no unit with two labels, or no variation. Whole-number
    counts reach the package pooled (``pool_unanimous``): fewer rows, the same alpha.
    """
    level = as_metric(level)
    count_matrix = np.asarray(counts)
    if count_matrix.ndim != 2:
        raise AgreementInputError(
            f"Counts must be 2-D (units x values), got shape {count_matrix.shape}"
        )
    n_values = count_matrix.shape[1]
    values = (
        np.arange(n_values, dtype=np.float64)
        if value_domain is None
        else np.asarray(value_domain, dtype=np.float64)
    )
    if values.shape != (n_values,):
        raise AgreementInputError(f"value_domain must have one value per column ({n_values})")
    if isinstance(level, np.ndarray):
        _check_distance_matrix(level, n_values)
    if np.issubdtype(count_matrix.dtype, np.integer):
        count_matrix = pool_unanimous(count_matrix)
    return _counts_alpha(count_matrix, level, values)


def _counts_alpha(count_matrix: npt.NDArray[Any], level: Metric, values: FloatArray) -> float:
    """``alpha_from_counts`` once its arguments are checked (and the counts pooled)."""
    n_units, n_values = count_matrix.shape
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
        result = package_alpha(count_matrix, _package_metric(level, n_values), values)
    return result if math.isfinite(result) else math.nan


def alpha(
    data: LabelMatrix,
    level: MetricLike = "nominal",
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
    metric = as_metric(level)
    codes, domain, values = _resolve_domain(data, metric, labels, value_domain)
    return _point_alpha(codes, len(domain), metric, values)


def _point_alpha(
    codes: IntArray,
    n_values: int,
    metric: Metric,
    values: FloatArray,
    pooled: IntArray | None = None,
) -> float:
    """The package on pooled value counts while its units x V x V temporaries stay small,
    else numpy. ``pooled`` is ``_pooled_counts(codes, n_values)`` when the caller has it."""
    if pooled is None:
        pooled = _pooled_counts(codes, n_values)
    if pooled is not None:
        return _counts_alpha(pooled, metric, values)
    return _numpy_alpha(codes, n_values, metric, values)


def _pooled_counts(codes: IntArray, n_values: int) -> IntArray | None:
    """``pool_unanimous(value_counts_from_codes(codes, n_values))``, row for row, without
    counting the unanimous units one by one; None when the package's units x V x V
    temporaries would pass ``_PACKAGE_MAX_CELLS`` even so."""
    present = codes >= 0
    labelled = present.sum(axis=0)
    top = codes.max(axis=0, initial=-1)
    low = np.where(present, codes, n_values).min(axis=0, initial=n_values)
    if top.size and int(top.max()) >= n_values:
        raise AgreementInputError(f"Code {int(top.max())} is out of range for {n_values} values")
    pairable = labelled >= 2
    unanimous = pairable & (top == low)
    mixed = pairable & (top != low)
    # Whole numbers well below 2**53 as float64 weights: the sums are exact.
    pooled = np.bincount(top[unanimous], weights=labelled[unanimous], minlength=n_values).astype(
        np.int64
    )
    (used,) = np.nonzero(pooled)
    n_rows = int(np.count_nonzero(mixed)) + len(used)
    if n_rows * n_values * n_values > _PACKAGE_MAX_CELLS:
        return None
    merged = np.zeros((len(used), n_values), dtype=np.int64)
    merged[np.arange(len(used)), used] = pooled[used]
    result: IntArray = np.concatenate([value_counts_from_codes(codes[:, mixed], n_values), merged])
    return result


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


def disagreement_scores(
    data: LabelMatrix,
    distance: MetricLike = "nominal",
    labels: Sequence[Hashable] | None = None,
    value_domain: Sequence[float] | npt.ArrayLike | None = None,
) -> FloatArray:
    """Per unit, the mean distance between two different annotators' labels.

    0 when the labels are unanimous or fewer than two; up to 1 for nominal and band distances
    (pass ``band_distance(credit)`` for right_action so near-misses score low). Sort descending
    to order an adjudication queue.
    """
    distance = as_metric(distance)
    codes, domain, values = _resolve_domain(data, distance, labels, value_domain)
    labelled = (codes >= 0).sum(axis=0)
    pairable = np.where(labelled >= 2, codes, -1)
    marginals = np.bincount(pairable[pairable >= 0], minlength=len(domain)).astype(np.float64)
    dist = _distance(distance, len(domain), values, marginals)
    sums = _unit_pair_sums(codes, len(domain), dist)
    pairs = (labelled * (labelled - 1)).astype(np.float64)
    scores: FloatArray = np.divide(sums, pairs, out=np.zeros_like(sums), where=pairs > 0)
    return scores
