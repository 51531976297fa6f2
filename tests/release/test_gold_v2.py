"""A refusal-v2 release (issue 13): every field of the schema is in every record, labeled,
labeled-empty and unlabeled stay distinct through every reader, fields that do not apply are
null, `resolution` and `disagreement_cause` come with them, and `annotate score` slices by the
gold harm area and weighs under-refusal by the gold severity (issue 14)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import datasets
import jsonschema
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import ADMIN, DEFAULT_SCHEMA_PATH, make_campaign, make_item, make_user
from release_helpers import items_by_id
from sqlmodel import Session
from typer.testing import CliRunner

from annotate import review, storage
from annotate.cli import app
from annotate.errors import ValidationProblem
from annotate.release.publish import create_release
from annotate.release.record import V2_LABEL_FIELDS, record_fields
from annotate.release.selection import InclusionPolicy
from annotate.schema import LabelSchema, load_schema

V2 = load_schema(DEFAULT_SCHEMA_PATH.parent / "refusal-v2.yaml")
BASE = {
    "intent": "benign",
    "epistemic_status": "answerable",
    "harm_area": "none",
    "severity": "none",
    "right_action": "answer",
    "observed_action": "answer",
    "answer_quality": "useful",
    "failure_categories": [],
    "confidence": "high",
}
HARMFUL = {
    **BASE,
    "intent": "harmful",
    "harm_area": "cyber",
    "severity": "high",
    "right_action": "refuse",
    "noncompliance_reason": "safety",
    "answer_quality": "partly_useful",
    "failure_categories": ["leaked", "unsafe_compliance"],
}
ONLY_V1 = {"intent": "benign", "epistemic_status": "answerable", "right_action": "answer"}
# item -> each annotator's labels (partial ones are stored as given)
LABELS: dict[str, list[dict[str, Any]]] = {
    # Everyone agrees on everything.
    "u1": [BASE] * 3,
    # Two of three say refuse: a majority item.
    "m1": [HARMFUL, HARMFUL, {**HARMFUL, "right_action": "answer_safe_part"}],
    # Three right actions: the lead decides (and changes the observed action).
    "a1": [
        {**BASE, "intent": "ambiguous", "right_action": "clarify",
         "noncompliance_reason": "incomplete"},
        {**BASE, "intent": "ambiguous"},
        {**BASE, "intent": "ambiguous", "right_action": "refuse",
         "noncompliance_reason": "safety", "harm_area": "privacy_surveillance",
         "severity": "moderate"},
    ],
    # Two annotators tie on the harm area; nobody gave failure categories.
    "t1": [
        {**ONLY_V1, "observed_action": "answer", "harm_area": "none", "severity": "low"},
        {**ONLY_V1, "observed_action": "answer", "harm_area": "fraud_deception", "severity": "low"},
    ],
    # Nobody gave any of version 2's fields (nor the failure categories).
    "n1": [{**ONLY_V1, "observed_action": "answer"}] * 2,
}  # fmt: skip
LEAD_A1 = {
    **BASE,
    "intent": "ambiguous",
    "right_action": "clarify",
    "noncompliance_reason": "incomplete",
    "observed_action": "refuse",
    "refusal_style": "preachy",
    # Annotators said the answer was useful; the lead's observed action hides the field.
    "answer_quality": "useful",
}
KEYS = (*V2_LABEL_FIELDS, "failure_categories", "resolution", "disagreement_cause")
# harm_area, severity, noncompliance_reason, answer_quality, refusal_style, failure_categories,
# resolution, disagreement_cause
EXPECTED: dict[str, tuple[Any, ...]] = {
    "a1": ("none", "none", "incomplete", None, "preachy", [], "adjudicated", "guideline_gap"),
    "m1": ("cyber", "high", "safety", "partly_useful", None, ["unsafe_compliance", "leaked"],
           "majority", None),
    "n1": (None, None, None, None, None, None, "unanimous", None),
    "t1": (None, "low", None, None, None, None, "unanimous", None),
    "u1": ("none", "none", None, "useful", None, [], "unanimous", None),
}  # fmt: skip


def _release(session: Session, tmp_path: Path) -> Path:
    campaign = make_campaign(session, V2, name="v2gold", overlap=3)
    storage.import_items(
        session=session,
        actor=ADMIN,
        campaign=campaign,
        records=[make_item(external_id=e, prompt=f"Question {e}?") for e in LABELS],
    )
    people = [make_user(session, f"ann{i}") for i in (1, 2, 3)]
    items = items_by_id(session, campaign)
    for ext, given in LABELS.items():
        for user, labels in zip(people, given, strict=False):
            clean = V2.normalize_labels(labels, partial=True)
            storage.save_annotation(session=session, user=user, item=items[ext], labels=clean)
    lead = make_user(session, "lena", role="lead")
    review.adjudicate(
        session=session,
        actor=lead,
        item_id=items["a1"].id,  # type: ignore[arg-type]
        labels=LEAD_A1,
        note="clarify first",
        disagreement_cause="guideline_gap",
    )
    session.commit()
    result = create_release(
        session=session,
        actor=lead,
        campaign=campaign,
        out_dir=tmp_path / "exports",
        n_resamples=0,
        policy=InclusionPolicy(accept="majority", min_annotations=2),
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    session.commit()
    return Path(result.path)


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.tolist() if hasattr(value, "tolist") else value


def _got(rows: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {r["id"]: tuple(_plain(r[k]) for k in KEYS) for r in rows}


@pytest.fixture
def release(session: Session, tmp_path: Path) -> Path:
    return _release(session, tmp_path)


def test_v2_fields_survive_every_reader(release: Path, tmp_path: Path) -> None:
    lines = [json.loads(x) for x in (release / "gold.jsonl").read_text().splitlines()]
    assert [list(line) for line in lines] == [record_fields(V2)] * len(lines)
    assert _got(lines) == EXPECTED
    assert _got(pd.read_json(release / "gold.jsonl", lines=True).to_dict("records")) == EXPECTED
    table = pq.read_table(release / "gold.parquet")
    assert table.schema.names == record_fields(V2)
    assert _got(table.to_pylist()) == EXPECTED
    assert _got(pd.read_parquet(release / "gold.parquet").to_dict("records")) == EXPECTED
    hf = datasets.load_dataset(
        "parquet",
        data_files=str(release / "gold.parquet"),
        split="train",
        cache_dir=str(tmp_path / "hf-cache"),
    )
    assert _got(list(hf)) == EXPECTED
    # The card's features list the same columns, in the same order.
    card = (release / "README.md").read_text()
    front = card.split("---")[1]
    assert [f["name"] for f in _features(front)] == record_fields(V2)
    assert "`resolution`" in card and "`disagreement_cause`" in card

    cells = pd.read_csv(release / "gold.csv", dtype=str, keep_default_na=False)
    assert list(cells.columns) == record_fields(V2)
    by_id = {r["id"]: r for r in cells.to_dict("records")}
    assert by_id["t1"]["harm_area"] == "" and by_id["t1"]["severity"] == "low"
    assert by_id["u1"]["failure_categories"] == "[]" and by_id["n1"]["failure_categories"] == ""
    assert by_id["a1"]["answer_quality"] == "" and by_id["a1"]["refusal_style"] == "preachy"
    assert [by_id[i]["resolution"] for i in sorted(by_id)] == [
        e[6] for _, e in sorted(EXPECTED.items())
    ]
    assert by_id["a1"]["disagreement_cause"] == "guideline_gap"
    # inspect_ai samples carry them in their metadata.
    samples = (release / "inspect" / "dataset.jsonl").read_text().splitlines()
    meta = {s["id"]: s["metadata"] for s in map(json.loads, samples)}
    assert (meta["m1"]["harm_area"], meta["m1"]["severity"]) == ("cyber", "high")
    assert (meta["a1"]["resolution"], meta["a1"]["disagreement_cause"]) == (
        "adjudicated",
        "guideline_gap",
    )


def _features(front: str) -> list[dict[str, Any]]:
    import yaml

    return list(yaml.safe_load(front)["dataset_info"]["features"])


def test_the_release_json_schema_bounds_the_v2_fields(release: Path) -> None:
    own = json.loads((release / "gold-record.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(own)
    check = jsonschema.Draft202012Validator(own)
    rows = [json.loads(x) for x in (release / "gold.jsonl").read_text().splitlines()]
    for row in rows:
        assert not list(check.iter_errors(row)), row["id"]
    props = own["properties"]
    assert set(own["required"]) == set(record_fields(V2))
    for name in V2_LABEL_FIELDS:
        enum = [b for b in props[name]["anyOf"] if b.get("type") == "string"][0]["enum"]
        assert enum == V2.field(name).values, name
        assert {"type": "null"} in props[name]["anyOf"], name
    cause = [b for b in props["disagreement_cause"]["anyOf"] if b.get("type") == "string"]
    assert cause[0]["enum"] == V2.adjudication_field("disagreement_cause").values
    assert props["resolution"]["enum"] == ["unanimous", "majority", "adjudicated"]
    for key, bad in [
        ("severity", "apocalyptic"),
        ("harm_area", "gossip"),
        ("answer_quality", "meh"),
        ("refusal_style", "rude"),
        ("noncompliance_reason", "lazy"),
        ("disagreement_cause", "mood"),
        ("resolution", "coin_flip"),
        ("resolution", None),
    ]:
        changed = {**rows[0], key: bad}
        errors = list(check.iter_errors(changed))
        assert errors and all(list(e.absolute_path)[:1] == [key] for e in errors), key
    missing = {k: v for k, v in rows[0].items() if k != "harm_area"}
    assert list(check.iter_errors(missing)), "a v2 record without harm_area passed"


def test_annotate_score_slices_a_real_v2_release_by_harm_area_and_severity(
    release: Path, tmp_path: Path
) -> None:
    preds = tmp_path / "m.jsonl"
    actions = {"u1": "answer", "m1": "answer", "a1": "clarify", "t1": "answer", "n1": "answer"}
    preds.write_text("".join(json.dumps({"id": i, "action": a}) + "\n" for i, a in actions.items()))
    result = CliRunner().invoke(
        app,
        ["score", "--gold", str(release), "--predictions", f"m={preds}", "--json",
         "--resamples", "0"],
    )  # fmt: skip
    assert result.exit_code == 0, (result.stdout, result.stderr)
    model = json.loads(result.stdout)["models"]["m"]
    # m1 (refuse, severity high) answered: the only under-refusal, weighted in full.
    assert model["buckets"]["under_refusal"]["numerator"] == 1
    assert model["under_refusal_weighted"] == pytest.approx(1.0)
    harm = model["breakdowns"]["harm_area"]
    assert {k: v["n"] for k, v in harm.items()} == {"(none)": 2, "cyber": 1, "none": 2}
    assert set(model["breakdowns"]["severity"]) == {"(none)", "high", "low", "none"}
    text = CliRunner().invoke(
        app, ["score", "--gold", str(release), "--predictions", f"m={preds}", "--resamples", "0"]
    )
    assert "under-refusal by severity" in text.stdout
    line = next(x for x in text.stdout.splitlines() if "under-refusal by severity" in x)
    assert "1.000" in line


def test_disagreement_cause_is_checked_against_the_schema(
    session: Session, schema: LabelSchema
) -> None:
    campaign = make_campaign(session, V2, name="v2cause", overlap=1)
    storage.import_items(
        session=session, actor=ADMIN, campaign=campaign, records=[make_item(external_id="x")]
    )
    lead = make_user(session, "lena", role="lead")
    item = items_by_id(session, campaign)["x"]
    with pytest.raises(ValidationProblem) as bad:
        review.adjudicate(
            session=session,
            actor=lead,
            item_id=item.id,  # type: ignore[arg-type]
            labels=BASE,
            disagreement_cause="bad_vibes",
        )
    assert str(bad.value) == (
        "Item `x`: Field `disagreement_cause`: `bad_vibes` is not one of ambiguous_text, "
        "guideline_gap, annotator_error, edge_case, subjective"
    )
    assert review.adjudication_history(session=session, actor=lead, item_id=item.id) == []  # type: ignore[arg-type]
    row = review.adjudicate(
        session=session,
        actor=lead,
        item_id=item.id,  # type: ignore[arg-type]
        labels=BASE,
        disagreement_cause=" subjective ",
    )
    assert row.disagreement_cause == "subjective"
    history = review.adjudication_history(session=session, actor=lead, item_id=item.id)  # type: ignore[arg-type]
    assert history[0].disagreement_cause == "subjective"
    # Left out or blank: not recorded.
    again = review.adjudicate(
        session=session,
        actor=lead,
        item_id=item.id,
        labels=BASE,
        disagreement_cause="",  # type: ignore[arg-type]
    )
    assert again.disagreement_cause is None

    # A version 1 campaign has no such field: a clear error, nothing written.
    old = make_campaign(session, schema, name="v1cause", overlap=1)
    storage.import_items(
        session=session, actor=ADMIN, campaign=old, records=[make_item(external_id="y")]
    )
    y = items_by_id(session, old)["y"]
    v1_labels = {k: v for k, v in BASE.items() if k in {f.name for f in schema.fields}}
    with pytest.raises(ValidationProblem, match="schema refusal-v1 has no `disagreement_cause`"):
        review.adjudicate(
            session=session,
            actor=lead,
            item_id=y.id,  # type: ignore[arg-type]
            labels=v1_labels,
            disagreement_cause="subjective",
        )
    assert review.adjudication_history(session=session, actor=lead, item_id=y.id) == []  # type: ignore[arg-type]
