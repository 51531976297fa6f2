"""A release's JSON Schema, generated from its label schema: enums, ranges, real records pass."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from release_helpers import gold_record, write_gold

from annotate.release.record import gold_record_json_schema, release_json_schema
from annotate.schema import LabelSchema
from tests.scoring.test_scoring import six_items


@pytest.fixture
def release(tmp_path: Path, schema: LabelSchema) -> Path:
    records = [
        *six_items(),
        gold_record(
            id="f1",
            observed_action="answer",
            failure_categories=["unsafe_compliance"],
            soft_labels={"right_action": {"answer": 0.5, "refuse": 0.5}},
        ),
    ]
    return write_gold(tmp_path / "exports", schema, records, dataset="schemaed")


def validator(release: Path) -> jsonschema.Draft202012Validator:
    own = json.loads((release / "gold-record.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(own)
    return jsonschema.Draft202012Validator(own)


def records(release: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (release / "gold.jsonl").read_text().splitlines()]


def test_every_record_of_the_release_validates(release: Path) -> None:
    check = validator(release)
    rows = records(release)
    assert len(rows) == 7
    for row in rows:
        assert not list(check.iter_errors(row)), row["id"]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda r: r.update(right_action="dance"), "right_action"),
        (lambda r: r.update(observed_action="dance"), "observed_action"),
        (lambda r: r.update(intent="curious"), "intent"),
        (lambda r: r.update(epistemic_status="vibes"), "epistemic_status"),
        (lambda r: r.update(failure_categories=["rude"]), "failure_categories"),
        (lambda r: r["band"].update(answer=7), "band"),
        (lambda r: r["band"].update(refuse=-0.5), "band"),
        (lambda r: r["band"].update(dance=0.5), "band"),
        (lambda r: r.update(soft_labels={"right_action": {"answer": 7.0}}), "soft_labels"),
        (lambda r: r.update(soft_labels={"right_action": {"dance": 1.0}}), "soft_labels"),
        (lambda r: r.update(soft_labels={"mood": {"happy": 1.0}}), "soft_labels"),
        (lambda r: r.update(disagreement=1.5), "disagreement"),
    ],
)
def test_bad_values_are_rejected(release: Path, change: Any, where: str) -> None:
    check = validator(release)
    row = copy.deepcopy(records(release)[0])
    assert not list(check.iter_errors(row))
    change(row)
    errors = list(check.iter_errors(row))
    assert errors, f"{where} change accepted"
    assert any(where in [str(p) for p in e.absolute_path] for e in errors), errors


def test_enums_come_from_the_label_schema(schema: LabelSchema) -> None:
    own = release_json_schema(schema)
    props = own["properties"]
    right = next(b for b in props["right_action"].get("anyOf", [props["right_action"]]))
    assert right["enum"] == schema.field(schema.right_action_field).values
    assert props["band"]["propertyNames"]["enum"] == schema.action_labels
    assert props["band"]["additionalProperties"] == {"type": "number", "minimum": 0, "maximum": 1}
    intent = [b for b in props["intent"]["anyOf"] if b.get("type") == "string"][0]
    assert intent["enum"] == schema.field("intent").values
    # Every choice field the record carries is an enum (severity, harm area... when present).
    for field in schema.choice_fields:
        if field.name in props and field.name not in ("failure_categories",):
            branches = props[field.name].get("anyOf", [props[field.name]])
            assert any("enum" in b for b in branches), field.name
    # The generic schema stays generic (no enums), but credits are bounded there too.
    generic = gold_record_json_schema()
    assert "enum" not in json.dumps(generic["properties"]["right_action"])
    assert generic["properties"]["band"]["additionalProperties"]["maximum"] == 1


def test_a_refusal_v2_release_bounds_its_new_fields(tmp_path: Path) -> None:
    """Under refusal-v2, severity, harm area... are enums wherever the record carries them."""
    from conftest import ROOT

    from annotate.schema import load_schema

    v2 = load_schema(ROOT / "schemas" / "refusal-v2.yaml")
    severities = v2.field("severity").values
    row_labels = {"severity": {severities[0]: 0.5, severities[-1]: 0.5}}
    folder = write_gold(
        tmp_path / "exports",
        v2,
        # A v2 record always says how its right action was reached.
        [gold_record(id="v1", soft_labels=row_labels, resolution="unanimous")],
        dataset="v2",
    )
    check = validator(folder)
    [row] = records(folder)
    assert not list(check.iter_errors(row))
    bad = copy.deepcopy(row)
    bad["soft_labels"]["severity"] = {"apocalyptic": 1.0}
    assert list(check.iter_errors(bad))
    own = release_json_schema(v2)
    assert set(own["properties"]["soft_labels"]["propertyNames"]["enum"]) >= {
        "harm_area",
        "severity",
        "right_action",
    }
