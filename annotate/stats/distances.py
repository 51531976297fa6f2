"""Distances between labels: band, MASI, ordinal, and the shared array types (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

from annotate.errors import AgreementInputError

Level: TypeAlias = Literal["nominal", "ordinal", "interval", "ratio"]

FloatArray: TypeAlias = npt.NDArray[np.float64]

IntArray: TypeAlias = npt.NDArray[np.int64]

# A level of measurement, or a square distance matrix over the labels (zero diagonal).
Metric: TypeAlias = Level | FloatArray
# What public functions accept for one: a level name, or any square array-like (nested lists).
MetricLike: TypeAlias = Level | npt.ArrayLike


@dataclass(frozen=True)
class EncodedLabels:
    """An annotators x units label matrix given as integer codes into `values` (-1: missing).

    What a caller that holds its labels coded passes instead of an object matrix: every
    function that takes a `LabelMatrix` reads it as the matrix of `values[code]` (None where
    -1), and those that encode their input skip placing and hashing each label. `values` are
    distinct (as `pd.factorize` gives them) and never None.
    """

    codes: IntArray
    values: Sequence[Any]

    def to_objects(self) -> npt.NDArray[np.object_]:
        """The annotators x units object matrix these codes stand for."""
        lookup = np.empty(len(self.values) + 1, dtype=object)  # the last slot, None, is -1's
        lookup[: len(self.values)] = list(self.values)
        result: npt.NDArray[np.object_] = lookup[self.codes]
        return result


# annotators x units; a DataFrame, a NumPy array, a list of lists, or already coded.
LabelMatrix: TypeAlias = pd.DataFrame | npt.NDArray[Any] | Sequence[Sequence[Any]] | EncodedLabels

_LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval", "ratio")


def as_metric(level: MetricLike) -> Metric:
    """A level name as given; anything else as a float distance matrix (nested lists too).

    Raises AgreementInputError when a matrix is not square or not numeric. Level names are
    checked where they are used ("Unknown level ...").
    """
    if isinstance(level, str):
        return level  # type: ignore[return-value]
    try:
        matrix = np.asarray(level, dtype=np.float64)
    except (TypeError, ValueError):
        raise AgreementInputError(
            f"Unknown level {level!r}: expected a level name or a square numeric matrix"
        ) from None
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise AgreementInputError(f"Distance matrix must be square, got shape {matrix.shape}")
    return matrix


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

    ``1 - jaccard * m`` with m = 1 for equal sets, 2/3 when one is a subset of the other,
    1/3 when they overlap otherwise, 0 when disjoint: Passonneau's exact weights (nltk's
    ``masi_distance`` rounds them to 0.67 and 0.33). Two empty sets ("the response is fine"
    twice) are at distance 0; an empty and a non-empty set at distance 1.
    """
    if not a and not b:
        return 0.0
    shared = len(a & b)
    jaccard = shared / len(a | b)
    if a == b:
        monotonicity = 1.0
    elif a <= b or b <= a:
        monotonicity = 2 / 3
    elif shared:
        monotonicity = 1 / 3
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
