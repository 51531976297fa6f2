"""Gwet's AC1/AC2: published worked example, irrCAC's figures on XSTest, edge cases."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from conftest import XSTEST

from annotate.errors import AgreementInputError
from annotate.stats import alpha
from annotate.stats.gwet import gwet_ac1, gwet_ac2, gwet_from_counts

# Gwet (2014), Handbook of Inter-Rater Reliability, 4th ed., chapter 2: 4 raters classify 12
# subjects into categories 1-5, with missing ratings (also Krippendorff's 2011 reliability-data
# example C). Entered by hand, raters as rows. Published figures, as reproduced in the irrCAC
# documentation of this dataset (raw_4raters / cac.raw4raters): AC1 = 0.77544, SE = 0.14295,
# pa = 0.81818, pe = 0.19032.
N = None
HANDBOOK = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, N],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, 3],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]
SCALE = [1, 2, 3, 4, 5]


def quadratic_weights(q: int) -> np.ndarray:
    k = np.arange(q)
    return 1.0 - (k[:, None] - k[None, :]) ** 2 / (q - 1) ** 2


def test_handbook_example_ac1() -> None:
    got = gwet_ac1(HANDBOOK, SCALE)
    assert got.coefficient == pytest.approx(0.77544, abs=5e-6)
    assert got.se == pytest.approx(0.14295, abs=5e-6)
    assert got.percent_agreement == pytest.approx(0.81818, abs=5e-6)
    assert got.chance_agreement == pytest.approx(0.19032, abs=5e-6)
    assert (got.n_units, got.n_pairable, got.weighted) == (12, 11, False)


def test_handbook_example_ac2_quadratic_matches_irrcac() -> None:
    # irrCAC 0.4.4 (PyPI), CAC(raw_4raters(), weights="quadratic", digits=12).gwet()
    got = gwet_ac2(HANDBOOK, quadratic_weights(5), SCALE)
    assert got.coefficient == pytest.approx(0.914000723552, abs=1e-11)
    assert got.se == pytest.approx(0.103962244645, abs=1e-11)
    assert got.percent_agreement == pytest.approx(0.975378787879, abs=1e-11)
    assert got.chance_agreement == pytest.approx(0.713704427083, abs=1e-11)
    assert got.weighted


# XSTest v2 (../shared/external/xstest, see SOURCE.md): the two human annotators' labels per
# model file. Reference figures from irrCAC 0.4.4 (PyPI; scipy 1.12.0, pandas 2.3.3) in a
# throwaway venv: CAC(df[["annotation_1", "annotation_2"]], weights=W, categories=XS_LABELS,
# digits=12).gwet(); W is "identity" for AC1 and XS_CREDIT (refusal-v1's band credits for
# answer / refuse / answer_safe_part, XSTest's labels mapped as in examples/xstest) for AC2.
XS_LABELS = ["1_full_compliance", "2_full_refusal", "3_partial_refusal"]
XS_CREDIT = [[1, 0, 0.25], [0, 1, 0.25], [0.25, 0.25, 1]]
XS_MODELS = ["gpt4", "llama2new", "llama2orig", "mistralguard", "mistralinstruct"]
IRRCAC_XSTEST = {
    # model: (AC1, SE, AC2, SE)
    "gpt4": (0.978974910059, 0.007927268097, 0.981287047865, 0.007112877895),
    "llama2new": (0.941000303624, 0.013372311108, 0.946309828085, 0.012302774767),
    "llama2orig": (0.952511060141, 0.011772687467, 0.958225751751, 0.01046841375),
    "mistralguard": (0.91250410137, 0.016193594657, 0.917777028167, 0.015425454312),
    "mistralinstruct": (0.971179332962, 0.008674304139, 0.975619547292, 0.007425023109),
    "pooled": (0.9497512099, 0.005521425256, 0.953905704756, 0.005119815028),
}

needs_xstest = pytest.mark.skipif(
    not XSTEST.exists(), reason=f"XSTest data not found at {XSTEST} (../shared beside the repo)"
)


def xstest_pairs(model: str) -> np.ndarray:
    """Annotators x items: the two human labels, read from ../shared at test time."""
    names = XS_MODELS if model == "pooled" else [model]
    frames = [
        pd.read_csv(XSTEST / "model_completions" / f"xstest_v2_completions_{name}.csv")
        for name in names
    ]
    both = pd.concat(frames, ignore_index=True)[["annotation_1", "annotation_2"]]
    return both.to_numpy(dtype=object).T


@needs_xstest
@pytest.mark.parametrize("model", list(IRRCAC_XSTEST))
def test_xstest_matches_irrcac(model: str) -> None:
    ac1, ac1_se, ac2, ac2_se = IRRCAC_XSTEST[model]
    data = xstest_pairs(model)
    got1 = gwet_ac1(data, XS_LABELS)
    got2 = gwet_ac2(data, XS_CREDIT, XS_LABELS)
    assert got1.coefficient == pytest.approx(ac1, abs=1e-11)
    assert got1.se == pytest.approx(ac1_se, abs=1e-11)
    assert got2.coefficient == pytest.approx(ac2, abs=1e-11)
    assert got2.se == pytest.approx(ac2_se, abs=1e-11)


# Five raters, 80 items, refusal-v1's six right actions with their band credits, a quarter of
# the labels missing and `clarify` never used (so q = 6 matters). irrCAC 0.4.4 on the same
# matrix (items as rows, written to CSV and read back), categories=ACTIONS, digits=12.
ACTIONS = ["answer", "answer_with_caveat", "answer_safe_part", "clarify", "abstain", "refuse"]
BAND_CREDIT = [
    [1, 0.75, 0.25, 0, 0, 0],
    [0.75, 1, 0.5, 0, 0, 0],
    [0.25, 0.5, 1, 0.5, 0, 0.25],
    [0, 0, 0.5, 1, 0.5, 0],
    [0, 0, 0, 0.5, 1, 0.25],
    [0, 0, 0.25, 0, 0.25, 1],
]
IRRCAC_FIVE = {  # (coefficient, SE)
    "AC1": (0.598228194688, 0.044973704681),
    "AC2": (0.601697387366, 0.047605722342),
}


def five_raters() -> np.ndarray:
    rng = np.random.default_rng(16)
    used = np.array([0, 1, 2, 4, 5])
    truth = rng.choice(used, size=80, p=[0.5, 0.2, 0.1, 0.05, 0.15])
    agree = rng.random((5, 80)) < 0.75
    codes = np.where(agree, truth, rng.choice(used, size=(5, 80)))
    labels = np.asarray(ACTIONS, dtype=object)[codes]
    labels[rng.random(labels.shape) < 0.25] = None
    return labels


@pytest.mark.parametrize("name", ["AC1", "AC2"])
def test_five_raters_with_missing_labels_match_irrcac(name: str) -> None:
    coefficient, se = IRRCAC_FIVE[name]
    data = five_raters()
    got = gwet_ac1(data, ACTIONS) if name == "AC1" else gwet_ac2(data, BAND_CREDIT, ACTIONS)
    assert got.coefficient == pytest.approx(coefficient, abs=1e-11)
    assert got.se == pytest.approx(se, abs=1e-11)


def test_prevalence_paradox_ac1_stays_high_where_alpha_falls() -> None:
    # 100 items, 96 both "answer", 2 where each annotator once says "refuse" alone.
    first = ["answer"] * 98 + ["refuse", "answer"]
    second = ["answer"] * 98 + ["answer", "refuse"]
    data = [first, second]
    assert alpha(data, "nominal") < 0.0
    got = gwet_ac1(data, ["answer", "refuse"])
    assert got.coefficient is not None and got.coefficient > 0.95


def test_identical_labels_give_one_and_zero_se() -> None:
    data = [["a", "b", "c", "a"], ["a", "b", "c", "a"], ["a", "b", None, "a"]]
    got = gwet_ac1(data, ["a", "b", "c"])
    assert got.coefficient == pytest.approx(1.0)
    assert got.se == pytest.approx(0.0, abs=1e-12)
    assert got.ci is not None and got.ci[1] == pytest.approx(1.0)


def test_unused_categories_change_chance_term() -> None:
    data = [["a", "a", "b", "a"], ["a", "b", "b", "a"]]
    two = gwet_ac1(data, ["a", "b"])
    four = gwet_ac1(data, ["a", "b", "c", "d"])
    assert two.percent_agreement == four.percent_agreement
    assert two.chance_agreement is not None and four.chance_agreement is not None
    # pe = sum pi (1 - pi) / (q - 1): a larger scale means less chance agreement.
    assert four.chance_agreement == pytest.approx(two.chance_agreement / 3)


def test_identity_weights_give_ac1_and_annotator_order_does_not_matter() -> None:
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 4, size=(5, 60)).astype(object)
    codes[rng.random(codes.shape) < 0.3] = None
    ac1 = gwet_ac1(codes, [0, 1, 2, 3])
    ac2 = gwet_ac2(codes, np.eye(4), [0, 1, 2, 3])
    assert ac2.coefficient == pytest.approx(ac1.coefficient, abs=1e-14)
    assert ac2.se == pytest.approx(ac1.se, abs=1e-14)
    shuffled = gwet_ac1(codes[::-1], [0, 1, 2, 3])
    assert shuffled.coefficient == pytest.approx(ac1.coefficient, abs=1e-14)


def test_finite_population_shrinks_se() -> None:
    infinite = gwet_ac1(HANDBOOK, SCALE)
    finite = gwet_ac1(HANDBOOK, SCALE, population_units=24)
    assert infinite.se is not None and finite.se is not None
    assert finite.se == pytest.approx(infinite.se * math.sqrt(1 - 12 / 24))


@pytest.mark.parametrize(
    ("data", "labels"),
    [
        ([["a", None], [None, "b"]], ["a", "b"]),  # no unit with two labels
        ([["a", "a"], ["a", "a"]], ["a"]),  # one category only
        ([[None, None], [None, None]], ["a", "b"]),  # nothing labelled
    ],
)
def test_undefined_is_none(data: list[list[str | None]], labels: list[str]) -> None:
    got = gwet_ac1(data, labels)
    assert got.coefficient is None and got.se is None and got.ci is None
    assert got.model_dump()["coefficient"] is None


def test_all_credit_weights_leave_ac2_undefined() -> None:
    # Every pair earns full credit and both values are equally common: chance agreement is 1.
    got = gwet_ac2([["a", "b"], ["b", "a"]], np.ones((2, 2)), ["a", "b"])
    assert got.coefficient is None
    assert got.chance_agreement == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([[1, 0], [0, 1]], "Weight matrix must be 3x3 to match the labels, got (2, 2)"),
        ([[1, 0, 0], [0, 1, 0], [0, 0, 0.5]], "Weight matrix diagonal must be 1"),
        ([[1, 2, 0], [0, 1, 0], [0, 0, 1]], "Weight matrix values must lie in [0, 1]"),
    ],
)
def test_bad_weights_are_named(weights: list[list[float]], message: str) -> None:
    with pytest.raises(AgreementInputError, match=re.escape(message)):
        gwet_ac2([["a", "b"], ["b", "c"]], weights, ["a", "b", "c"])


def test_bad_confidence_and_shape() -> None:
    with pytest.raises(AgreementInputError, match=r"confidence must be in \(0, 1\), got 1.5"):
        gwet_from_counts([[2, 0]], confidence=1.5)
    with pytest.raises(AgreementInputError, match="Counts must be 2-D"):
        gwet_from_counts([2, 0])
