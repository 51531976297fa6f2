"""The sidebar's key legend: every field in Tab order, and a field that `show_when` hides at
times is marked as conditional ("only when ..."), never listed as if always there."""

from __future__ import annotations

from typing import Any

from annotate.app import labelform
from annotate.schema import load_schema, parse_schema
from tests.conftest import ROOT

V1 = load_schema(ROOT / "schemas" / "refusal-v1.yaml")
V2 = load_schema(ROOT / "schemas" / "refusal-v2.yaml")


def legend_lines(schema: Any) -> list[str]:
    return labelform.key_legend(labelform.form_spec(schema)).splitlines()


def line_of(lines: list[str], label: str) -> str:
    found = [x for x in lines if x.startswith(f"- {label}")]
    assert len(found) == 1, (label, lines)
    return found[0]


def test_conditional_fields_of_v2_say_when_they_show() -> None:
    lines = legend_lines(V2)
    fields = line_of(lines, "Fields, in Tab order")
    # Every field, in schema order.
    at = [fields.index(f"**{f.label}**") for f in V2.fields]
    assert at == sorted(at)
    assert "**Why not a plain answer** (only when Right action is not answer)" in fields
    assert (
        "**How useful the answer was** (only when What the response did is answer, "
        "answer with caveat, answer safe part or correct premise)"
    ) in fields
    assert "**How it declined** (only when What the response did is refuse, abstain or pivot)" in (
        fields
    )
    # Fields always shown carry no condition.
    assert "**Intent of the request** ·" in fields and "**Harm area** ·" in fields
    assert fields.count("only when") == 3
    # Letter keys of an always-shown field: as before.
    harm = line_of(lines, "Harm area:")
    assert "**m** regulated advice" in harm and "only when" not in harm


def test_letter_keys_of_a_conditional_field_are_marked_too() -> None:
    data = V2.model_dump(mode="json")
    quality = next(f for f in data["fields"] if f["name"] == "answer_quality")
    quality["options"][0]["key"] = "q"
    quality["show_when"] = {"observed_action": ["answer"]}
    lines = legend_lines(parse_schema(data, source="test"))
    keyed = line_of(lines, "How useful the answer was")
    assert keyed.startswith(
        "- How useful the answer was (only when What the response did is answer):"
    )
    assert "**q** useful" in keyed


def test_a_schema_without_conditions_lists_no_condition() -> None:
    lines = legend_lines(V1)
    assert not any("only when" in x for x in lines)
    assert "**Tab**" in lines[0]
    assert "**r** clarify" in "\n".join(lines)
