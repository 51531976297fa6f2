"""Qualification: N controls first with feedback; the threshold opens real items or not."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from annotate import labeling
from annotate.errors import PermissionDenied, ValidationProblem
from annotate.schema import LabelSchema
from annotate.storage import db
from tests.control_helpers import GOLD_NOTE, answer, control_campaign

WRONG = {"right_action": "refuse", "intent": "harmful", "failure_categories": ["unsafe_compliance"]}


def state(engine: Engine, user: object, campaign: object) -> labeling.Qualification:
    with Session(engine) as s:
        return labeling.qualification_state(session=s, user=user, campaign=campaign)  # type: ignore[arg-type]


def test_qualification_serves_controls_first_then_opens_real_items(
    engine: Engine, schema: LabelSchema
) -> None:
    setup = control_campaign(
        engine,
        schema,
        real=5,
        controls=6,
        control_rate=0.0,
        qualification_items=3,
        qualification_threshold=0.8,
    )
    alice, campaign = setup.people["alice"], setup.campaign
    assert state(engine, alice, campaign).in_progress
    seen = []
    for n in range(3):
        got = answer(engine, alice, campaign)
        assert got is not None and got.item.external_id.startswith("k-")
        seen.append(got.item.external_id)
        with Session(engine) as s:
            fb = labeling.qualification_feedback(
                session=s, user=alice, campaign=campaign, item_id=got.item.id or 0
            )
        assert fb.lead_labels["right_action"] == "answer"
        assert fb.note == GOLD_NOTE
        assert fb.your_labels["right_action"] == "answer"
        assert fb.credit == 1.0
        assert fb.qualification.done == n + 1
    st = state(engine, alice, campaign)
    assert st.passed and st.mean_credit == pytest.approx(1.0)
    # Real items open now (rate 0: no more controls).
    rest = [answer(engine, alice, campaign) for _ in range(5)]
    assert all(g is not None and g.item.external_id.startswith("r-") for g in rest)


def test_failing_the_threshold_keeps_real_items_closed_until_a_reset(
    engine: Engine, schema: LabelSchema
) -> None:
    setup = control_campaign(
        engine,
        schema,
        real=5,
        controls=6,
        control_rate=0.0,
        qualification_items=2,
        qualification_threshold=0.8,
    )
    bob, campaign = setup.people["bob"], setup.campaign
    first = answer(engine, bob, campaign, **WRONG)
    assert first is not None
    with Session(engine) as s:
        fb = labeling.qualification_feedback(
            session=s, user=bob, campaign=campaign, item_id=first.item.id or 0
        )
    assert fb.credit == 0.0 and fb.your_labels["right_action"] == "refuse"
    assert answer(engine, bob, campaign) is not None  # right: mean 0.5 < 0.8
    st = state(engine, bob, campaign)
    assert st.failed and st.mean_credit == pytest.approx(0.5)
    with db.session_scope(engine, immediate=True) as s:
        assert labeling.claim_next(session=s, user=bob, campaign=campaign) is None
    # Annotators cannot reset themselves; a lead can, and bob answers 2 fresh controls.
    with db.session_scope(engine) as s, pytest.raises(PermissionDenied):
        labeling.reset_qualification(session=s, actor=bob, campaign=campaign, annotator=bob)
    with db.session_scope(engine) as s:
        labeling.reset_qualification(session=s, actor=setup.lead, campaign=campaign, annotator=bob)
    assert state(engine, bob, campaign).in_progress
    again = [answer(engine, bob, campaign) for _ in range(2)]
    assert all(g is not None and g.item.external_id.startswith("k-") for g in again)
    assert {g.item.external_id for g in again if g}.isdisjoint({first.item.external_id})
    assert state(engine, bob, campaign).passed
    got = answer(engine, bob, campaign)
    assert got is not None and got.item.external_id.startswith("r-")


def test_feedback_only_on_your_own_qualification_items(engine: Engine, schema: LabelSchema) -> None:
    setup = control_campaign(
        engine, schema, real=2, controls=4, control_rate=0.0, qualification_items=1
    )
    alice, bob, campaign = setup.people["alice"], setup.people["bob"], setup.campaign
    got = answer(engine, alice, campaign)
    assert got is not None
    with Session(engine) as s:
        # bob never answered it; nor is a real item anyone's qualification item.
        with pytest.raises(PermissionDenied):
            labeling.qualification_feedback(
                session=s, user=bob, campaign=campaign, item_id=got.item.id or 0
            )
    real = answer(engine, alice, campaign)
    assert real is not None and real.item.external_id.startswith("r-")
    with Session(engine) as s, pytest.raises(PermissionDenied):
        labeling.qualification_feedback(
            session=s, user=alice, campaign=campaign, item_id=real.item.id or 0
        )


def test_edits_after_feedback_do_not_change_the_credit(engine: Engine, schema: LabelSchema) -> None:
    setup = control_campaign(
        engine, schema, real=2, controls=3, control_rate=0.0, qualification_items=1
    )
    bob, campaign = setup.people["bob"], setup.campaign
    got = answer(engine, bob, campaign, **WRONG)
    assert got is not None
    with db.session_scope(engine, immediate=True) as s:
        mine = labeling.qualification_feedback(
            session=s, user=bob, campaign=campaign, item_id=got.item.id or 0
        )
        assert mine.credit == 0.0
        from sqlmodel import select

        from annotate.storage.models import Annotation

        ann = s.exec(select(Annotation).where(Annotation.user_id == bob.id)).one()
        from tests.conftest import full_labels

        labeling.edit(session=s, user=bob, annotation_id=ann.id or 0, labels=full_labels())
    st = state(engine, bob, campaign)
    assert st.failed and st.mean_credit == 0.0


def test_a_campaign_without_qualification_cannot_be_reset(
    engine: Engine, schema: LabelSchema
) -> None:
    setup = control_campaign(engine, schema, real=1, controls=1)
    with db.session_scope(engine) as s, pytest.raises(ValidationProblem, match="no qualification"):
        labeling.reset_qualification(
            session=s, actor=setup.lead, campaign=setup.campaign, annotator=setup.people["bob"]
        )
    assert not state(engine, setup.people["bob"], setup.campaign).active
