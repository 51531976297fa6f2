"""Tests for annotate.stats (alpha, distances, bootstrap): published reference values, the
numpy path against the krippendorff package, bootstrap, MASI, per-item and per-annotator
figures, the summary."""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any, cast

import krippendorff
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotate import stats as ag
from annotate.errors import AgreementInputError
from annotate.stats import agreement as alpha_mod
from annotate.stats import bootstrap as boot
from annotate.stats import report as rep

ACTIONS = [
    "answer",
    "answer_with_caveat",
    "answer_safe_part",
    "clarify",
    "abstain",
    "refuse",
]
INTENTS = ["benign", "ambiguous", "harmful"]
CATEGORIES = [
    "over_refusal",
    "unsafe_compliance",
    "partial_compliance",
    "irrelevant_safety_pivot",
    "grounding_failure",
    "intent_misclassification",
    "overconfidence",
    "false_premise_accepted",
    "disproportionate_caveat",
]
XSTEST = (
    Path(__file__).parents[3]
    / "shared"
    / "external"
    / "xstest"
    / "model_completions"
    / "xstest_v2_completions_gpt4.csv"
)


def cell(frame: pd.DataFrame, row: str, column: str) -> float:
    """One number from a report frame (pandas-stubs types ``.loc`` scalars very broadly)."""
    return float(cast(float, frame.loc[row, column]))


def make_credit(labels: Sequence[str] = ACTIONS) -> np.ndarray:
    """The plausible right-action credit matrix of the issue, over ``labels``."""
    pairs = {
        ("answer", "answer_with_caveat"): 0.75,
        ("answer_with_caveat", "answer_safe_part"): 0.5,
        ("answer_safe_part", "clarify"): 0.5,
        ("clarify", "abstain"): 0.5,
        ("answer_safe_part", "refuse"): 0.25,
        ("abstain", "refuse"): 0.25,
        ("answer", "answer_safe_part"): 0.25,
    }
    credit = np.eye(len(labels))
    for (a, b), value in pairs.items():
        if a not in labels or b not in labels:
            continue
        i, j = labels.index(a), labels.index(b)
        credit[i, j] = credit[j, i] = value
    return credit


# --- published reference values (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability")

N = None
# Section C: 4 observers x 12 units, values 1-5, missing data.
K2011_C = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]
WORDS = ["very low", "low", "mid", "high", "very high"]
K2011_C_WORDS = [[None if v is None else WORDS[v - 1] for v in row] for row in K2011_C]
# Section A: binary data, two observers, no missing data.
K2011_A = [
    [0, 1, 0, 0, 0, 0, 0, 0, 1, 0],
    [1, 1, 1, 0, 0, 1, 0, 0, 0, 0],
]
# Section B: nominal data, two observers (Ben, Gerry), no missing data.
K2011_B = [list("aabbdcccedda"), list("babbbccceddd")]
# Wikipedia's computational example: 3 coders x 15 units.
WIKI = [
    [N, N, N, N, N, 3, 4, 1, 2, 1, 1, 3, 3, N, 3],
    [1, N, 2, 1, 3, 3, 4, 3, N, N, N, N, N, N, N],
    [N, N, 2, 1, 3, 4, 4, N, 2, 1, 1, 3, 3, N, 4],
]


@pytest.mark.parametrize(
    ("data", "level", "labels", "expected"),
    [
        pytest.param(K2011_C, "nominal", None, 0.743, id="k2011-C-nominal"),
        pytest.param(K2011_C, "ordinal", None, 0.815, id="k2011-C-ordinal"),
        pytest.param(K2011_C, "interval", None, 0.849, id="k2011-C-interval"),
        pytest.param(K2011_C, "ratio", None, 0.797, id="k2011-C-ratio"),
        pytest.param(K2011_C, "ordinal", [1, 2, 3, 4, 5], 0.815, id="k2011-C-ordinal-domain"),
        pytest.param(K2011_C_WORDS, "nominal", WORDS, 0.743, id="k2011-C-words-nominal"),
        pytest.param(K2011_C_WORDS, "ordinal", WORDS, 0.815, id="k2011-C-words-ordinal"),
        pytest.param(K2011_A, "nominal", [0, 1], 0.095, id="k2011-A-binary"),
        pytest.param(K2011_B, "nominal", list("abcde"), 0.692, id="k2011-B-nominal"),
        pytest.param(WIKI, "nominal", None, 0.691, id="wikipedia-nominal"),
        pytest.param(WIKI, "interval", None, 0.811, id="wikipedia-interval"),
    ],
)
def test_published_reference_values(
    data: list[list[Any]], level: ag.Level, labels: list[Hashable] | None, expected: float
) -> None:
    assert round(ag.alpha(data, level, labels), 3) == expected


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_wikipedia_example_from_a_dataframe_with_nan(level: ag.Level) -> None:
    frame = pd.DataFrame(WIKI, dtype=float)
    raw = np.array(WIKI, dtype=float)
    assert ag.alpha(frame, level) == pytest.approx(
        krippendorff.alpha(reliability_data=raw, level_of_measurement=level), abs=1e-12
    )


