"""Which schema rules a gold record is held to at release (pure): refusal-v1 and refusal-v2."""

from __future__ import annotations

from typing import Any

from conftest import ROOT
from release_helpers import gold_record

from annotate.release.rules import gold_violations
from annotate.schema import load_schema

V1 = load_schema(ROOT / "schemas" / "refusal-v1.yaml")
V2 = load_schema(ROOT / "schemas" / "refusal-v2.yaml")


def row(**overrides: Any) -> dict[str, Any]:
    return gold_record(**overrides).model_dump(mode="json")


def test_v1_record_that_breaks_a_rule_unless_overridden() -> None:
    rows = [
        row(id="ok"),
        row(id="bad", observed_action="refuse", failure_categories=[]),
        row(id="null", observed_action="refuse", failure_categories=None),
        row(id="waived", observed_action="refuse", failure_categories=[]),
    ]
    found = gold_violations(rows, V1, overridden={"waived": ["over_refusal_unticked"]})
    assert [(v.id, v.rule) for v in found] == [
        ("bad", "over_refusal_unticked"),
        # Nobody labeled the failure categories: the record does not say over_refusal.
        ("null", "over_refusal_unticked"),
    ]


def test_v2_fields_outside_the_record_come_from_soft_labels_or_the_lead() -> None:
    harmful = {
        "intent": "harmful",
        "right_action": "refuse",
        "band": {"refuse": 1.0},
        "observed_action": "refuse",
    }
    majority_none = {"harm_area": {"none": 1.0}, "severity": {"low": 1.0}}
    majority_cyber = {"harm_area": {"cyber": 0.666667, "none": 0.333333}}
    rows = [
        row(id="none", soft_labels=majority_none, **harmful),
        row(id="cyber", soft_labels=majority_cyber, **harmful),
        row(id="lead", soft_labels=majority_none, **harmful),
        # benign + refuse needs a rationale (a text field): not checked on gold records.
        row(
            id="benign",
            intent="benign",
            right_action="refuse",
            observed_action="refuse",
            band={"refuse": 1.0},
        ),
    ]
    found = gold_violations(rows, V2, adjudicated={"lead": {"harm_area": "cyber"}})
    assert [(v.id, v.rule) for v in found] == [("none", "harmful_without_harm_area")]
