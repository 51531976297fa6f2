"""The schema's consistency rules hold at import, at adjudication and at release, and the
lead's queue never bulk-accepts what an annotator flagged or left a note on."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import ADMIN, full_labels, make_campaign, make_item, make_user
from sqlmodel import Session, select
from typer.testing import CliRunner

from annotate import review, storage
from annotate.cli import app
from annotate.errors import ImportProblem, ValidationProblem
from annotate.intake.labels import LabelRow
from annotate.release.publish import create_release
from annotate.schema import LabelSchema
from annotate.storage.models import Adjudication, Item

runner = CliRunner()

# Right action answer, the response refused, over_refusal not ticked: rule over_refusal_unticked.
BROKEN = {"right_action": "answer", "observed_action": "refuse", "failure_categories": []}


def _rows(ext: str, who: str, labels: dict[str, Any], line: int = 2) -> list[LabelRow]:
    return [
        LabelRow(
            line,
            ext,
            who,
            k,
            ";".join(v) if isinstance(v, list) else ("" if v is None else str(v)),
        )
        for k, v in labels.items()
        if v is not None
    ]


def _campaign(session: Session, schema: LabelSchema, exts: list[str], overlap: int = 2) -> Any:
    campaign = make_campaign(session, schema, overlap=overlap)
    storage.import_items(
        session=session,
        actor=ADMIN,
        campaign=campaign,
        records=[make_item(external_id=e, prompt=f"p {e}") for e in exts],
    )
    return campaign


def _item_id(session: Session, ext: str) -> int:
    found = session.exec(select(Item.id).where(Item.external_id == ext)).first()
    assert found is not None
    return int(found)


# -- import -------------------------------------------------------------------------------------


def test_import_reports_every_broken_rule_and_strict_refuses(
    session: Session, schema: LabelSchema
) -> None:
    campaign = _campaign(session, schema, ["a", "b"])
    rows = _rows("a", "ann1", full_labels(**BROKEN)) + _rows("b", "ann1", full_labels())
    with pytest.raises(ImportProblem) as refused:
        storage.import_labels(
            session=session, actor=ADMIN, campaign=campaign, rows=rows, source="f", strict=True
        )
    assert "item `a`, annotator ann1: breaks rule over_refusal_unticked" in str(refused.value)
    assert session.exec(select(storage.models.Annotation)).all() == []
    result = storage.import_labels(
        session=session, actor=ADMIN, campaign=campaign, rows=rows, source="f"
    )
    assert result.annotations_added == 2
    assert [(v.item_id, v.annotator, v.rule) for v in result.violations] == [
        ("a", "ann1", "over_refusal_unticked")
    ]


def test_import_labels_cli_writes_violations_and_strict_exits(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    items = tmp_path / "items.csv"
    items.write_text("id,prompt,response\na,Hi?,No.\nb,Hi?,Hello.\n")
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["item_id", "annotator", "field", "value"])
        for fld, value in {**full_labels(), **BROKEN}.items():
            if value is not None:
                w.writerow(
                    ["a", "ann1", fld, ";".join(value) if isinstance(value, list) else value]
                )
        w.writerow(["b", "ann1", "right_action", "answer"])
    for args in (
        ["init"],
        ["campaign", "create", "c", "--overlap", "2", "--schema", "refusal-v1"],
        ["import", str(items), "--campaign", "c"],
    ):
        assert runner.invoke(app, [*args, "--db", db_url]).exit_code == 0
    strict = runner.invoke(
        app, ["import-labels", str(labels), "--campaign", "c", "--strict", "--db", db_url]
    )
    assert strict.exit_code == 1
    assert "breaks rule over_refusal_unticked" in strict.stderr
    assert "refused (--strict): 1 rule violation(s)" in strict.stderr
    done = runner.invoke(app, ["import-labels", str(labels), "--campaign", "c", "--db", db_url])
    assert done.exit_code == 0, done.stderr
    assert (
        "1 labeled item(s) (1 item(s)) break the schema's consistency rules: "
        "over_refusal_unticked 1; every violation is listed in labels.violations.csv"
    ) in done.stdout
    with (tmp_path / "labels.violations.csv").open() as fh:
        written = list(csv.DictReader(fh))
    assert [(r["item_id"], r["annotator"], r["rule"]) for r in written] == [
        ("a", "ann1", "over_refusal_unticked")
    ]
    chosen = tmp_path / "out" / "v.csv"
    chosen.parent.mkdir()
    again = runner.invoke(
        app,
        ["import-labels", str(labels), "--campaign", "c", "--violations", str(chosen)]
        + ["--db", db_url],
    )
    assert again.exit_code == 0 and chosen.exists()


# -- adjudication -------------------------------------------------------------------------------


def test_adjudication_that_breaks_a_rule_needs_a_note_and_records_the_override(
    session: Session, schema: LabelSchema
) -> None:
    campaign = _campaign(session, schema, ["a"])
    storage.import_labels(
        session=session,
        actor=ADMIN,
        campaign=campaign,
        rows=_rows("a", "ann1", full_labels()) + _rows("a", "ann2", full_labels()),
    )
    lead = make_user(session, "lead", role="lead")
    item_id = _item_id(session, "a")
    with pytest.raises(ValidationProblem, match="over_refusal_unticked.*add a note"):
        review.adjudicate(
            session=session, actor=lead, item_id=item_id, labels=full_labels(**BROKEN)
        )
    saved = review.adjudicate(
        session=session,
        actor=lead,
        item_id=item_id,
        labels=full_labels(**BROKEN),
        note="The refusal was right for another reason.",
    )
    assert saved.overridden_rules == ["over_refusal_unticked"]
    clean = review.adjudicate(session=session, actor=lead, item_id=item_id, labels=full_labels())
    assert clean.overridden_rules == []


def test_adjudication_names_every_missing_field_by_display_name(
    session: Session, schema: LabelSchema
) -> None:
    campaign = _campaign(session, schema, ["a"])
    lead = make_user(session, "lead", role="lead")
    labels = full_labels(intent=None, confidence=None)
    with pytest.raises(ValidationProblem) as refused:
        review.adjudicate(
            session=session, actor=lead, item_id=_item_id(session, "a"), labels=labels
        )
    assert (
        str(refused.value)
        == "Item `a`: the final labels need: Intent of the request, Your confidence."
    )
    assert campaign is not None


# -- release ------------------------------------------------------------------------------------


def _gold_with_rule_break(session: Session, schema: LabelSchema) -> tuple[Any, Any]:
    campaign = _campaign(session, schema, ["a", "b", "c"])
    rows: list[LabelRow] = []
    for who in ("ann1", "ann2"):
        rows += _rows("a", who, full_labels(**BROKEN))
        rows += _rows("b", who, full_labels())
        rows += _rows("c", who, full_labels(**BROKEN))
    result = storage.import_labels(session=session, actor=ADMIN, campaign=campaign, rows=rows)
    assert len(result.violations) == 4
    return campaign, make_user(session, "lead", role="lead")


def test_release_refuses_rule_breaking_gold_unless_overridden_or_allowed(
    session: Session, schema: LabelSchema, tmp_path: Path
) -> None:
    campaign, lead = _gold_with_rule_break(session, schema)
    with pytest.raises(ValidationProblem) as refused:
        create_release(
            session=session, actor=lead, campaign=campaign, out_dir=tmp_path, n_resamples=0
        )
    text = str(refused.value)
    assert "2 of 3 gold records break the schema's consistency rules" in text
    assert "  a: over_refusal_unticked:" in text and "  c: over_refusal_unticked:" in text
    assert "--allow-rule-violations" in text
    assert not (tmp_path / "c1").exists()

    # A lead overrides the rule on `a` with a note: only `c` is left.
    review.adjudicate(
        session=session,
        actor=lead,
        item_id=_item_id(session, "a"),
        labels=full_labels(**BROKEN),
        note="Both annotators saw a justified refusal.",
    )
    with pytest.raises(ValidationProblem, match="1 of 3 gold records") as still:
        create_release(
            session=session, actor=lead, campaign=campaign, out_dir=tmp_path, n_resamples=0
        )
    assert "  a:" not in str(still.value)

    result = create_release(
        session=session,
        actor=lead,
        campaign=campaign,
        out_dir=tmp_path,
        n_resamples=0,
        allow_rule_violations=True,
    )
    assert result.rule_violations == 1
    manifest = json.loads((Path(result.path) / "manifest.json").read_text())
    assert manifest["policy"]["allow_rule_violations"] is True
    assert [(v["id"], v["rule"]) for v in manifest["policy"]["rule_violations"]] == [
        ("c", "over_refusal_unticked")
    ]


def test_release_cli_flag(db_url: str, tmp_path: Path) -> None:
    items = tmp_path / "items.csv"
    items.write_text("id,prompt,response\na,Hi?,No.\n")
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["item_id", "annotator", "field", "value"])
        for who in ("ann1", "ann2"):
            for fld, value in {**full_labels(), **BROKEN}.items():
                if value is not None:
                    cell = ";".join(value) if isinstance(value, list) else value
                    w.writerow(["a", who, fld, cell])
    for args in (
        ["init"],
        ["campaign", "create", "c", "--overlap", "2", "--schema", "refusal-v1"],
        ["import", str(items), "--campaign", "c"],
        ["import-labels", str(labels), "--campaign", "c", "--violations", str(tmp_path / "v.csv")],
    ):
        assert runner.invoke(app, [*args, "--db", db_url]).exit_code == 0
    out = str(tmp_path / "exports")
    refused = runner.invoke(app, ["release", "--campaign", "c", "--out", out, "--db", db_url])
    assert refused.exit_code == 1
    assert "1 of 1 gold records break the schema's consistency rules" in refused.stderr
    allowed = runner.invoke(
        app,
        ["release", "--campaign", "c", "--out", out, "--allow-rule-violations", "--db", db_url],
    )
    assert allowed.exit_code == 0, allowed.stderr
    assert "1 rule violation(s) released with --allow-rule-violations" in allowed.stdout


# -- the lead's queue ---------------------------------------------------------------------------


def test_bulk_accept_never_takes_flagged_or_noted_items_and_they_sort_first(
    session: Session, schema: LabelSchema
) -> None:
    campaign = _campaign(session, schema, ["plain", "flagged", "noted", "split", "ruled"])
    users = {n: make_user(session, n) for n in ("ann1", "ann2")}
    items = {i.external_id: i for i in session.exec(select(Item)).all()}
    for ext, item in items.items():
        for who, user in users.items():
            labels = full_labels()
            if ext == "split" and who == "ann2":
                labels = full_labels(right_action="answer_with_caveat")
            if ext == "noted" and who == "ann1":
                labels = full_labels(rationale="Looks like a trick question to me.")
            if ext == "ruled":
                labels = full_labels(**BROKEN, rationale=None)
            storage.save_annotation(
                session=session,
                user=user,
                item=item,
                labels=schema.normalize_labels(labels),
                flagged=ext == "flagged" and who == "ann2",
                flag_note="Please look: the response quotes a real address."
                if ext == "flagged" and who == "ann2"
                else None,
            )
    session.flush()
    lead = make_user(session, "lead", role="lead")
    queue = review.review_queue(session=session, actor=lead, campaign=campaign)
    order = queue["external_id"].tolist()
    assert set(order[:2]) == {"flagged", "noted"}
    assert order[2] == "split"  # then the most disagreed
    result = review.bulk_accept_unanimous(session=session, actor=lead, campaign=campaign)
    accepted = {i.external_id for i in items.values() if i.id in result.accepted}
    assert accepted == {"plain"}
    by_ext = {i.external_id: i.id for i in items.values()}
    assert result.skipped[by_ext["flagged"]] == "an annotator flagged it for the lead"
    assert result.skipped[by_ext["noted"]] == "an annotator left a note on it"
    assert result.skipped[by_ext["ruled"]] == "its labels break over_refusal_unticked"
    assert result.skipped[by_ext["split"]] == "annotators disagree"
    assert len(session.exec(select(Adjudication)).all()) == 1
