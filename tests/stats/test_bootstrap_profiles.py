"""Bootstrap intervals summed over unit profiles equal those summed unit by unit.

The reference below is the straightforward bootstrap: for each resample, each unit's weight
(how often it was drawn), and alpha from those weights over every unit. The intervals must be
the very same numbers for the same seed, whichever way the resamples are summed.
"""

from __future__ import annotations

import numpy as np
import pytest

from annotate.schema import LabelSchema
from annotate.stats import bootstrap
from annotate.stats.bootstrap import (
    _bootstrap_cis,
    _grouped_multiplicities,
    _multiplicities,
    _percentile_ci,
    _Resamplable,
    _resamplable,
    _resampled_alphas,
)
from annotate.stats.distances import band_distance


def reference_cis(
    items: list[_Resamplable], n_units: int, n_resamples: int, confidence: float, seed: int
) -> list[tuple[float, float] | None]:
    if n_resamples <= 0 or n_units == 0 or not items:
        return [None] * len(items)
    rng = np.random.default_rng(seed)
    block = max(1, bootstrap._BLOCK_CELLS // n_units)
    alphas = np.empty((len(items), n_resamples))
    for start in range(0, n_resamples, block):
        weights = _multiplicities(rng, n_units, min(block, n_resamples - start))
        for row, item in enumerate(items):
            alphas[row, start : start + weights.shape[0]] = _resampled_alphas(item, weights)
    return [_percentile_ci(row, confidence) for row in alphas]


def random_codes(
    rng: np.random.Generator, n_values: int, n_units: int, most: int, annotators: int = 5
) -> np.ndarray:
    """Annotators x units codes, 0 to `most` labels per unit (-1 missing)."""
    codes = np.full((annotators, n_units), -1, dtype=np.int64)
    for unit in range(n_units):
        who = rng.choice(annotators, size=int(rng.integers(0, most + 1)), replace=False)
        # Few values per unit, as in real labels: many units share a profile.
        codes[who, unit] = rng.integers(0, n_values, size=len(who)) % max(1, n_values - 1)
    return codes


def items_for(codes: np.ndarray, n_values: int, credit: np.ndarray) -> list[_Resamplable]:
    values = np.arange(n_values, dtype=np.float64)
    out = [_resamplable(codes, n_values, "nominal", values)]
    if n_values >= 2:
        out.append(_resamplable(codes, n_values, band_distance(credit), values))
        out.append(_resamplable(codes, n_values, "ordinal", values))
    return out


CASES = [
    pytest.param(6, 300, 3, True, id="three-labels-exact"),
    pytest.param(3, 200, 2, True, id="two-labels-exact"),
    pytest.param(6, 300, 4, False, id="four-labels-by-unit"),  # weights of 1/3 do not sum exactly
    pytest.param(2, 50, 1, True, id="single-labels-only"),
    pytest.param(1, 80, 3, True, id="one-category"),
]


@pytest.mark.parametrize(("n_values", "n_units", "most", "exact"), CASES)
@pytest.mark.parametrize("seed", [11])
def test_profiles_give_the_intervals_of_the_units(
    schema: LabelSchema,
    monkeypatch: pytest.MonkeyPatch,
    n_values: int,
    n_units: int,
    most: int,
    exact: bool,
    seed: int,
) -> None:
    # Small blocks, so that several blocks of resamples are drawn and summed.
    monkeypatch.setattr(bootstrap, "_BLOCK_CELLS", 7 * n_units)
    rng = np.random.default_rng(seed)
    codes = random_codes(rng, n_values, n_units, most)
    credit = schema.symmetric_credit_matrix()[:n_values, :n_values]
    items = items_for(codes, n_values, credit)
    grouped: list[bool] = []

    def by_profile(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
        found = profiles(columns)
        grouped.append(found is not None)
        return found

    profiles = bootstrap._by_profile
    monkeypatch.setattr(bootstrap, "_by_profile", by_profile)
    got = _bootstrap_cis(items, n_units, 60, 0.9, seed)
    assert got == reference_cis(items, n_units, 60, 0.9, seed)
    # Where every sum is exact, the resamples were summed over profiles.
    assert grouped == ([True] if exact else [])
    if n_units and most >= 2 and n_values >= 2:
        assert any(ci is not None for ci in got)


def test_grouped_draws_are_the_unit_draws_summed_per_profile() -> None:
    group = np.array([0, 1, 0, 2, 1, 0, 3])
    grouped = _grouped_multiplicities(np.random.default_rng(5), group, 4, 9)
    per_unit = _multiplicities(np.random.default_rng(5), len(group), 9)
    summed = np.stack([per_unit[:, group == g].sum(axis=1) for g in range(4)], axis=1)
    assert np.array_equal(grouped, summed)
    assert np.array_equal(grouped.sum(axis=1), np.full(9, len(group)))
