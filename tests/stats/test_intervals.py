"""BCa intervals for alpha: equivalence with alpha, statuses, readings, simulated coverage."""

from __future__ import annotations

import time

import numpy as np
import pytest

from annotate.errors import AgreementInputError
from annotate.stats import alpha, band_distance
from annotate.stats.intervals import (
    SMALL_N,
    _alphas,
    _coincidences,
    _profiles,
    alpha_interval,
)

CREDIT = [[1, 0.75, 0.25], [0.75, 1, 0.5], [0.25, 0.5, 1]]


def random_labels(seed: int, annotators: int = 4, units: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, size=units)
    labels = np.where(rng.random((annotators, units)) < 0.7, truth, rng.integers(0, 3, units))
    out = labels.astype(object)
    out[rng.random(out.shape) < 0.25] = None
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "band"])
def test_point_alpha_equals_alpha(seed: int, level: str) -> None:
    data = random_labels(seed)
    metric = band_distance(CREDIT) if level == "band" else level
    got = alpha_interval(data, metric, labels=[0, 1, 2], n_resamples=0)  # type: ignore[arg-type]
    assert got.alpha == pytest.approx(alpha(data, metric, labels=[0, 1, 2]), abs=1e-12)  # type: ignore[arg-type]


def test_dropping_one_unit_of_a_profile_is_the_jackknife_value() -> None:
    data = random_labels(4)
    codes = np.where(data == None, -1, data).astype(np.int64)  # noqa: E711
    profiles, multiplicity = _profiles(codes, 3)
    per_profile = _coincidences(profiles)
    total = multiplicity @ per_profile
    jack = _alphas(total[None, :] - per_profile, 3, 1 - np.eye(3))
    counts = np.stack([(codes == v).sum(axis=0) for v in range(3)], axis=1)
    first = np.flatnonzero((counts == profiles[0]).all(axis=1))[0]
    without = np.delete(data, first, axis=1)
    assert jack[0] == pytest.approx(alpha(without, "nominal", labels=[0, 1, 2]), abs=1e-12)


def test_same_seed_same_figures_and_resamples_add_up() -> None:
    # 11 unanimous units and one split: a resample without the split one has no variation.
    data = [["a"] * 11 + ["a"], ["a"] * 11 + ["b"]]
    first = alpha_interval(data, labels=["a", "b"], seed=7)
    again = alpha_interval(data, labels=["a", "b"], seed=7)
    assert first == again
    assert first.n_used + first.n_undefined == first.n_resamples == 2000
    # (11/12)**12 = 0.35 of resamples miss the split unit.
    assert 0.3 < first.n_undefined / 2000 < 0.4


def test_perfect_agreement_on_few_items_has_no_interval() -> None:
    five = alpha_interval([["a", "b", "a", "b", "a"]] * 2)
    assert (five.alpha, five.ci, five.status) == (1.0, None, "too_few_units")
    assert five.reading == "too few items"
    assert "Only 5 items carry two labels" in five.note
    twelve = alpha_interval([["a", "b", "a", "b", "a", "b"] * 2] * 2)
    assert (twelve.alpha, twelve.ci, twelve.status) == (1.0, None, "degenerate")
    assert twelve.reading != "reliable"
    assert "Every resample gives alpha 1.000" in twelve.note


def test_no_variation_differs_from_not_enough_items() -> None:
    same = alpha_interval([["refuse"] * 30] * 3)
    assert (same.alpha, same.status, same.reading) == (None, "no_variation", "undefined")
    assert same.note.startswith("No variation")
    unpaired = alpha_interval([["a", None, "b"], [None, "b", None]])
    assert (unpaired.alpha, unpaired.status, unpaired.n_units) == (None, "too_few_units", 0)
    assert unpaired.note == "No item carries two labels yet."


def test_readings_follow_the_probability_below_the_thresholds() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 400)

    def noisy(rate: float) -> np.ndarray:
        return np.stack(
            [np.where(rng.random(400) < rate, truth, rng.integers(0, 3, 400)) for _ in range(2)]
        )

    high = alpha_interval(noisy(0.99))
    mid = alpha_interval(noisy(0.87))
    low = alpha_interval(noisy(0.5))
    assert high.reading == "reliable" and high.p_below is not None
    assert high.p_below["0.8"] < 0.05 and high.p_below["0.667"] <= high.p_below["0.8"]
    assert mid.alpha is not None and 0.667 < mid.alpha < 0.8
    assert mid.reading == "tentative", mid
    assert low.reading == "unreliable"
    assert high.ci is not None and high.ci[0] < high.alpha < high.ci[1]  # type: ignore[operator]


