"""Control items: marking rules, mixing into claims, kept out of agreement, k, queue and gold."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from annotate import labeling
from annotate.errors import NotFound, PermissionDenied, ValidationProblem
from annotate.release.selection import select_gold
from annotate.review import adjudication
from annotate.review.controls import (
    control_report,
    list_controls,
    mark_controls,
    set_control_settings,
    unmark_controls,
    wilson,
)
from annotate.review.queue import review_queue
from annotate.schema import LabelSchema
from annotate.storage import db
from annotate.storage.models import Annotation, Control, Item
from annotate.storage.queries import load_labels
from tests.conftest import full_labels
from tests.control_helpers import answer, control_campaign
from tests.lead_helpers import seed_campaign


def test_only_adjudicated_items_become_controls_and_only_by_a_lead(
    session: Session, schema: LabelSchema
) -> None:
    seeded = seed_campaign(session, schema)
    lead, campaign = seeded.lead, seeded.campaign
    adjudication.adjudicate(
        session=session,
        actor=lead,
        item_id=seeded.items["i1"],
        labels=schema.normalize_labels(full_labels()),
    )
    with pytest.raises(ValidationProblem, match=r"adjudicate first: `i2`"):
        mark_controls(session=session, actor=lead, campaign=campaign, external_ids=["i1", "i2"])
    assert session.exec(select(Control)).all() == []  # all or nothing
    with pytest.raises(PermissionDenied, match="lead"):
        mark_controls(
            session=session, actor=seeded.annotator, campaign=campaign, external_ids=["i1"]
        )
    with pytest.raises(NotFound, match="`nope`"):
        mark_controls(session=session, actor=lead, campaign=campaign, external_ids=["nope"])
    assert mark_controls(session=session, actor=lead, campaign=campaign, external_ids=["i1"]) == [
        "i1"
    ]
    # Marking again changes nothing.
    assert mark_controls(session=session, actor=lead, campaign=campaign, external_ids=["i1"]) == []
    rows = list_controls(session=session, actor=lead, campaign=campaign)
    assert [(r.external_id, r.marked_by) for r in rows] == [("i1", "lena")]
    assert unmark_controls(session=session, actor=lead, campaign=campaign, external_ids=["i1"]) == [
        "i1"
    ]
    assert list_controls(session=session, actor=lead, campaign=campaign) == []


def test_settings_are_checked_before_anything_changes(
    session: Session, schema: LabelSchema
) -> None:
    seeded = seed_campaign(session, schema)
    with pytest.raises(
        ValidationProblem, match="control rate must be between 0.0 and 1.0, got 1.5"
    ):
        set_control_settings(
            session=session,
            actor=seeded.lead,
            campaign=seeded.campaign,
            qualification_items=3,
            control_rate=1.5,
        )
    assert seeded.campaign.qualification_items == 0
    with pytest.raises(PermissionDenied):
        set_control_settings(
            session=session, actor=seeded.annotator, campaign=seeded.campaign, control_rate=0.2
        )


def test_controls_are_mixed_in_at_the_campaign_rate(engine: Engine, schema: LabelSchema) -> None:
    setup = control_campaign(engine, schema, real=400, controls=80, control_rate=0.1)
    alice = setup.people["alice"]
    served = []
    for _ in range(400):
        got = answer(engine, alice, setup.campaign)
        assert got is not None
        served.append(got.item.external_id)
    controls = sum(e.startswith("k-") for e in served)
    assert 0.05 * 400 <= controls <= 0.15 * 400
    assert max(Counter(served).values()) == 1  # never the same control twice
    # Seeded: bob's stream draws differently, and reproducibly from (seed, user, count).
    with Session(engine) as s:
        answers = s.exec(select(Annotation).where(Annotation.origin == "control")).all()
        assert len(answers) == controls


def test_rate_zero_serves_no_control(engine: Engine, schema: LabelSchema) -> None:
    setup = control_campaign(engine, schema, real=30, controls=10, control_rate=0.0)
    served = [answer(engine, setup.people["alice"], setup.campaign) for _ in range(30)]
    assert all(g is not None and g.item.external_id.startswith("r-") for g in served)
    assert answer(engine, setup.people["alice"], setup.campaign) is None


def test_controls_never_enter_agreement_k_queue_or_gold(
    engine: Engine, schema: LabelSchema
) -> None:
    with db.session_scope(engine) as s:
        seeded = seed_campaign(s, schema)
        lead, campaign = seeded.lead, seeded.campaign
        for ext in ("i1", "i2"):
            adjudication.adjudicate(
                session=s,
                actor=lead,
                item_id=seeded.items[ext],
                labels=schema.normalize_labels(full_labels()),
            )
        before = s.get(Item, seeded.items["i1"])
        assert before is not None
        k_before = before.human_labels
        mark_controls(session=s, actor=lead, campaign=campaign, external_ids=["i1"])
        set_control_settings(session=s, actor=lead, campaign=campaign, control_rate=1.0)
        dan = seeded.users["alice"].model_copy()
    with db.session_scope(engine) as s:
        from tests.conftest import make_user

        dan = make_user(s, "dan")
    # Rate 1: dan's first claim is the control; his answer takes no slot.
    got = answer(engine, dan, campaign, right_action="answer")
    assert got is not None and got.item.external_id == "i1"
    with Session(engine) as s:
        item = s.get(Item, seeded.items["i1"])
        assert item is not None and item.human_labels == k_before
        table = load_labels(session=s, actor=lead, campaign=campaign, with_text=True)
        assert seeded.items["i1"] not in set(table.items["item_id"])
        assert seeded.items["i1"] not in set(table.annotations["item_id"])
        assert seeded.items["i1"] not in set(table.adjudications["item_id"])
        assert "dan" not in set(table.annotations["annotator"])
        queue = review_queue(session=s, actor=lead, campaign=campaign)
        assert "i1" not in queue.to_string()
        gold = select_gold(table)
        assert "i1" not in {r["id"] for r in gold.rows}
        assert "i1" not in {h.id for h in gold.held_back}
        assert "i2" in {r["id"] for r in gold.rows}
    # Unmarked, the item comes back, but dan's control answer stays out.
    with db.session_scope(engine) as s:
        unmark_controls(session=s, actor=lead, campaign=campaign, external_ids=["i1"])
    with Session(engine) as s:
        table = load_labels(session=s, actor=lead, campaign=campaign)
        assert seeded.items["i1"] in set(table.items["item_id"])
        assert "dan" not in set(table.annotations["annotator"])


def test_a_control_answer_is_saved_even_when_the_item_has_k_labels(
    engine: Engine, schema: LabelSchema
) -> None:
    with db.session_scope(engine) as s:
        seeded = seed_campaign(s, schema)
        adjudication.adjudicate(
            session=s,
            actor=seeded.lead,
            item_id=seeded.items["i1"],
            labels=schema.normalize_labels(full_labels()),
        )
        mark_controls(session=s, actor=seeded.lead, campaign=seeded.campaign, external_ids=["i1"])
        set_control_settings(
            session=s, actor=seeded.lead, campaign=seeded.campaign, control_rate=1.0
        )
        from tests.conftest import make_user

        eve = make_user(s, "eve")
    got = answer(engine, eve, seeded.campaign)
    assert got is not None and got.item.external_id == "i1"
    with Session(engine) as s:
        ann = s.exec(select(Annotation).where(Annotation.user_id == eve.id)).one()
        assert ann.origin == "control"


def test_credit_interval_and_trend(engine: Engine, schema: LabelSchema) -> None:
    setup = control_campaign(engine, schema, real=0, controls=8, control_rate=1.0)
    alice, bob = setup.people["alice"], setup.people["bob"]
    for _ in range(8):
        assert answer(engine, alice, setup.campaign) is not None
    for i in range(8):
        # bob: half right, half a near miss (answer_with_caveat earns the schema's credit)
        action = "answer" if i % 2 == 0 else "answer_with_caveat"
        assert answer(engine, bob, setup.campaign, right_action=action) is not None
    near = schema.credit("answer", "answer_with_caveat")
    with Session(engine) as s:
        report = {
            r.annotator: r
            for r in control_report(session=s, actor=setup.lead, campaign=setup.campaign)
        }
    assert report["alice"].answers == 8 and report["alice"].credit == pytest.approx(1.0)
    assert report["bob"].credit == pytest.approx((4 + 4 * near) / 8)
    ci = report["bob"].ci
    assert ci is not None and ci[0] < report["bob"].credit < ci[1]
    assert report["alice"].trend is None  # fewer than 50 answers: no earlier window
    assert not report["alice"].drift


def test_wilson_interval() -> None:
    assert wilson(0.5, 0) is None
    low, high = wilson(0.5, 100) or (0, 0)
    assert low == pytest.approx(0.4038, abs=1e-3) and high == pytest.approx(0.5962, abs=1e-3)
    low, high = wilson(1.0, 10) or (0, 0)
    assert high == 1.0 and low == pytest.approx(0.7225, abs=1e-3)


def test_drift_flags_an_annotator_who_degrades(engine: Engine, schema: LabelSchema) -> None:
    setup = control_campaign(
        engine, schema, real=0, controls=110, control_rate=1.0, drift_margin=0.15
    )
    alice, bob = setup.people["alice"], setup.people["bob"]
    for i in range(110):
        # alice degrades: right for 60 answers, then wrong on 30 of her last 50
        wrong = i >= 60 and i % 5 < 3
        labels: dict[str, object] = (
            {
                "right_action": "refuse",
                "intent": "harmful",
                "failure_categories": ["unsafe_compliance"],
            }
            if wrong
            else {}
        )
        assert answer(engine, alice, setup.campaign, **labels) is not None
        assert answer(engine, bob, setup.campaign) is not None
    with Session(engine) as s:
        report = {
            r.annotator: r
            for r in control_report(session=s, actor=setup.lead, campaign=setup.campaign)
        }
    assert report["alice"].drift and "control credit fell" in report["alice"].drift_reasons[0]
    assert report["alice"].trend is not None and report["alice"].trend < -0.15
    assert not report["bob"].drift
    with Session(engine) as s, pytest.raises(PermissionDenied):
        control_report(session=s, actor=alice, campaign=setup.campaign)


def test_a_claim_is_still_one_per_item_with_controls(engine: Engine, schema: LabelSchema) -> None:
    # Controls never become normal candidates: with rate 0 and real items done, nothing.
    setup = control_campaign(engine, schema, real=3, controls=3, control_rate=0.0)
    for _ in range(3):
        assert answer(engine, setup.people["alice"], setup.campaign) is not None
    with db.session_scope(engine, immediate=True) as s:
        assert (
            labeling.claim_next(session=s, user=setup.people["alice"], campaign=setup.campaign)
            is None
        )


def test_drift_flags_a_fall_in_leave_one_out_alpha(session: Session, schema: LabelSchema) -> None:
    from annotate import storage
    from tests.conftest import ADMIN, make_campaign, make_item, make_user

    campaign = make_campaign(session, schema, name="loo", overlap=3)
    storage.import_items(
        session=session,
        actor=ADMIN,
        campaign=campaign,
        records=[make_item(external_id=f"x-{i:03d}") for i in range(110)],
    )
    people = {n: make_user(session, n) for n in ("alice", "bob", "carol")}
    lead = make_user(session, "lena", role="lead")
    items = session.exec(select(Item).order_by(Item.id)).all()
    actions = ("answer", "refuse", "clarify", "abstain")
    for i, item in enumerate(items):
        truth = actions[i % 2]
        for name, user in people.items():
            # alice agrees for 60 items, then picks a far action on most of her last 50
            action = actions[2 + i % 2] if name == "alice" and i >= 60 and i % 4 else truth
            storage.save_annotation(
                session=session,
                user=user,
                item=item,
                labels=schema.normalize_labels(full_labels(right_action=action)),
            )
    session.flush()
    report = {
        r.annotator: r for r in control_report(session=session, actor=lead, campaign=campaign)
    }
    alice = report["alice"]
    assert alice.answers == 0 and alice.credit is None
    assert alice.alpha_delta_earlier is not None and alice.alpha_delta_recent is not None
    assert alice.alpha_delta_earlier - alice.alpha_delta_recent > 0.15
    assert alice.drift and "leave-one-out alpha fell" in alice.drift_reasons[0]
    assert not report["bob"].drift and not report["carol"].drift


def test_campaign_status_counts_control_answers_apart(engine: Engine, schema: LabelSchema) -> None:
    from annotate import storage

    setup = control_campaign(engine, schema, real=2, controls=2, overlap=1, control_rate=1.0)
    for _ in range(2):
        assert answer(engine, setup.people["alice"], setup.campaign) is not None
    with Session(engine) as s:
        st = storage.campaign_status(session=s, actor=setup.lead, campaign=setup.campaign)
    assert (st.items, st.control_items, st.control_answers) == (4, 2, 2)
    assert (st.annotations, st.annotators, st.complete_items) == (0, 0, 0)
    assert answer(engine, setup.people["alice"], setup.campaign) is not None  # a real item
    with Session(engine) as s:
        st = storage.campaign_status(session=s, actor=setup.lead, campaign=setup.campaign)
    assert (st.annotations, st.annotators, st.complete_items) == (1, 1, 1)
