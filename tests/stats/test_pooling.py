"""Pooled value counts: the krippendorff package gives the same alpha on them as on every unit.

`pool_unanimous` merges the unanimous units of each value into one row and drops units with
fewer than two labels; `_pooled_counts` builds the same rows from codes. Both are checked
against the package called on the plain value counts, at every level of measurement and under
a distance matrix, over random data and the edge cases.
"""

from __future__ import annotations

import math
from typing import Any

import krippendorff
import numpy as np
import pytest

from annotate import stats as ag
from annotate.errors import AgreementInputError
from annotate.stats import agreement as alpha_mod
from annotate.stats import report as rep

LEVELS = ["nominal", "ordinal", "interval", "ratio", "matrix"]


def random_codes(seed: int, unanimous_share: float) -> tuple[np.ndarray, int]:
    """Annotators x units codes (-1 missing): a share of units unanimous, some with < 2 labels."""
    rng = np.random.default_rng(seed)
    n_values = int(rng.integers(2, 7))
    annotators, units = int(rng.integers(2, 7)), int(rng.integers(1, 60))
    codes = rng.integers(0, n_values, size=(annotators, units))
    same = rng.random(units) < unanimous_share
    codes[:, same] = codes[0, same]
    codes[rng.random(codes.shape) < 0.3] = -1
    return codes, n_values


def metric(level: str, n_values: int, seed: int) -> Any:
    if level != "matrix":
        return level
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((n_values, n_values)), 1)
    return upper + upper.T


def package(counts: np.ndarray, level: Any, values: np.ndarray) -> float:
    """The package itself on these counts; NaN where it refuses or divides by zero."""
    if isinstance(level, np.ndarray):
        dist = level

        def lookup(v1: Any, v2: Any, i1: Any, i2: Any, n_v: Any, dtype: Any = None) -> Any:
            return dist[i1, i2]

        level = lookup
    try:
        with np.errstate(divide="ignore", invalid="ignore"):
            result = float(
                krippendorff.alpha(
                    value_counts=counts, value_domain=values, level_of_measurement=level
                )
            )
    except ValueError:
        return math.nan
    return result if math.isfinite(result) else math.nan


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-12


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("unanimous_share", [0.0, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("seed", range(8))
def test_pooled_counts_give_the_package_the_same_alpha(
    seed: int, unanimous_share: float, level: str
) -> None:
    codes, n_values = random_codes(seed, unanimous_share)
    counts = ag.value_counts_from_codes(codes, n_values)
    pooled = ag.pool_unanimous(counts)
    values = np.arange(1, n_values + 1, dtype=np.float64)  # ratio is degenerate at 0
    chosen = metric(level, n_values, seed)
    plain = package(counts, chosen, values)
    assert same(package(pooled, chosen, values), plain)
    assert same(ag.alpha_from_counts(counts, chosen, values), plain)
    # From codes: the very same rows, and the same alpha through the report's entry point.
    from_codes = alpha_mod._pooled_counts(codes, n_values)
    assert from_codes is not None
    assert np.array_equal(from_codes, pooled)
    assert from_codes.dtype == pooled.dtype
    assert same(alpha_mod._point_alpha(codes, n_values, chosen, values), plain)


def test_pooling_keeps_mixed_units_in_order_and_merges_the_rest_by_value() -> None:
    counts = np.array(
        [
            [2, 0, 0],  # unanimous on 0
            [1, 1, 0],  # mixed
            [0, 0, 1],  # one label: nothing to pair
            [0, 3, 0],  # unanimous on 1
            [0, 0, 0],  # no label
            [4, 0, 0],  # unanimous on 0
            [0, 2, 1],  # mixed
        ]
    )
    expected = np.array([[1, 1, 0], [0, 2, 1], [6, 0, 0], [0, 3, 0]])
    assert np.array_equal(ag.pool_unanimous(counts), expected)


@pytest.mark.parametrize(
    ("counts", "rows"),
    [
        (np.array([[3, 0], [0, 2], [2, 0]]), [[5, 0], [0, 2]]),  # all unanimous
        (np.array([[1, 0], [0, 1], [0, 0]]), np.zeros((0, 2))),  # no pairable unit
        (np.array([[2], [3]]), [[5]]),  # one value
        (np.zeros((0, 3), dtype=np.int64), np.zeros((0, 3))),  # no units
    ],
)
def test_pooling_edge_cases(counts: np.ndarray, rows: Any) -> None:
    pooled = ag.pool_unanimous(counts)
    assert np.array_equal(pooled, np.asarray(rows))
    for level in ("nominal", "ordinal", "interval"):
        values = np.arange(counts.shape[1], dtype=np.float64)
        assert same(ag.alpha_from_counts(pooled, level), ag.alpha_from_counts(counts, level))
        if counts.shape[1] >= 2:
            assert same(package(pooled, level, values), package(counts, level, values))


def test_all_unanimous_on_two_values_is_alpha_one() -> None:
    counts = np.array([[3, 0], [0, 2], [2, 0], [0, 5]])
    assert ag.alpha_from_counts(counts) == pytest.approx(1.0, abs=1e-12)
    assert ag.pool_unanimous(counts).shape == (2, 2)


def test_pooling_names_bad_input() -> None:
    with pytest.raises(AgreementInputError, match="Counts must be 2-D"):
        ag.pool_unanimous(np.array([1, 2, 3]))
    with pytest.raises(AgreementInputError, match="Code 3 is out of range for 3 values"):
        alpha_mod._pooled_counts(np.array([[3, 3], [3, 3]]), 3)


def test_summary_alphas_equal_the_package_on_plain_counts() -> None:
    """The report pools once per field and derives nothing else: each alpha is the package's."""
    rng = np.random.default_rng(11)
    labels = ["low", "mid", "high"]
    codes = rng.integers(0, 3, size=(4, 300))
    codes[:, :200] = codes[0, :200]  # mostly unanimous, as campaigns are
    codes[rng.random(codes.shape) < 0.2] = -1
    data = np.array([[None if c < 0 else labels[c] for c in row] for row in codes], dtype=object)
    summary = rep.summarize({"f": data}, {"f": labels}, ordinal=["f"], n_resamples=0)
    counts = ag.value_counts_from_codes(codes, 3)
    positions = np.arange(3, dtype=np.float64)
    field = summary.fields["f"]
    assert field.alpha == pytest.approx(package(counts, "nominal", positions), abs=1e-12)
    assert field.ordinal_alpha == pytest.approx(package(counts, "ordinal", positions), abs=1e-12)
