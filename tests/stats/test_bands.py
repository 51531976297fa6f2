"""Tolerance bands: schema credits around the right action, widened by the annotators' split."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotate.errors import ValidationProblem
from annotate.schema import LabelSchema
from annotate.stats import bands


def test_unanimous_annotators_get_the_schema_band(schema: LabelSchema) -> None:
    assert bands.suggest_band(schema, "clarify", ["clarify"] * 3) == schema.default_band("clarify")
    assert bands.suggest_band(schema, "clarify") == {
        "answer_safe_part": 0.5,
        "clarify": 1.0,
        "abstain": 0.5,
    }


@pytest.mark.parametrize(
    ("right", "votes", "expected"),
    [
        # A 1-1 split between two actions the schema gives no credit to each other.
        (
            "answer",
            ["answer", "refuse"],
            {"answer": 1.0, "answer_with_caveat": 0.75, "answer_safe_part": 0.25, "refuse": 0.5},
        ),
        # The schema already gives more than the split would: the schema's credit stands.
        (
            "answer",
            ["answer", "answer_with_caveat"],
            {"answer": 1.0, "answer_with_caveat": 0.75, "answer_safe_part": 0.25},
        ),
        # One dissenter in four is under a third: no evidence.
        (
            "refuse",
            ["refuse", "refuse", "refuse", "answer"],
            {"refuse": 1.0, "abstain": 0.25, "answer_safe_part": 0.25},
        ),
        # The lead picks an action nobody chose: both annotators' choices earn credit.
        (
            "clarify",
            ["answer", "refuse"],
            {"answer": 0.5, "answer_safe_part": 0.5, "clarify": 1.0, "abstain": 0.5, "refuse": 0.5},
        ),
    ],
)
def test_split_widens_the_band(
    schema: LabelSchema, right: str, votes: list[str], expected: dict[str, float]
) -> None:
    assert bands.suggest_band(schema, right, votes) == expected


def test_band_keeps_the_schema_action_order(schema: LabelSchema) -> None:
    band = bands.suggest_band(schema, "refuse", ["refuse", "answer"])
    assert list(band) == [a for a in schema.action_labels if a in band]


def test_vote_shares_from_choices_or_counts() -> None:
    assert bands.vote_shares(["a", "a", None, "b"]) == {"a": 2 / 3, "b": 1 / 3}
    assert bands.vote_shares({"a": 1, "b": 3, "c": 0}) == {"a": 0.25, "b": 0.75}
    assert bands.vote_shares([]) == {}


@pytest.mark.parametrize(
    ("votes", "expected"),
    [
        (["a", "a", "b"], "a"),
        (["a", "b"], None),
        (["a", "a", "b", "b", "c"], None),
        (["a", None, None], "a"),
        ([], None),
    ],
)
def test_majority_is_more_than_half(votes: list[str | None], expected: str | None) -> None:
    assert bands.majority(votes) == expected


@pytest.mark.parametrize(
    ("right", "band", "message"),
    [
        ("answer", {"answer": 0.9}, "credit 1"),
        ("answer", {"refuse": 1.0}, "credit 1"),
        ("answer", {"answer": 1.0, "dance": 0.5}, "`dance` is not one of"),
        ("answer", {"answer": 1.0, "refuse": 1.5}, r"must be in \[0, 1\]"),
        ("fly", {"fly": 1.0}, "`fly` is not an action"),
    ],
)
def test_check_band_names_the_problem(
    schema: LabelSchema, right: str, band: dict[str, float], message: str
) -> None:
    with pytest.raises(ValidationProblem, match=message):
        bands.check_band(schema, right, band)


def test_check_band_drops_zero_credits_and_orders(schema: LabelSchema) -> None:
    assert bands.check_band(schema, "refuse", {"refuse": 1, "answer": 0.0, "abstain": 0.3}) == {
        "abstain": 0.3,
        "refuse": 1.0,
    }


def test_unknown_votes_and_bad_parameters_are_refused(schema: LabelSchema) -> None:
    with pytest.raises(ValidationProblem, match="`dance` is not one of"):
        bands.suggest_band(schema, "answer", ["dance"])
    with pytest.raises(ValidationProblem, match="split_credit"):
        bands.suggest_band(schema, "answer", split_credit=0)


ACTIONS = ["a", "b", "c", "d", "e"]


@st.composite
def band_cases(draw: st.DrawFn) -> tuple[list[list[float]], str, list[str | None], float, float]:
    n = draw(st.integers(1, len(ACTIONS)))
    credit = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            credit[i][j] = draw(st.floats(-0.5, 1.5) | st.just(float("nan")))
    right = ACTIONS[draw(st.integers(0, n - 1))]
    votes = draw(st.lists(st.sampled_from([*ACTIONS[:n], None]), max_size=8))
    min_share = draw(st.floats(0.01, 1.0))
    split = draw(st.floats(0.01, 1.0))
    return credit, right, votes, min_share, split


@settings(max_examples=200, deadline=None, database=None)
@given(band_cases())
def test_band_invariants(
    case: tuple[list[list[float]], str, list[str | None], float, float],
) -> None:
    """Whatever the credits and the split: right action at 1, every credit in (0, 1]."""
    credit, right, votes, min_share, split = case
    actions = ACTIONS[: len(credit)]
    band = bands.band_from_credits(
        actions, credit, right, votes, min_share=min_share, split_credit=split
    )
    assert band[right] == 1.0
    assert set(band) <= set(actions)
    assert all(0 < v <= 1 for v in band.values())
    shares = bands.vote_shares(votes)
    for action, share in shares.items():
        if share >= min_share:
            assert band[action] >= min(round(split, 4), 1.0) - 1e-9


@settings(max_examples=100, deadline=None, database=None)
@given(
    st.sampled_from(
        ["answer", "answer_with_caveat", "answer_safe_part", "clarify", "abstain", "refuse"]
    ),
    st.lists(st.sampled_from(["answer", "clarify", "refuse", "pivot", None]), max_size=6),
)
def test_schema_band_is_contained_and_checks(
    schema: LabelSchema, right: str, votes: list[str | None]
) -> None:
    band = bands.suggest_band(schema, right, votes)
    for action, credit in schema.default_band(right).items():
        assert band[action] >= credit
    assert bands.check_band(schema, right, band) == band