# --- the numpy path against the package ------------------------------------------------------


def random_codes(seed: int) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng(seed)
    n_annotators, n_units, n_values = (
        int(rng.integers(2, 7)),
        int(rng.integers(5, 80)),
        int(rng.integers(2, 8)),
    )
    truth = rng.integers(0, n_values, n_units)
    noise = rng.integers(0, n_values, (n_annotators, n_units))
    codes = np.where(rng.random((n_annotators, n_units)) < 0.6, truth, noise)
    codes[rng.random(codes.shape) < 0.25] = -1
    codes[:2, 0] = [0, 1]  # at least one pairable unit with variation
    return codes, n_values


def random_distance(n_values: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1000)
    upper = np.triu(rng.random((n_values, n_values)), 1)
    return upper + upper.T


def package_alpha(codes: np.ndarray, n_values: int, level: ag.Metric) -> float:
    raw = np.where(codes >= 0, codes + 1.0, np.nan)
    metric: Any = level
    if isinstance(level, np.ndarray):
        matrix = level

        def metric(v1: Any, v2: Any, i1: Any, i2: Any, n_v: Any, dtype: Any = None) -> Any:
            return matrix[i1, i2]

    return float(
        krippendorff.alpha(
            reliability_data=raw,
            value_domain=np.arange(n_values, dtype=float) + 1,
            level_of_measurement=metric,
        )
    )


def shift(codes: np.ndarray) -> list[list[float | None]]:
    """Codes as 1-based values so that ratio distances are not degenerate at 0."""
    return [[None if c < 0 else float(c + 1) for c in row] for row in codes]


