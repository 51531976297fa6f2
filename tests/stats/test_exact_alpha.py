"""The package's alpha without its per-unit temporaries: the same float, bit for bit.

`exact_alpha.package_alpha` sums the coincidences itself when that sum is exact (every
pairable unit with a power of two plus one labels) and calls the package otherwise. Every
case is compared with `krippendorff.alpha` by `==`, not by a tolerance: the CLI's JSON
prints alphas to the last digit.
"""

from __future__ import annotations

from typing import Any

import krippendorff
import numpy as np
import pytest

from annotate import stats as ag
from annotate.stats import agreement as alpha_mod
from annotate.stats import exact_alpha
from tests.stats.test_pooling import LEVELS, metric, package


def counts_with(seed: int, label_counts: list[int], n_values: int, units: int) -> np.ndarray:
    """Units x values counts, each unit with one of `label_counts` labels, drawn at random."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((units, n_values), dtype=np.int64)
    for row, labels in zip(rows, rng.choice(label_counts, size=units), strict=True):
        np.add.at(row, rng.integers(0, n_values, size=labels), 1)
    return rows


def package_metric(level: Any, n_values: int) -> Any:
    return alpha_mod._package_metric(level, n_values)


EXACT_LABEL_COUNTS = [[2], [3], [5], [9], [2, 3, 5], [0, 1, 3, 5, 9], [5, 1]]
INEXACT_LABEL_COUNTS = [[4], [3, 4], [6, 5], [2, 7]]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("label_counts", EXACT_LABEL_COUNTS)
@pytest.mark.parametrize("seed", range(6))
def test_exact_sum_gives_the_package_float(seed: int, label_counts: list[int], level: str) -> None:
    n_values = 2 + seed % 5
    counts = counts_with(seed, label_counts, n_values, units=50 + 300 * seed)
    values = np.arange(1, n_values + 1, dtype=np.float64)
    chosen = metric(level, n_values, seed)
    assert exact_alpha.exact_coincidences(counts) is not None
    # Pooled (what the report passes): one unanimous row of many labels per value, exact too.
    assert exact_alpha.exact_coincidences(ag.pool_unanimous(counts)) is not None
    expected = package(counts, chosen, values)
    got = ag.alpha_from_counts(counts, chosen, values)  # pooled first, then summed here
    assert got == expected or (np.isnan(got) and np.isnan(expected))
    direct = exact_alpha.package_alpha(counts, package_metric(chosen, n_values), values)
    assert direct == expected or (np.isnan(direct) and np.isnan(expected))


@pytest.mark.parametrize("label_counts", EXACT_LABEL_COUNTS)
def test_exact_sum_never_calls_the_package_coincidences(
    label_counts: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = counts_with(3, label_counts, 5, units=2_000)
    values = np.arange(5, dtype=np.float64)
    expected = package(counts, "ordinal", values)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the package's per-unit coincidences were computed")

    monkeypatch.setattr(krippendorff.krippendorff, "_coincidences", refuse)
    assert exact_alpha.package_alpha(counts, "ordinal", values) == expected


@pytest.mark.parametrize("label_counts", INEXACT_LABEL_COUNTS)
def test_inexact_sums_go_to_the_package(label_counts: list[int]) -> None:
    counts = counts_with(7, label_counts, 4, units=500)
    assert exact_alpha.exact_coincidences(counts) is None
    values = np.arange(4, dtype=np.float64)
    for level in ("nominal", "ordinal", "interval"):
        assert exact_alpha.package_alpha(counts, level, values) == package(counts, level, values)


def test_unanimous_units_of_any_size_are_exact() -> None:
    """A unanimous unit of m labels adds exactly m, also where m - 1 is no power of two."""
    counts = np.array([[4, 0, 0], [0, 7, 0], [1, 1, 0], [0, 2, 1], [0, 0, 4], [0, 6, 0]])
    got = exact_alpha.exact_coincidences(counts)
    assert got is not None
    assert np.array_equal(got, krippendorff.krippendorff._coincidences(counts))
    values = np.arange(3, dtype=np.float64)
    for level in ("nominal", "ordinal", "interval"):
        assert exact_alpha.package_alpha(counts, level, values) == package(counts, level, values)


def test_fractional_or_huge_counts_go_to_the_package() -> None:
    assert exact_alpha.exact_coincidences(np.array([[1.0, 1.0], [2.0, 0.0]])) is None
    # One unit of 2**27 + 1 labels: past the bound (2 x labels x 2**27 >= 2**53).
    huge = np.array([[2**26, 2**26 + 1]], dtype=np.int64)
    assert exact_alpha.exact_coincidences(huge) is None
    # 2**25 + 1 labels are within it, and exact.
    large = np.array([[2**24, 2**24 + 1], [3, 0]], dtype=np.int64)
    got = exact_alpha.exact_coincidences(large)
    assert got is not None
    assert np.array_equal(got, krippendorff.krippendorff._coincidences(large))
    assert exact_alpha.exact_coincidences(np.array([[3, -1], [1, 1]])) is None


def test_exact_coincidences_are_krippendorffs() -> None:
    """A hand-sized case with units of two and three labels: the package's own matrix."""
    counts = np.array([[2, 0, 0], [1, 1, 0], [0, 2, 1], [0, 0, 2], [1, 0, 1], [0, 3, 0]])
    got = exact_alpha.exact_coincidences(counts)
    assert got is not None
    assert np.array_equal(got, krippendorff.krippendorff._coincidences(counts))