def test_small_samples_carry_the_caveat() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 200)
    data = np.stack([np.where(rng.random(200) < 0.9, truth, rng.integers(0, 3, 200))] * 1)
    both = np.vstack([truth[None, :], data])
    small = alpha_interval(both[:, :30])
    large = alpha_interval(both[:, : SMALL_N + 10])
    assert small.ci is not None and f"Fewer than {SMALL_N} items" in small.note
    assert large.ci is not None and large.note == ""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confidence": 1.0}, r"confidence must be in \(0, 1\), got 1.0"),
        ({"n_resamples": -1}, "n_resamples must be non-negative, got -1"),
        ({"level": "nominalish"}, "Unknown level 'nominalish'"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(AgreementInputError, match=message):
        alpha_interval([["a", "b"], ["a", "b"]], **kwargs)  # type: ignore[arg-type]


# --- coverage ---------------------------------------------------------------------------------
# Simulation: a true class per item from P; each of 2 annotators reports it with probability
# sqrt(0.92), else draws independently from P. Marginals stay P, so the population alpha is
# exactly 0.92 (Do = (1 - a^2) De). Seeded; 1,000 datasets of 100 items, 2,000 resamples each.

P = np.array([0.5, 0.3, 0.2])
TRUE_ALPHA = 0.92


def simulated(rng: np.random.Generator, n: int) -> np.ndarray:
    z = rng.choice(3, size=n, p=P)
    keep = rng.random((2, n)) < np.sqrt(TRUE_ALPHA)
    return np.where(keep, z, rng.choice(3, size=(2, n), p=P))


def coverage(n_items: int, datasets: int, seed: int) -> tuple[float, int, float]:
    """(coverage among intervals given, datasets flagged without one, share missed above)."""
    rng = np.random.default_rng(seed)
    covered = given = above = 0
    for _ in range(datasets):
        got = alpha_interval(simulated(rng, n_items), labels=[0, 1, 2])
        if got.ci is None:
            continue
        given += 1
        covered += got.ci[0] <= TRUE_ALPHA <= got.ci[1]
        above += got.ci[0] > TRUE_ALPHA
    return covered / given, datasets - given, above / given


def test_bca_coverage_is_within_three_points_at_100_items() -> None:
    started = time.perf_counter()
    rate, flagged, above = coverage(100, 1000, seed=100)
    assert abs(rate - 0.95) <= 0.03, rate
    assert flagged <= 20  # perfect agreement on all 100 items is rare at alpha 0.92
    assert above <= 0.04  # misses are not mostly optimistic
    assert time.perf_counter() - started < 60


def test_a_profile_draw_is_an_item_resample() -> None:
    # Alpha from multinomial counts over profiles equals alpha of the resampled items spelt out.
    data = random_labels(9, annotators=3, units=60)
    codes = np.where(data == None, -1, data).astype(np.int64)  # noqa: E711
    profiles, multiplicity = _profiles(codes, 3)
    per_profile = _coincidences(profiles)
    draw = np.random.default_rng(0).multinomial(
        multiplicity.sum(), multiplicity / multiplicity.sum()
    )
    columns = []
    for profile, times in zip(profiles, draw, strict=True):
        unit = [v for v in range(3) for _ in range(profile[v])]
        columns += [unit + [None] * (3 - len(unit))] * times
    spelt_out = np.array(columns, dtype=object).T
    got = _alphas((draw @ per_profile)[None, :].astype(float), 3, 1 - np.eye(3))[0]
    assert got == pytest.approx(alpha(spelt_out, "nominal", labels=[0, 1, 2]), abs=1e-12)


def test_probability_below_the_interval_ends_is_the_tail() -> None:
    # P(alpha < t) is the BCa confidence distribution: at the 95% ends it is 2.5% and 97.5%.
    data = random_labels(3, annotators=3, units=200)
    first = alpha_interval(data, labels=[0, 1, 2])
    assert first.ci is not None
    ends = alpha_interval(data, labels=[0, 1, 2], thresholds=first.ci)
    assert ends.p_below is not None
    low, high = (ends.p_below[f"{t:g}"] for t in first.ci)
    assert low == pytest.approx(0.025, abs=0.004)
    assert high == pytest.approx(0.975, abs=0.004)