LEVELS: list[str] = ["nominal", "ordinal", "interval", "ratio", "matrix"]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("level_name", LEVELS)
def test_numpy_path_equals_package(
    seed: int, level_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    codes, n_values = random_codes(seed)
    level: ag.Metric = (
        random_distance(n_values, seed) if level_name == "matrix" else level_name  # type: ignore[assignment]
    )
    expected = package_alpha(codes, n_values, level)
    domain = [float(v + 1) for v in range(n_values)]
    via_package = ag.alpha(shift(codes), level, domain)
    monkeypatch.setattr(alpha_mod, "_PACKAGE_MAX_CELLS", 0)
    via_numpy = ag.alpha(shift(codes), level, domain)
    via_counts = ag.alpha_from_counts(
        ag.value_counts_from_codes(codes, n_values), level, np.array(domain)
    )
    assert via_package == pytest.approx(expected, abs=1e-9)
    assert via_numpy == pytest.approx(expected, abs=1e-9)
    assert via_counts == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_pair_sums_dense_and_per_pair_paths_agree(seed: int) -> None:
    codes, n_values = random_codes(seed)
    dist = random_distance(n_values, seed)
    dense = alpha_mod._unit_pair_sums(codes, n_values, dist, dense=True)
    pairs = alpha_mod._unit_pair_sums(codes, n_values, dist, dense=False)
    np.testing.assert_allclose(dense, pairs, atol=1e-12)


def test_coincidence_matrix_matches_the_published_example() -> None:
    # Krippendorff 2011, section C: n_c = 9, 13, 10, 5, 3 for values 1..5 and n = 40 (unit 12,
    # with one value, is not pairable); o_11 = 3 + 2 + 2 from units 1, 8 and 11.
    matrix = ag.coincidence_matrix(K2011_C, [1, 2, 3, 4, 5])
    np.testing.assert_allclose(matrix.sum(axis=1), [9, 13, 10, 5, 3])
    np.testing.assert_allclose(matrix, matrix.T)
    assert matrix[0, 0] == pytest.approx(7)
    assert matrix[2, 2] == pytest.approx(8)
    assert matrix[1, 2] == pytest.approx(1 + 1 / 3)  # unit 2: three 2s with one 3; unit 6


# --- bootstrap -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("level_name", LEVELS)
def test_each_vectorised_resample_equals_the_package_on_the_resampled_data(
    seed: int, level_name: str
) -> None:
    codes, n_values = random_codes(seed)
    level: ag.Metric = (
        random_distance(n_values, seed) if level_name == "matrix" else level_name  # type: ignore[assignment]
    )
    item = boot._resamplable(codes, n_values, level, np.arange(n_values, dtype=float) + 1)
    weights = boot._multiplicities(np.random.default_rng(seed), codes.shape[1], 8)
    weights = np.vstack([np.ones(codes.shape[1]), weights])  # row 0 is the data itself
    got = boot._resampled_alphas(item, weights)
    for row, expected_weights in enumerate(weights):
        resampled = np.repeat(codes, expected_weights.astype(int), axis=1)
        try:
            expected = package_alpha(resampled, n_values, level)
        except ValueError:  # the package refuses resamples with no pairable unit
            expected = math.nan
        if math.isnan(expected) or math.isinf(expected):
            assert math.isnan(got[row])
        else:
            assert got[row] == pytest.approx(expected, abs=1e-9)
    assert got[0] == pytest.approx(package_alpha(codes, n_values, level), abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_resamples_over_many_values_use_per_value_marginals(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alpha_mod, "DENSE_MAX_VALUES", 1)
    codes, n_values = random_codes(seed)
    dist = random_distance(n_values, seed)
    item = boot._resamplable(codes, n_values, dist, np.arange(n_values, dtype=float))
    assert item.counts is None and item.sparse is not None
    weights = boot._multiplicities(np.random.default_rng(seed), codes.shape[1], 5)
    got = boot._resampled_alphas(item, weights)
    for row, row_weights in enumerate(weights):
        resampled = np.repeat(codes, row_weights.astype(int), axis=1)
        assert got[row] == pytest.approx(package_alpha(resampled, n_values, dist), abs=1e-9)


@pytest.mark.parametrize(
    ("values", "n_units", "exact"),
    [
        ([0.0, 0.5, 0.125, 3.0], 100_000, True),
        ([1 / 1024, 2.0], 10, True),
        ([1 / 2048], 10, False),  # finer than _EXACT_BITS
        ([1 / 3], 10, False),
        ([0.67], 10, False),
        ([float("nan"), 0.5], 10, False),
        ([2.0**40], 2**20, False),  # sums could pass 2**53
        ([], 10, True),
    ],
)
def test_exact_sums(values: list[float], n_units: int, exact: bool) -> None:
    assert boot._exact_sums(np.array(values, dtype=np.float64), n_units) is exact


def test_multiplicities_count_the_draws() -> None:
    weights = boot._multiplicities(np.random.default_rng(7), 50, 6)
    draws = np.random.default_rng(7).integers(0, 50, size=(6, 50))
    expected = np.stack([np.bincount(row, minlength=50) for row in draws]).astype(np.float64)
    assert weights.dtype == np.float64 and np.array_equal(weights, expected)
    assert (weights.sum(axis=1) == 50).all()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_annotators", [3, 4])
def test_stacked_bootstrap_products_give_the_same_bits(
    seed: int, n_annotators: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three labels per unit make every per-unit figure a multiple of 1/8 (exact sums, stacked
    # into one product); four make thirds (one product per field). Either way the intervals
    # must be bit for bit those of one product per field.
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=(n_annotators, 300))
    band = ag.band_distance(
        [[1, 0.75, 0.25, 0], [0.75, 1, 0.5, 0], [0.25, 0.5, 1, 0.5], [0, 0, 0.5, 1]]
    )
    items = [
        boot._resamplable(codes, 4, level, np.arange(4, dtype=np.float64))
        for level in ("nominal", band, "ordinal")
    ]
    stacked = boot._bootstrap_cis(items, 300, 200, 0.95, seed)
    monkeypatch.setattr(boot, "_exact_sums", lambda values, n_units: False)
    assert stacked == boot._bootstrap_cis(items, 300, 200, 0.95, seed)


def test_bootstrap_of_perfect_agreement_is_degenerate() -> None:
    units = ["answer", "refuse", "clarify", "answer", "abstain", "refuse"] * 5
    data: list[list[str | None]] = [
        list(units),
        list(units),
        [None if i % 4 == 0 else u for i, u in enumerate(units)],
    ]
    result = ag.bootstrap_alpha(data, "nominal", ACTIONS, n_resamples=200, seed=3)
    assert result.alpha == 1.0
    assert result.ci == (1.0, 1.0)
    assert result.n_units == len(units)


def test_bootstrap_without_variation_is_undefined_not_a_crash() -> None:
    data = [["answer"] * 5, ["answer"] * 5]
    result = ag.bootstrap_alpha(data, "nominal", ACTIONS, n_resamples=50)
    assert result.alpha is None and result.ci is None
    assert math.isnan(ag.alpha(data, "nominal", ACTIONS))


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    codes, n_values = random_codes(11)
    data = [[None if c < 0 else c for c in row] for row in codes]
    first = ag.bootstrap_alpha(data, "nominal", list(range(n_values)), seed=7)
    again = ag.bootstrap_alpha(data, "nominal", list(range(n_values)), seed=7)
    other = ag.bootstrap_alpha(data, "nominal", list(range(n_values)), seed=8)
    assert first == again
    assert first.ci != other.ci
    assert first.ci is not None and first.alpha is not None
    assert first.ci[0] <= first.alpha <= first.ci[1]


# --- MASI and failure categories -------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (set(), set(), 0.0),
        (set(), {"x"}, 1.0),
        ({"x"}, {"x"}, 0.0),
        ({"x"}, {"y"}, 1.0),
        # Passonneau's exact weights: 2/3 for a subset, 1/3 for an overlap.
        ({"x"}, {"x", "y"}, 1 - 0.5 * (2 / 3)),
        ({"x", "y", "z"}, {"x", "y"}, 1 - (2 / 3) * (2 / 3)),
        ({"x", "y"}, {"y", "z"}, 1 - (1 / 3) * (1 / 3)),
        ({"w", "x", "y"}, {"x", "y", "z"}, 1 - 0.5 * (1 / 3)),
    ],
)
def test_masi_distance_by_hand(a: set[str], b: set[str], expected: float) -> None:
    assert ag.masi_distance(frozenset(a), frozenset(b)) == pytest.approx(expected, abs=1e-12)
    assert ag.masi_distance(frozenset(b), frozenset(a)) == pytest.approx(expected, abs=1e-12)


FINE = frozenset[str]()


def test_masi_alpha_is_one_when_everyone_agrees_even_on_mostly_empty_sets() -> None:
    units = [FINE] * 20 + [frozenset({"over_refusal"}), frozenset({"overconfidence", "x"})]
    data = [units, units, units]
    assert ag.masi_alpha(data) == 1.0
    with pytest.raises(AgreementInputError, match="Unknown failure categories"):
        ag.masi_alpha(data, CATEGORIES)


def test_empty_sets_count_as_labels_not_missing() -> None:
    over, pivot = frozenset({"over_refusal"}), frozenset({"irrelevant_safety_pivot"})
    first = [FINE] * 6 + [over, over, pivot, over]
    second = [FINE] * 6 + [over, pivot, pivot, FINE]
    with_empty = ag.masi_alpha([first, second], CATEGORIES)
    as_missing = ag.masi_alpha(
        [[None if not s else s for s in row] for row in (first, second)], CATEGORIES
    )
    assert with_empty != pytest.approx(as_missing, abs=1e-3)
    assert with_empty > as_missing  # agreeing on "fine" is agreement
    per_category = ag.category_alphas([first, second], CATEGORIES)
    ticked = [[int("over_refusal" in s) for s in row] for row in (first, second)]
    assert per_category["over_refusal"] == pytest.approx(ag.alpha(ticked, "nominal", [0, 1]))
    assert math.isnan(per_category["unsafe_compliance"])  # never ticked: no variation


def test_masi_alpha_numpy_path_equals_package(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    pool = [frozenset(c for c in CATEGORIES[:4] if rng.random() < 0.3) for _ in range(12)]
    data: list[list[frozenset[str] | None]] = [
        [pool[int(i)] for i in rng.integers(0, len(pool), 40)] for _ in range(4)
    ]
    data[0][3] = None
    expected = ag.masi_alpha(data, CATEGORIES)
    monkeypatch.setattr(alpha_mod, "_PACKAGE_MAX_CELLS", 0)
    monkeypatch.setattr(alpha_mod, "DENSE_MAX_VALUES", 1)
    assert ag.masi_alpha(data, CATEGORIES) == pytest.approx(expected, abs=1e-9)


# --- properties ------------------------------------------------------------------------------


@st.composite
def code_matrices(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    n_values = draw(st.integers(2, 5))
    n_annotators = draw(st.integers(2, 5))
    n_units = draw(st.integers(2, 12))
    cells = draw(
        st.lists(
            st.integers(-1, n_values - 1),
            min_size=n_annotators * n_units,
            max_size=n_annotators * n_units,
        )
    )
    return np.array(cells, dtype=np.int64).reshape(n_annotators, n_units), n_values


@st.composite
def agreeing_matrices(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    n_values = draw(st.integers(2, 5))
    truth = draw(st.lists(st.integers(0, n_values - 1), min_size=2, max_size=12))
    n_annotators = draw(st.integers(2, 5))
    shown = draw(
        st.lists(
            st.booleans(), min_size=n_annotators * len(truth), max_size=n_annotators * len(truth)
        )
    )
    codes = np.where(np.array(shown).reshape(n_annotators, -1), truth, -1)
    codes[:2, :2] = truth[:2]
    return codes, n_values


def as_labels(codes: np.ndarray) -> list[list[str | None]]:
    return [[None if c < 0 else ACTIONS[c] for c in row] for row in codes]


@settings(max_examples=60, deadline=None, database=None)
@given(agreeing_matrices())
def test_alpha_is_one_when_all_annotators_agree(case: tuple[np.ndarray, int]) -> None:
    codes, n_values = case
    data, labels = as_labels(codes), ACTIONS[:n_values]
    pairable = codes[:, (codes >= 0).sum(axis=0) >= 2]
    varied = len(set(pairable[pairable >= 0].tolist())) >= 2
    for level in ("nominal", "ordinal", ag.band_distance(make_credit(labels))):
        result = ag.alpha(data, level, labels)
        if varied:
            assert result == pytest.approx(1.0, abs=1e-12)
        else:
            assert math.isnan(result)


@settings(max_examples=60, deadline=None, database=None)
@given(code_matrices(), st.randoms(use_true_random=False))
def test_permuting_annotators_or_units_changes_nothing(
    case: tuple[np.ndarray, int], random: Any
) -> None:
    codes, n_values = case
    rows, cols = list(range(codes.shape[0])), list(range(codes.shape[1]))
    random.shuffle(rows)
    random.shuffle(cols)
    labels = ACTIONS[:n_values]
    for level in ("nominal", "ordinal", ag.band_distance(make_credit(labels))):
        before = ag.alpha(as_labels(codes), level, labels)
        after = ag.alpha(as_labels(codes[rows][:, cols]), level, labels)
        assert (math.isnan(before) and math.isnan(after)) or after == pytest.approx(
            before, abs=1e-12
        )


def mean_credit(weights: np.ndarray, credit: np.ndarray) -> float:
    off = ~np.eye(len(credit), dtype=bool)
    return float((weights * credit)[off].sum() / weights[off].sum())


@settings(max_examples=80, deadline=None, database=None, derandomize=True)
@given(code_matrices(), st.lists(st.floats(0, 1), min_size=10, max_size=10))
def test_banded_alpha_beats_nominal_exactly_when_observed_misses_earn_more_credit(
    case: tuple[np.ndarray, int], credits: list[float]
) -> None:
    """Non-negative credits do NOT make banded alpha >= nominal alpha in general.

    With n the pairable value counts and o the coincidences, let k_o be the mean credit over
    observed disagreeing pairs (o_ck, c != k) and k_e over chance-expected ones (n_c n_k).
    Then 1 - banded = (1 - nominal) (1 - k_o) / (1 - k_e), so banded >= nominal exactly when
    k_o >= k_e: when annotators' misses are nearer misses than chance pairs would be.
    A constant off-diagonal credit gives k_o = k_e and banded == nominal.
    """
    codes, n_values = case
    labels = ACTIONS[:n_values]
    upper = np.zeros((n_values, n_values))
    upper[np.triu_indices(n_values, 1)] = credits[: n_values * (n_values - 1) // 2]
    credit = upper + upper.T + np.eye(n_values)
    data = as_labels(codes)
    nominal = ag.alpha(data, "nominal", labels)
    banded = ag.alpha(data, ag.band_distance(credit), labels)
    coincidences = ag.coincidence_matrix(data, labels)
    marginals = coincidences.sum(axis=1)
    off = ~np.eye(n_values, dtype=bool)
    if math.isnan(nominal) or not coincidences[off].sum() > 0:
        return  # no disagreement at all: both alphas are 1 (or undefined) together
    k_e = mean_credit(np.outer(marginals, marginals), credit)
    if k_e >= 1 - 1e-9:
        assert math.isnan(banded)
        return
    k_o = mean_credit(coincidences, credit)
    assert 1 - banded == pytest.approx((1 - nominal) * (1 - k_o) / (1 - k_e), abs=1e-9)
    if k_o > k_e + 1e-9:
        assert banded >= nominal - 1e-12
    elif k_o < k_e - 1e-9:
        assert banded <= nominal + 1e-12
    uniform = np.full((n_values, n_values), 0.4) + 0.6 * np.eye(n_values)
    assert ag.alpha(data, ag.band_distance(uniform), labels) == pytest.approx(nominal, abs=1e-9)


def test_banded_alpha_can_be_below_nominal() -> None:
    # Annotators confuse a and c (no credit); chance pairs are mostly a~b, b~c (credit 0.9).
    labels = ["a", "b", "c"]
    credit = np.array([[1, 0.9, 0], [0.9, 1, 0.9], [0, 0.9, 1]])
    data = [["b"] * 8 + ["a", "c", "a"], ["b"] * 8 + ["c", "a", "a"]]
    assert ag.alpha(data, ag.band_distance(credit), labels) < ag.alpha(data, "nominal", labels)


# --- distances, per item, per annotator ------------------------------------------------------


def test_band_distance_is_one_minus_credit_and_checks_its_input() -> None:
    credit = make_credit()
    np.testing.assert_allclose(ag.band_distance(credit), 1 - credit)
    with pytest.raises(AgreementInputError, match="symmetric"):
        ag.band_distance(np.array([[1, 0.5], [0.2, 1]]))
    with pytest.raises(AgreementInputError, match="diagonal must be 1"):
        ag.band_distance(np.array([[0.9, 0.5], [0.5, 1]]))
    with pytest.raises(AgreementInputError, match=r"\[0, 1\]"):
        ag.band_distance(np.array([[1, 1.5], [1.5, 1]]))


def test_disagreement_scores_under_band_and_nominal_distance() -> None:
    data = [
        ["answer", "answer", "answer", None, "answer"],
        ["answer", "answer_with_caveat", "refuse", None, None],
        ["answer", "refuse", "refuse", "clarify", None],
    ]
    band = ag.disagreement_scores(data, ag.band_distance(make_credit()), ACTIONS)
    nominal = ag.disagreement_scores(data, "nominal", ACTIONS)
    # Unit 1: answer, answer_with_caveat, refuse -> (0.25 + 1 + 1) / 3 pairs.
    np.testing.assert_allclose(band, [0, 0.75, 2 / 3, 0, 0])
    np.testing.assert_allclose(nominal, [0, 1, 2 / 3, 0, 0])


def test_pairwise_kappa_on_the_binary_reference_example() -> None:
    kappa = rep.pairwise_kappa(K2011_A, [0, 1], annotators=["A", "B"])
    # p_o = 6/10, p_e = .2 * .4 + .8 * .6 = .56, kappa = .04 / .44.
    assert cell(kappa, "A", "B") == pytest.approx(1 / 11)
    assert cell(kappa, "B", "A") == cell(kappa, "A", "B")
    assert cell(kappa, "A", "A") == 1.0


def test_pairwise_kappa_is_nan_without_shared_units() -> None:
    frame = pd.DataFrame(
        [["answer", "refuse", None, None], [None, None, "answer", "refuse"]], index=["u1", "u2"]
    )
    kappa = rep.pairwise_kappa(frame, ACTIONS)
    assert list(kappa.index) == ["u1", "u2"]
    assert math.isnan(cell(kappa, "u1", "u2"))


def test_annotator_report_flags_the_odd_one_out() -> None:
    truth = (ACTIONS * 5)[:24]
    odd: list[str | None] = list(reversed(truth))
    data: list[list[str | None]] = [
        list(truth),
        list(truth),
        [None if i % 3 == 0 else t for i, t in enumerate(truth)],
        odd,
    ]
    gold: list[str | None] = [*truth[:-2], None, None]
    durations = np.full((4, 24), 10.0)
    durations[3] = 2.0
    durations[2, ::3] = np.nan
    report = rep.annotator_report(
        data,
        ACTIONS,
        level=ag.band_distance(make_credit()),
        annotators=["ann", "bob", "cid", "dee"],
        gold=gold,
        durations=durations,
    )
    assert report.index.name == "annotator"
    assert report["n_labeled"].tolist() == [24, 24, 16, 24]
    assert report["alpha_delta"].idxmin() == "dee"
    assert cell(report, "dee", "alpha_delta") < 0 < cell(report, "ann", "alpha_delta")
    everyone = ag.alpha(data, ag.band_distance(make_credit()), ACTIONS)
    assert cell(report, "dee", "alpha_without") == pytest.approx(
        ag.alpha(data[:3], ag.band_distance(make_credit()), ACTIONS)
    )
    assert cell(report, "dee", "alpha_delta") == pytest.approx(
        everyone - cell(report, "dee", "alpha_without")
    )
    assert cell(report, "ann", "gold_agreement") == 1.0
    assert cell(report, "cid", "n_gold") == 14  # 16 labels, 2 of them where gold is missing
    assert cell(report, "ann", "tvd") == pytest.approx(cell(report, "bob", "tvd"))
    assert report["seconds_per_item"].tolist() == [10.0, 10.0, 10.0, 2.0]


# --- the summary -----------------------------------------------------------------------------


def no_nan(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"JSON carries {constant}")

    return json.loads(text, parse_constant=refuse)


def small_campaign(seed: int = 0, n_units: int = 60) -> dict[str, Any]:
    rng = np.random.default_rng(seed)

    def field(labels: list[str]) -> np.ndarray:
        truth = rng.integers(0, len(labels), n_units)
        picks = np.where(
            rng.random((3, n_units)) < 0.7, truth, rng.integers(0, len(labels), (3, n_units))
        )
        out = np.array(labels, dtype=object)[picks]
        out[rng.random((3, n_units)) < 0.1] = None
        return out

    sets = np.empty((3, n_units), dtype=object)
    for (row, col), roll in np.ndenumerate(rng.random((3, n_units))):
        sets[row, col] = frozenset({"over_refusal"}) if roll < 0.3 else FINE
    sets[0, 0] = None
    return {
        "fields": {"right_action": field(ACTIONS), "intent": field(INTENTS)},
        "labels": {"right_action": ACTIONS, "intent": INTENTS},
        "sets": sets,
    }


def test_summary_shape_values_and_json() -> None:
    campaign = small_campaign()
    summary = rep.summarize(
        campaign["fields"],
        campaign["labels"],
        credit={"right_action": make_credit()},
        ordinal=["intent"],
        failure_categories=campaign["sets"],
        categories=CATEGORIES,
        n_resamples=100,
    )
    payload = no_nan(summary.model_dump_json())
    right, intent = payload["fields"]["right_action"], payload["fields"]["intent"]
    beside = {"ac1", "interval"}  # Gwet's AC1 and the BCa interval, beside every alpha
    assert set(right) == {"alpha", "ci", "n_units", "banded_alpha", "banded_ci"} | beside | {
        "ac2",
        "banded_interval",
    }
    assert set(intent) == {"alpha", "ci", "n_units", "ordinal_alpha", "ordinal_ci"} | beside | {
        "ordinal_interval"
    }
    assert right["interval"]["alpha"] == pytest.approx(right["alpha"], abs=1e-12)
    assert intent["ordinal_interval"]["alpha"] == pytest.approx(intent["ordinal_alpha"], abs=1e-12)
    assert right["ac2"]["weighted"] and not right["ac1"]["weighted"]
    assert right["alpha"] == pytest.approx(
        ag.alpha(campaign["fields"]["right_action"], "nominal", ACTIONS)
    )
    assert right["banded_alpha"] == pytest.approx(
        ag.alpha(campaign["fields"]["right_action"], ag.band_distance(make_credit()), ACTIONS)
    )
    assert intent["ordinal_alpha"] == pytest.approx(
        ag.alpha(campaign["fields"]["intent"], "ordinal", INTENTS)
    )
    assert right["ci"][0] <= right["alpha"] <= right["ci"][1]
    failure = payload["failure_categories"]
    assert failure["per_category"]["over_refusal"]["alpha"] == pytest.approx(
        ag.category_alphas(campaign["sets"], CATEGORIES)["over_refusal"]
    )
    never = failure["per_category"]["unsafe_compliance"]
    assert {k: never[k] for k in ("alpha", "ci")} == {"alpha": None, "ci": None}
    # Never ticked: the interval says why there is none instead of printing one.
    assert never["interval"]["status"] == "no_variation" and never["interval"]["ci"] is None
    ticked = failure["per_category"]["over_refusal"]["interval"]
    assert ticked["alpha"] == pytest.approx(failure["per_category"]["over_refusal"]["alpha"])
    assert failure["masi_alpha"] == pytest.approx(ag.masi_alpha(campaign["sets"], CATEGORIES))
    assert failure["masi_interval"]["alpha"] == pytest.approx(failure["masi_alpha"], abs=1e-12)
    assert failure["masi_interval"]["n_resamples"] == 100
    assert rep.AgreementSummary.model_validate(payload) == summary


def test_summary_without_bootstrap_or_variation_stays_json_safe() -> None:
    fields = {"confidence": np.array([["high", "high"], ["high", None]], dtype=object)}
    summary = rep.summarize(fields, {"confidence": ["low", "medium", "high"]}, n_resamples=0)
    payload = no_nan(summary.model_dump_json())
    # Everyone said "high": alpha is undefined, while AC1 (whose chance term vanishes) is 1.
    ac1 = payload["fields"]["confidence"].pop("ac1")
    assert payload == {
        "fields": {"confidence": {"alpha": None, "ci": None, "n_units": 1}},
        "failure_categories": None,
    }
    assert ac1["coefficient"] == 1.0 and ac1["n_pairable"] == 1


def test_summary_over_no_units_is_undefined_not_a_crash() -> None:
    empty = np.full((0, 0), None, dtype=object)
    summary = rep.summarize(
        {"right_action": empty, "intent": empty},
        {"right_action": ACTIONS, "intent": INTENTS},
        credit={"right_action": make_credit()},
        ordinal=["intent"],
        failure_categories=empty,
        categories=CATEGORIES,
        n_resamples=20,
    )
    assert summary.fields["intent"].ordinal_alpha is None
    assert summary.fields["right_action"].banded_alpha is None
    assert summary.failure_categories is not None
    assert summary.failure_categories.masi_alpha is None


def test_summary_names_the_bad_value() -> None:
    fields = {"intent": np.array([["benign", "evil"]], dtype=object)}
    with pytest.raises(
        AgreementInputError, match="Label `evil` is not one of benign, ambiguous, harmful"
    ):
        rep.summarize(fields, {"intent": INTENTS})
    with pytest.raises(AgreementInputError, match="same units"):
        rep.summarize(
            {"intent": np.array([["benign"]], dtype=object)},
            {"intent": INTENTS},
            failure_categories=np.array([[FINE, FINE]], dtype=object),
            categories=CATEGORIES,
        )
    with pytest.raises(AgreementInputError, match="without the list of categories"):
        rep.summarize(
            {"intent": np.array([["benign"]], dtype=object)},
            {"intent": INTENTS},
            failure_categories=np.array([[FINE]], dtype=object),
        )


@pytest.mark.parametrize(
    ("data", "kwargs", "message"),
    [
        ([["a", "b"]], {"level": "ordinal"}, "needs `labels` in order"),
        ([["a", "b"]], {"level": "interval"}, "numeric"),
        ([["a", "b"]], {"level": "fuzzy"}, "Unknown level"),
        (["a", "b"], {}, "2-D"),
        ([["a", "b"]], {"level": np.zeros((3, 3)), "labels": ["a", "b"]}, "2x2"),
        ([[["a"], ["b"]]], {}, "2-D|hashable"),
    ],
)
def test_bad_input_is_named(data: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(AgreementInputError, match=message):
        ag.alpha(data, **kwargs)


def test_distance_matrix_may_be_nested_lists_or_any_square_array_like() -> None:
    data = [["a", "b", "c", "a", "b"], ["a", "c", "c", "b", "b"], ["b", "b", "c", None, "b"]]
    labels = ["a", "b", "c"]
    nested = [[0, 0.5, 1], [0.5, 0, 0.5], [1, 0.5, 0]]
    expected = ag.alpha(data, np.array(nested), labels)
    assert ag.alpha(data, nested, labels) == expected  # type: ignore[arg-type]
    assert ag.alpha(data, tuple(map(tuple, nested)), labels) == expected  # type: ignore[arg-type]
    counts = ag.value_counts_from_codes(ag.encode_labels(data, labels)[0], 3)
    assert ag.alpha_from_counts(counts, nested) == pytest.approx(expected, abs=1e-12)  # type: ignore[arg-type]
    assert ag.bootstrap_alpha(data, nested, labels, n_resamples=20).alpha == expected  # type: ignore[arg-type]
    scores = ag.disagreement_scores(data, nested, labels)  # type: ignore[arg-type]
    np.testing.assert_array_equal(scores, ag.disagreement_scores(data, np.array(nested), labels))
    report = rep.annotator_report(data, labels, level=nested)  # type: ignore[arg-type]
    assert len(report) == 3


@pytest.mark.parametrize(
    ("level", "message"),
    [
        ([[0, 1], [1, 0], [1, 1]], r"Distance matrix must be square, got shape \(3, 2\)"),
        ([[0, 1], [1]], "Unknown level .*: expected a level name or a square numeric matrix"),
        ([["x", "y"], ["y", "x"]], "expected a level name or a square numeric matrix"),
    ],
)
def test_bad_distance_matrix_is_named(level: Any, message: str) -> None:
    with pytest.raises(AgreementInputError, match=message):
        ag.alpha([["a", "b"], ["a", "a"]], level, ["a", "b"])


# --- XSTest: two human annotators ------------------------------------------------------------


def pure_python_nominal_alpha(rows: Sequence[Sequence[Hashable | None]]) -> float:
    """Nominal alpha straight from the coincidence-matrix definition, no numpy, no package."""
    coincidences: dict[tuple[Hashable, Hashable], float] = defaultdict(float)
    for unit in zip(*rows, strict=True):
        values = [v for v in unit if v is not None]
        if len(values) < 2:
            continue
        for i, first in enumerate(values):
            for j, second in enumerate(values):
                if i != j:
                    coincidences[first, second] += 1 / (len(values) - 1)
    totals: dict[Hashable, float] = defaultdict(float)
    for (first, _), weight in coincidences.items():
        totals[first] += weight
    n = sum(totals.values())
    observed = sum(w for (a, b), w in coincidences.items() if a != b) / n
    expected = sum(totals[a] * totals[b] for a in totals for b in totals if a != b) / (n * (n - 1))
    return 1 - observed / expected


@pytest.mark.skipif(
    not XSTEST.parent.is_dir(), reason=f"XSTest data not present at {XSTEST.parent}"
)
def test_xstest_human_annotators_nominal_alpha() -> None:
    with XSTEST.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    annotations = [
        [row["annotation_1"] or None for row in rows],
        [row["annotation_2"] or None for row in rows],
    ]
    labels = sorted({v for row in annotations for v in row if v is not None})
    got = ag.alpha(annotations, "nominal", labels)
    assert got == pytest.approx(pure_python_nominal_alpha(annotations), abs=1e-12)
    assert 0.8 < got < 1.0
