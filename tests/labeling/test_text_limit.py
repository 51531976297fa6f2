"""Free text is capped (ANNOTATE_MAX_TEXT_CHARS, default 10,000): rationales, flag notes,
adjudication notes and imported text labels longer than that are refused with a message, and
no annotation or history row ever holds more (a 21 MB rationale used to be accepted, and each
edit appended another 21 MB history row)."""

from __future__ import annotations

import pytest
from lead_helpers import Seeded, seed_campaign
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from annotate import labeling, review, storage
from annotate.errors import ImportProblem, ValidationProblem
from annotate.intake.labels import LabelRow
from annotate.schema import LabelSchema
from annotate.settings import get_settings
from annotate.storage import db
from annotate.storage.models import Annotation, AnnotationHistory, Item
from tests.conftest import ADMIN, full_labels, make_campaign, make_item, make_user

LIMIT = 10_000


def _history_longest(engine: Engine) -> int:
    with Session(engine) as s:
        rows = s.exec(select(AnnotationHistory.labels)).all()
        return max((len(str(r.get("rationale") or "")) for r in rows), default=0)


def _setup(engine: Engine, schema: LabelSchema) -> tuple[int, int]:
    """A campaign with one item; alice holds a claim on it. (annotator id, assignment id)."""
    with db.session_scope(engine) as s:
        make_user(s, "alice")
        campaign = make_campaign(s, schema, overlap=1)
        storage.import_items(
            session=s, actor=ADMIN, campaign=campaign, records=[make_item(external_id="q1")]
        )
    with db.session_scope(engine, immediate=True) as s:
        alice = storage.get_user(session=s, name="alice")
        claim = labeling.claim_next(session=s, user=alice, campaign=campaign)
        assert claim is not None
        return alice.id or 0, claim.assignment.id or 0


def test_the_default_limit_is_ten_thousand() -> None:
    assert get_settings().max_text_chars == LIMIT


def test_submit_and_edit_refuse_long_rationales_and_notes(
    engine: Engine, schema: LabelSchema
) -> None:
    _, assignment = _setup(engine, schema)
    with db.session_scope(engine) as s:
        alice = storage.get_user(session=s, name="alice")
    long_text = "x" * (LIMIT + 1)
    with pytest.raises(
        ValidationProblem, match=r"`rationale` is 10,001 characters long; the limit is 10,000"
    ):
        with db.session_scope(engine, immediate=True) as s:
            labeling.submit(
                session=s,
                user=alice,
                assignment_id=assignment,
                labels=full_labels(rationale=long_text),
            )
    with pytest.raises(ValidationProblem, match=r"`flag_note` is 10,001 characters long"):
        with db.session_scope(engine, immediate=True) as s:
            labeling.submit(
                session=s,
                user=alice,
                assignment_id=assignment,
                labels=full_labels(),
                flagged=True,
                flag_note=long_text,
            )
    with db.session_scope(engine, immediate=True) as s:
        ann = labeling.submit(
            session=s,
            user=alice,
            assignment_id=assignment,
            labels=full_labels(rationale="x" * LIMIT),  # exactly the limit is fine
        )
    for _ in range(3):
        with (
            pytest.raises(ValidationProblem, match="the limit is 10,000"),
            db.session_scope(engine) as s,
        ):
            labeling.edit(
                session=s,
                user=alice,
                annotation_id=ann.id or 0,
                labels=full_labels(rationale=long_text * 10),
            )
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(AnnotationHistory)).one() == 1
    assert _history_longest(engine) == LIMIT


def test_the_limit_is_a_setting_and_storage_enforces_it(
    engine: Engine, schema: LabelSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storage checks too, so a path that skips the labeling checks cannot store more."""
    _setup(engine, schema)
    monkeypatch.setenv("ANNOTATE_MAX_TEXT_CHARS", "50")
    with db.session_scope(engine) as s:
        alice = storage.get_user(session=s, name="alice")
        item = s.exec(select(Item)).one()
        with pytest.raises(
            ValidationProblem, match="`rationale` is 51 characters long; the limit is 50"
        ):
            storage.save_annotation(
                session=s, user=alice, item=item, labels=full_labels(rationale="y" * 51)
            )
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(Annotation)).one() == 0


@pytest.fixture
def seeded(session: Session, schema: LabelSchema) -> Seeded:
    return seed_campaign(session, schema)


def test_adjudication_notes_are_capped(session: Session, seeded: Seeded) -> None:
    item = seeded.items["i2"]
    with pytest.raises(ValidationProblem, match="`note` is 10,001 characters long"):
        review.adjudicate(
            session=session,
            actor=seeded.lead,
            item_id=item,
            labels=full_labels(right_action="answer_with_caveat"),
            note="n" * (LIMIT + 1),
        )
    with pytest.raises(ValidationProblem, match="`rationale` is 10,001 characters long"):
        review.adjudicate(
            session=session,
            actor=seeded.lead,
            item_id=item,
            labels=full_labels(rationale="r" * (LIMIT + 1)),
        )


def test_imported_text_labels_are_capped_with_their_line(
    session: Session, schema: LabelSchema
) -> None:
    campaign = make_campaign(session, schema)
    storage.import_items(
        session=session, actor=ADMIN, campaign=campaign, records=[make_item(external_id="q1")]
    )
    rows = [
        LabelRow(line=2, item_id="q1", annotator="ext", field="right_action", value="answer"),
        LabelRow(line=3, item_id="q1", annotator="ext", field="rationale", value="z" * (LIMIT + 5)),
    ]
    with pytest.raises(ImportProblem) as exc:
        storage.import_labels(
            session=session, actor=ADMIN, campaign=campaign, rows=rows, source="labels.csv"
        )
    assert exc.value.problems == [
        "labels.csv:3: field `value`: `rationale` is 10,005 characters long; the limit is "
        "10,000 (ANNOTATE_MAX_TEXT_CHARS): shorten it"
    ]
    assert session.exec(select(func.count()).select_from(Annotation)).one() == 0
