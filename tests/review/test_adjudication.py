"""The review queue and adjudications with provenance, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from conftest import full_labels
from lead_helpers import JUDGE, Seeded, seed_campaign
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from annotate import review
from annotate.accounts.auth import system_actor
from annotate.errors import NotFound, PermissionDenied, ValidationProblem
from annotate.review.figures import ReportFilters
from annotate.schema import LabelSchema
from annotate.stats import bands
from annotate.storage import db
from annotate.storage.models import Adjudication, User


@pytest.fixture
def seeded(session: Session, schema: LabelSchema) -> Seeded:
    return seed_campaign(session, schema)


def ext_ids(frame: Any) -> list[str]:
    return list(frame["external_id"])


# -- queue -----------------------------------------------------------------------------------


def test_queue_orders_by_disagreement_and_needs_k_labels(session: Session, seeded: Seeded) -> None:
    queue = review.review_queue(session=session, actor=seeded.lead, campaign=seeded.campaign)
    # i3 (three far-apart actions), i4 (near miss 0.5), i2 (0.17), then the right-action
    # unanimous ones by their other fields: i6 (failure categories differ), i1; i5 has 1 label.
    assert ext_ids(queue) == ["i3", "i4", "i2", "i6", "i1"]
    assert queue["disagreement"].is_monotonic_decreasing
    everyone = review.review_queue(
        session=session, actor=seeded.lead, campaign=seeded.campaign, min_labels=1
    )
    assert "i5" in ext_ids(everyone)
    three = review.review_queue(
        session=session, actor=seeded.lead, campaign=seeded.campaign, min_labels=3
    )
    assert "i4" not in ext_ids(three)


def test_queue_filters(session: Session, seeded: Seeded) -> None:
    def queue(**kw: Any) -> list[str]:
        return ext_ids(
            review.review_queue(session=session, actor=seeded.lead, campaign=seeded.campaign, **kw)
        )

    assert queue(flagged_only=True) == ["i3"]
    assert queue(filters=ReportFilters(categories=("a",))) == ["i2", "i1"]
    assert queue(filters=ReportFilters(models=("m2",))) == ["i4", "i6"]
    assert queue(filters=ReportFilters(groups=("g1",))) == ["i2", "i1"]
    assert queue(filters=ReportFilters(intents=("ambiguous",))) == ["i4"]


def test_queue_marks_or_hides_adjudicated_items(session: Session, seeded: Seeded) -> None:
    review.adjudicate(
        session=session,
        actor=seeded.lead,
        item_id=seeded.items["i4"],
        labels=full_labels(right_action="clarify", intent="ambiguous"),
    )
    marked = review.review_queue(
        session=session, actor=seeded.lead, campaign=seeded.campaign
    ).set_index("external_id")
    assert bool(marked.loc["i4", "adjudicated"]) and marked.loc["i4", "method"] == "manual"
    assert not bool(marked.loc["i3", "adjudicated"])
    hidden = review.review_queue(
        session=session, actor=seeded.lead, campaign=seeded.campaign, include_adjudicated=False
    )
    assert "i4" not in ext_ids(hidden)


# -- adjudicate ------------------------------------------------------------------------------


def test_adjudication_stores_provenance_and_the_split_band(
    session: Session, seeded: Seeded, schema: LabelSchema
) -> None:
    row = review.adjudicate(
        session=session,
        actor=seeded.lead,
        item_id=seeded.items["i4"],
        labels=full_labels(right_action="clarify", intent="ambiguous"),
        guideline_gap=True,
    )
    assert row.lead_id == seeded.lead.id and row.created_at is not None
    assert row.method == "manual" and row.is_current and row.previous_id is None
    assert row.guideline_gap and not row.overrides_majority  # 1-1 split: no majority
    assert row.labels["right_action"] == "clarify"
    assert row.band == bands.suggest_band(schema, "clarify", ["clarify", "answer_safe_part"])
    assert row.band["answer_safe_part"] == 0.5


def test_overriding_the_majority_needs_a_note(session: Session, seeded: Seeded) -> None:
    item = seeded.items["i2"]  # majority: answer (2 of 3)
    labels = full_labels(right_action="answer_with_caveat")
    with pytest.raises(ValidationProblem, match="overrides the annotators' majority `answer`"):
        review.adjudicate(session=session, actor=seeded.lead, item_id=item, labels=labels)
    with pytest.raises(ValidationProblem, match="add a note"):
        review.adjudicate(
            session=session, actor=seeded.lead, item_id=item, labels=labels, note="   "
        )
    row = review.adjudicate(
        session=session,
        actor=seeded.lead,
        item_id=item,
        labels=labels,
        note="A caveat about dosage is needed.",
    )
    assert row.overrides_majority and row.note == "A caveat about dosage is needed."
    # Agreeing with the majority needs no note.
    again = review.adjudicate(
        session=session, actor=seeded.lead, item_id=item, labels=full_labels()
    )
    assert not again.overrides_majority and again.note is None


def test_judges_do_not_count_towards_the_majority(session: Session, seeded: Seeded) -> None:
    # i3: humans refuse / answer / clarify; the judge's `refuse` must not make a majority.
    detail = review.item_detail(session=session, actor=seeded.lead, item_id=seeded.items["i3"])
    assert detail.majority is None
    row = review.adjudicate(
        session=session,
        actor=seeded.lead,
        item_id=seeded.items["i3"],
        labels=full_labels(right_action="answer"),
    )
    assert not row.overrides_majority


def test_reajudication_appends_and_keeps_the_old_row(session: Session, seeded: Seeded) -> None:
    item = seeded.items["i3"]
    first = review.adjudicate(
        session=session,
        actor=seeded.lead,
        item_id=item,
        labels=full_labels(right_action="refuse", intent="harmful"),
        band={"refuse": 1.0, "abstain": 0.25},
        note="first pass",
    )
    second = review.adjudicate(
        session=session,
        actor=seeded.lead,
        item_id=item,
        labels=full_labels(right_action="clarify", intent="ambiguous"),
        band={"clarify": 1.0, "refuse": 0.5, "answer": 0.25},
        note="guideline 4.2",
    )
    session.expire_all()
    rows = session.exec(
        select(Adjudication).where(Adjudication.item_id == item).order_by(col(Adjudication.id))
    ).all()
    assert [r.id for r in rows] == [first.id, second.id]
    old, new = rows
    assert not old.is_current and new.is_current
    assert new.previous_id == old.id
    # Nothing but the flag changed on the old row.
    assert old.labels["right_action"] == "refuse" and old.band == {"abstain": 0.25, "refuse": 1.0}
    assert old.note == "first pass"
    assert new.band == {"answer": 0.25, "clarify": 1.0, "refuse": 0.5}
    history = review.adjudication_history(session=session, actor=seeded.lead, item_id=item)
    assert [h.id for h in history] == [second.id, first.id]
    assert history[0].lead == "lena"


@pytest.mark.parametrize(
    ("labels", "band", "message"),
    [
        (full_labels(right_action="dance"), None, "`dance` is not one of"),
        (full_labels(right_action=None), None, "the final labels need: Right action\\."),
        (full_labels(right_action="clarify"), {"refuse": 1.0}, "credit 1"),
        (full_labels(right_action="clarify"), {"clarify": 1, "fly": 0.5}, "`fly`"),
        ({"right_action": "clarify", "bogus": 1}, None, "Unknown field"),
    ],
)
def test_bad_adjudications_are_refused(
    session: Session,
    seeded: Seeded,
    labels: dict[str, Any],
    band: dict[str, float] | None,
    message: str,
) -> None:
    with pytest.raises(ValidationProblem, match=message):
        review.adjudicate(
            session=session,
            actor=seeded.lead,
            item_id=seeded.items["i4"],
            labels=labels,
            band=band,
        )
    assert session.exec(select(Adjudication)).first() is None


def test_unknown_item_and_anonymous_lead(session: Session, seeded: Seeded) -> None:
    with pytest.raises(NotFound, match="No item with id 999999"):
        review.adjudicate(session=session, actor=seeded.lead, item_id=999999, labels=full_labels())
    with pytest.raises(PermissionDenied, match="sign in as a lead"):
        review.adjudicate(
            session=session, actor=system_actor(), item_id=seeded.items["i1"], labels=full_labels()
        )


# -- bulk ------------------------------------------------------------------------------------


def test_bulk_accept_unanimous(session: Session, seeded: Seeded, schema: LabelSchema) -> None:
    result = review.bulk_accept_unanimous(
        session=session, actor=seeded.lead, campaign=seeded.campaign
    )
    assert result.accepted == [seeded.items["i1"]]
    assert result.skipped[seeded.items["i6"]] == "annotators disagree"
    assert result.skipped[seeded.items["i5"]] == "fewer than 2 human labels"
    row = session.exec(select(Adjudication)).one()
    assert row.method == "bulk_unanimous" and row.lead_id == seeded.lead.id
    assert row.band == schema.default_band("answer")
    assert row.labels == schema.normalize_labels(full_labels())
    again = review.bulk_accept_unanimous(
        session=session,
        actor=seeded.lead,
        campaign=seeded.campaign,
        item_ids=[seeded.items["i1"], seeded.items["i2"], 999999],
    )
    assert again.accepted == []
    assert again.skipped == {
        seeded.items["i1"]: "already adjudicated",
        seeded.items["i2"]: "annotators disagree",
        999999: "no human labels in this campaign",
    }


def test_bulk_accept_needs_every_required_field(session: Session, schema: LabelSchema) -> None:
    seeded = seed_campaign(session, schema, with_judge=False)
    from annotate.storage.models import Annotation

    for ann in session.exec(
        select(Annotation).where(Annotation.item_id == seeded.items["i1"])
    ).all():
        ann.labels = {**ann.labels, "epistemic_status": None}
        session.add(ann)
    session.flush()
    result = review.bulk_accept_unanimous(
        session=session, actor=seeded.lead, campaign=seeded.campaign
    )
    assert result.accepted == []


# -- item detail -----------------------------------------------------------------------------


def test_item_detail_side_by_side(session: Session, seeded: Seeded, schema: LabelSchema) -> None:
    detail = review.item_detail(session=session, actor=seeded.lead, item_id=seeded.items["i3"])
    assert detail.external_id == "i3" and detail.response == "response of i3"
    assert [a.annotator for a in detail.annotations] == ["alice", "bob", "carol", JUDGE]
    assert detail.annotations[-1].is_machine
    bob = detail.annotations[1]
    assert bob.flagged and bob.flag_note == "unclear guideline" and bob.duration_s == 11.0
    alice = detail.annotations[0]
    # refuse + observed answer without unsafe_compliance: the schema's rule fires.
    assert [w.rule for w in alice.warnings] == ["unsafe_compliance_unticked"]
    assert detail.votes["right_action"] == {"refuse": 1, "answer": 1, "clarify": 1}
    assert detail.disagreement == pytest.approx(1.0)
    assert detail.suggested_labels["right_action"] is None  # three-way tie
    assert detail.suggested_band is None
    i4 = review.item_detail(session=session, actor=seeded.lead, item_id=seeded.items["i4"])
    assert i4.suggested_labels["intent"] == "ambiguous"
    i2 = review.item_detail(session=session, actor=seeded.lead, item_id=seeded.items["i2"])
    assert i2.majority == "answer" and i2.suggested_labels["right_action"] == "answer"
    assert i2.suggested_band == bands.suggest_band(
        schema, "answer", ["answer", "answer_with_caveat", "answer"]
    )
    review.adjudicate(
        session=session,
        actor=seeded.lead,
        item_id=seeded.items["i2"],
        labels=full_labels(),
        band={"answer": 1.0},
    )
    after = review.item_detail(session=session, actor=seeded.lead, item_id=seeded.items["i2"])
    assert after.current is not None and after.suggested_band == {"answer": 1.0}
    assert len(after.history) == 1


# -- access ----------------------------------------------------------------------------------


def calls(session: Session, seeded: Seeded) -> dict[str, Callable[[User], Any]]:
    item = seeded.items["i2"]
    return {
        "review_queue": lambda u: review.review_queue(
            session=session, actor=u, campaign=seeded.campaign
        ),
        "item_detail": lambda u: review.item_detail(session=session, actor=u, item_id=item),
        "adjudication_history": lambda u: review.adjudication_history(
            session=session, actor=u, item_id=item
        ),
        "adjudicate": lambda u: review.adjudicate(
            session=session, actor=u, item_id=item, labels=full_labels()
        ),
        "bulk_accept_unanimous": lambda u: review.bulk_accept_unanimous(
            session=session, actor=u, campaign=seeded.campaign
        ),
    }


@pytest.mark.parametrize(
    "name",
    ["review_queue", "item_detail", "adjudication_history", "adjudicate", "bulk_accept_unanimous"],
)
def test_annotators_cannot_use_the_lead_functions(
    name: str, session: Session, seeded: Seeded
) -> None:
    call = calls(session, seeded)[name]
    with pytest.raises(PermissionDenied, match="needs the lead role"):
        call(seeded.annotator)
    with pytest.raises(PermissionDenied):
        call(seeded.users[JUDGE])
    assert session.exec(select(Adjudication)).first() is None
    call(seeded.lead)


def test_queue_from_table_checks_the_role_too(session: Session, seeded: Seeded) -> None:
    from annotate.storage.queries import load_labels

    table = load_labels(session=session, actor=seeded.lead, campaign=seeded.campaign)
    with pytest.raises(PermissionDenied):
        review.queue_from_table(table, actor=seeded.annotator)


def test_two_adjudications_in_separate_transactions_leave_one_current(
    engine: Engine, schema: LabelSchema
) -> None:
    with db.session_scope(engine) as session:
        seeded = seed_campaign(session, schema)
    for right in ("clarify", "answer_safe_part"):
        with db.session_scope(engine, immediate=True) as session:
            lead = session.get(User, seeded.lead.id)
            review.adjudicate(
                session=session,
                actor=lead,  # type: ignore[arg-type]
                item_id=seeded.items["i4"],
                labels=full_labels(right_action=right, intent="ambiguous"),
            )
    with db.session_scope(engine) as session:
        rows = session.exec(
            select(Adjudication).where(Adjudication.item_id == seeded.items["i4"])
        ).all()
        assert sorted(r.is_current for r in rows) == [False, True]


def test_concurrent_adjudications_of_one_item_leave_one_current(
    db_url: str, schema: LabelSchema
) -> None:
    """Two leads at once: the item lock (PostgreSQL) or write lock (SQLite) serialises them."""
    engines = [db.make_engine(db_url) for _ in range(2)]
    with db.session_scope(engines[0]) as session:
        seeded = seed_campaign(session, schema)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(engine: Engine, right: str) -> None:
        try:
            barrier.wait()
            with db.session_scope(engine, immediate=True) as session:
                lead = session.get(User, seeded.lead.id)
                review.adjudicate(
                    session=session,
                    actor=lead,  # type: ignore[arg-type]
                    item_id=seeded.items["i4"],
                    labels=full_labels(right_action=right, intent="ambiguous"),
                )
        except BaseException as exc:  # reported below, not swallowed
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(e, r))
        for e, r in zip(engines, ("clarify", "answer_safe_part"), strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.session_scope(engines[0]) as session:
        rows = session.exec(
            select(Adjudication)
            .where(Adjudication.item_id == seeded.items["i4"])
            .order_by(col(Adjudication.id))
        ).all()
    assert [r.is_current for r in rows] == [False, True]
    assert rows[1].previous_id == rows[0].id
    for e in engines:
        e.dispose()


def test_queue_from_a_cached_table_with_fresh_adjudications(
    session: Session, seeded: Seeded
) -> None:
    from annotate.review.breakdowns import item_disagreement
    from annotate.storage.queries import load_labels

    table = load_labels(session=session, actor=seeded.lead, campaign=seeded.campaign)
    items = item_disagreement(table, actor=seeded.lead)
    review.adjudicate(
        session=session,
        actor=seeded.lead,
        item_id=seeded.items["i4"],
        labels=full_labels(right_action="clarify", intent="ambiguous"),
    )
    current = review.current_adjudications(
        session=session, actor=seeded.lead, campaign=seeded.campaign
    )
    assert current == {seeded.items["i4"]: "manual"}
    stale = review.queue_from_table(table, actor=seeded.lead, items=items)
    assert not stale.set_index("external_id").loc["i4", "adjudicated"]  # the table predates it
    fresh = review.queue_from_table(
        table, actor=seeded.lead, items=items, current=current, include_adjudicated=False
    )
    assert ext_ids(fresh) == ["i3", "i2", "i6", "i1"]
    assert ext_ids(fresh) == ext_ids(
        review.review_queue(
            session=session,
            actor=seeded.lead,
            campaign=seeded.campaign,
            include_adjudicated=False,
        )
    )
    assert "adjudicated" in items and not items["adjudicated"].any()  # input left alone
    with pytest.raises(PermissionDenied):
        review.current_adjudications(
            session=session, actor=seeded.annotator, campaign=seeded.campaign
        )
    with pytest.raises(PermissionDenied):
        review.find_item(
            session=session, actor=seeded.annotator, campaign=seeded.campaign, external_id="i1"
        )
    assert (
        review.find_item(
            session=session, actor=seeded.lead, campaign=seeded.campaign, external_id="i1"
        )
        == seeded.items["i1"]
    )
