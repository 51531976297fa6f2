"""How a refusal-v2 gold record gets `resolution` and its conditional fields (pure)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import DEFAULT_SCHEMA_PATH

from annotate.release.record import SCHEMA_KEYS, record_fields
from annotate.release.schema_keys import add_schema_keys, resolutions
from annotate.schema import load_schema

V1 = load_schema(DEFAULT_SCHEMA_PATH)
V2 = load_schema(DEFAULT_SCHEMA_PATH.parent / "refusal-v2.yaml")
ACTIONS = V2.right_actions


def votes(**counts: int) -> list[int]:
    return [counts.get(a, 0) for a in ACTIONS]


@pytest.mark.parametrize(
    ("split", "right", "expected"),
    [
        (votes(answer=3), "answer", "unanimous"),
        (votes(answer=2, clarify=1), "answer", "majority"),
        # The lead accepting the majority keeps `majority`; choosing the minority does not.
        (votes(answer=2, clarify=1), "clarify", "adjudicated"),
        (votes(answer=1, clarify=1), "answer", "adjudicated"),  # a tie
        (votes(answer=1, clarify=1, refuse=1), "abstain", "adjudicated"),  # nobody chose it
        (votes(), "refuse", "adjudicated"),  # no human named a right action
    ],
)
def test_resolution_from_the_votes(split: list[int], right: str, expected: str) -> None:
    got = resolutions(np.array([split], dtype=np.int64), np.array([ACTIONS.index(right)]))
    assert got == [expected]


def _row(right: str, observed: str | None) -> dict[str, Any]:
    keys = [k for k in record_fields(V2) if k not in SCHEMA_KEYS]
    return {**dict.fromkeys(keys), "right_action": right, "observed_action": observed}


def test_fields_that_do_not_apply_are_null_unless_their_condition_is_unknown() -> None:
    rows = [_row("answer", "refuse"), _row("refuse", "answer"), _row("clarify", None)]
    majority = {
        "harm_area": ["none"] * 3,
        "severity": ["low"] * 3,
        "noncompliance_reason": ["safety"] * 3,
        "answer_quality": ["useful"] * 3,
        "refusal_style": ["bare"] * 3,
    }
    lead = {2: {"labels": {"refusal_style": "preachy"}, "disagreement_cause": "edge_case"}}
    counts = np.array([votes(answer=2), votes(refuse=2), votes(clarify=1, refuse=1)])
    out = add_schema_keys(rows, [0, 1, 2], V2, majority, lead, counts)
    assert [list(r) for r in out] == [record_fields(V2)] * 3
    picked = [
        tuple(r[k] for k in ("noncompliance_reason", "answer_quality", "refusal_style"))
        for r in out
    ]
    assert picked == [
        (None, None, "bare"),  # right answer: no reason; refused: no answer quality
        ("safety", "useful", None),
        # A tie on the observed action: whether quality or style applies is unknown, so both
        # keep the annotators' values; the lead's style wins over theirs.
        ("safety", "useful", "preachy"),
    ]
    assert [r["resolution"] for r in out] == ["unanimous", "unanimous", "adjudicated"]
    assert [r["disagreement_cause"] for r in out] == [None, None, "edge_case"]


def test_a_v1_schema_gets_its_rows_back_untouched() -> None:
    rows = [{"id": "a", "right_action": "answer"}]
    out = add_schema_keys(rows, [0], V1, {}, {}, np.zeros((1, 6), dtype=np.int64))
    assert out is rows
