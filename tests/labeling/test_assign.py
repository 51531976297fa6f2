"""Claims, leases, submit and skip, on SQLite and PostgreSQL (see conftest's `engine`)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from annotate import labeling, storage
from annotate.errors import Conflict, NotFound, PermissionDenied, ValidationProblem
from annotate.schema import LabelSchema
from annotate.storage import db, visibility
from annotate.storage.models import (
    Annotation,
    AnnotationHistory,
    Assignment,
    Campaign,
    Item,
    User,
    utcnow,
)
from tests.conftest import ADMIN, full_labels, make_campaign, make_item, make_user

T0 = datetime(2030, 1, 1, 9, 0, tzinfo=utcnow().tzinfo)


def setup_campaign(
    engine: Engine,
    schema: LabelSchema,
    *,
    items: int = 6,
    overlap: int = 2,
    users: tuple[str, ...] = ("alice", "bob", "carol"),
    seed: int = 11,
    **kw: Any,
) -> tuple[Campaign, dict[str, User]]:
    """A committed campaign with `items` items and annotators named `users`."""
    with db.session_scope(engine) as s:
        people = {name: make_user(s, name) for name in users}
        campaign = make_campaign(s, schema, overlap=overlap, seed=seed, **kw)
        storage.import_items(
            session=s,
            actor=ADMIN,
            campaign=campaign,
            records=[make_item(external_id=f"it-{i:03d}", prompt=f"p{i}") for i in range(items)],
        )
    return campaign, people


def claim(
    engine: Engine, user: User, campaign: Campaign, *, now: datetime = T0, lease: float = 30
) -> labeling.Claim | None:
    with db.session_scope(engine, immediate=True) as s:
        return labeling.claim_next(
            session=s, user=user, campaign=campaign, lease_minutes=lease, now=now
        )


def submit(
    engine: Engine, user: User, assignment_id: int, *, now: datetime = T0, **kw: Any
) -> Annotation:
    kw.setdefault("labels", full_labels())
    with db.session_scope(engine, immediate=True) as s:
        return labeling.submit(session=s, user=user, assignment_id=assignment_id, now=now, **kw)


def label_all(engine: Engine, user: User, campaign: Campaign, now: datetime = T0) -> list[str]:
    """Claim and submit until nothing is left; the external ids in the order they came."""
    seen = []
    while (c := claim(engine, user, campaign, now=now)) is not None:
        seen.append(c.item.external_id)
        submit(engine, user, c.assignment.id or 0, now=now)
    return seen


# -- order ------------------------------------------------------------------------------------


def test_fresh_items_come_in_the_annotators_seeded_order(
    engine: Engine, schema: LabelSchema
) -> None:
    campaign, people = setup_campaign(engine, schema, items=12, overlap=1)
    alice = people["alice"]
    order = label_all(engine, alice, campaign)
    with Session(engine) as s:
        ids = {it.external_id: it.id for it in s.exec(select(Item)).all()}
    expected = sorted(
        ids, key=lambda e: (labeling.order_key(11, alice.id or 0, ids[e] or 0), ids[e])
    )
    assert order == expected


def test_orders_differ_between_annotators_and_seeds() -> None:
    items = range(1, 200)
    by_user = [sorted(items, key=lambda i, u=u: labeling.order_key(5, u, i)) for u in (1, 2)]
    by_seed = [sorted(items, key=lambda i, s=s: labeling.order_key(s, 1, i)) for s in (5, 6)]
    assert by_user[0] != by_user[1]
    assert by_seed[0] != by_seed[1]
    assert by_user[0] != sorted(items)
    # Reproducible: the same seed and user give the same order.
    assert by_user[0] == sorted(items, key=lambda i: labeling.order_key(5, 1, i))


def test_started_items_are_finished_before_fresh_ones(engine: Engine, schema: LabelSchema) -> None:
    campaign, people = setup_campaign(engine, schema, items=8, overlap=3)
    first = claim(engine, people["alice"], campaign)
    assert first is not None
    # Bob and Carol are sent to Alice's item, not to a fresh one of their own order.
    for name in ("bob", "carol"):
        got = claim(engine, people[name], campaign)
        assert got is not None and got.item.id == first.item.id


def test_items_with_more_labels_come_first(engine: Engine, schema: LabelSchema) -> None:
    campaign, people = setup_campaign(
        engine, schema, items=5, overlap=3, users=("alice", "bob", "carol", "dan")
    )
    a = claim(engine, people["alice"], campaign)
    assert a is not None
    submit(engine, people["alice"], a.assignment.id or 0)
    b = claim(engine, people["bob"], campaign)  # joins Alice's item: now 2 of 3
    assert b is not None and b.item.id == a.item.id
    submit(engine, people["bob"], b.assignment.id or 0)
    c = claim(engine, people["carol"], campaign)  # Alice's item (2 slots) beats anything else
    assert c is not None and c.item.id == a.item.id


# -- the rules ---------------------------------------------------------------------------------


def test_nobody_gets_an_item_twice_and_no_item_exceeds_k(
    engine: Engine, schema: LabelSchema
) -> None:
    campaign, people = setup_campaign(engine, schema, items=5, overlap=2)
    done = {name: label_all(engine, user, campaign) for name, user in people.items()}
    for ids in done.values():
        assert len(ids) == len(set(ids))
    counts = Counter(i for ids in done.values() for i in ids)
    assert set(counts.values()) == {2} and len(counts) == 5
    assert claim(engine, people["alice"], campaign) is None


def test_reload_returns_the_same_item_and_extends_the_lease(
    engine: Engine, schema: LabelSchema
) -> None:
    campaign, people = setup_campaign(engine, schema)
    first = claim(engine, people["alice"], campaign)
    again = claim(engine, people["alice"], campaign, now=T0 + timedelta(minutes=20))
    assert first is not None and again is not None
    assert again.assignment.id == first.assignment.id and again.resumed
    assert again.assignment.expires_at == T0 + timedelta(minutes=50)
    with Session(engine) as s:
        live = labeling.current_claim(
            session=s, user=people["alice"], campaign=campaign, now=T0 + timedelta(minutes=49)
        )
        assert live is not None and live.assignment.id == first.assignment.id
        assert (
            labeling.current_claim(
                session=s, user=people["alice"], campaign=campaign, now=T0 + timedelta(hours=1)
            )
            is None
        )


def test_expired_lease_returns_the_item_to_the_pool(engine: Engine, schema: LabelSchema) -> None:
    campaign, people = setup_campaign(engine, schema, items=1, overlap=1)
    a = claim(engine, people["alice"], campaign)
    assert a is not None
    assert claim(engine, people["bob"], campaign, now=T0 + timedelta(minutes=5)) is None
    later = T0 + timedelta(minutes=31)
    b = claim(engine, people["bob"], campaign, now=later)
    assert b is not None and b.item.id == a.item.id
    # Alice comes back too late: Bob holds the only slot, so her labels are refused.
    with pytest.raises(Conflict, match="ran out"):
        submit(engine, people["alice"], a.assignment.id or 0, now=later)
    submit(engine, people["bob"], b.assignment.id or 0, now=later)
    with Session(engine) as s:
        assert len(s.exec(select(Annotation)).all()) == 1


def test_a_late_submit_is_kept_while_the_item_still_has_room(
    engine: Engine, schema: LabelSchema
) -> None:
    campaign, people = setup_campaign(engine, schema, items=1, overlap=2)
    a = claim(engine, people["alice"], campaign)
    assert a is not None
    ann = submit(engine, people["alice"], a.assignment.id or 0, now=T0 + timedelta(hours=2))
    assert ann.item_id == a.item.id


def test_own_lapsed_lease_comes_back_to_its_annotator(engine: Engine, schema: LabelSchema) -> None:
    campaign, people = setup_campaign(engine, schema, items=3, overlap=2)
    a = claim(engine, people["alice"], campaign)
    again = claim(engine, people["alice"], campaign, now=T0 + timedelta(hours=1))
    assert a is not None and again is not None
    assert again.item.id == a.item.id and again.assignment.id == a.assignment.id
    assert not again.resumed


def test_machine_labels_take_no_slot(engine: Engine, schema: LabelSchema) -> None:
    campaign, people = setup_campaign(engine, schema, items=1, overlap=1)
    with db.session_scope(engine) as s:
        judge = storage.add_user(session=s, actor=ADMIN, name="judge", is_machine=True)
        item = s.exec(select(Item)).one()
        storage.save_annotation(
            session=s, user=judge, item=item, labels=full_labels(), origin="import"
        )
    got = claim(engine, people["alice"], campaign)
    assert got is not None


def test_imported_human_labels_take_a_slot(engine: Engine, schema: LabelSchema) -> None:
    campaign, people = setup_campaign(engine, schema, items=1, overlap=1)
    with db.session_scope(engine) as s:
        item = s.exec(select(Item)).one()
        storage.save_annotation(
            session=s, user=people["bob"], item=item, labels=full_labels(), origin="import"
        )
    assert claim(engine, people["alice"], campaign) is None


def test_restricted_campaigns_admit_members_only(engine: Engine, schema: LabelSchema) -> None:
    with db.session_scope(engine) as s:
        alice, bob = make_user(s, "alice"), make_user(s, "bob")
        campaign = make_campaign(s, schema, members=["alice"])
        storage.import_items(session=s, actor=ADMIN, campaign=campaign, records=[make_item()])
    assert claim(engine, alice, campaign) is not None
    with pytest.raises(PermissionDenied, match="not a member"):
        claim(engine, bob, campaign)


def test_claims_need_a_write_transaction_on_sqlite(engine: Engine, schema: LabelSchema) -> None:
    campaign, people = setup_campaign(engine, schema)
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL locks rows instead")
    with db.session_scope(engine) as s, pytest.raises(RuntimeError, match="immediate=True"):
        labeling.claim_next(session=s, user=people["alice"], campaign=campaign)


# -- submit ------------------------------------------------------------------------------------


def test_submit_saves_labels_history_and_time(engine: Engine, schema: LabelSchema) -> None:
    campaign, people = setup_campaign(engine, schema)
    c = claim(engine, people["alice"], campaign)
    assert c is not None
    submit(engine, people["alice"], c.assignment.id or 0, duration_s=12.345)
    with Session(engine) as s:
        ann = s.exec(select(Annotation)).one()
        assert ann.labels == schema.normalize_labels(full_labels())
        assert ann.duration_s == 12.3 and ann.overridden_rules == []
        history = s.exec(select(AnnotationHistory)).all()
        assert [h.action for h in history] == ["create"]
        assignment = s.get(Assignment, c.assignment.id)
        assert assignment is not None and assignment.status == "done"
        assert assignment.finished_at is not None


@pytest.mark.parametrize(
    ("labels", "kw", "message"),
    [
        (full_labels(intent=None), {}, "^Still to label: Intent of the request\\.$"),
        (
            full_labels(intent=None, right_action=None, confidence=None),
            {},
            "^Still to label: Intent of the request, Right action, Your confidence\\.$",
        ),
        (full_labels(intent="evil"), {}, "`evil` is not one of"),
        (
            full_labels(right_action="answer", observed_action="refuse"),
            {},
            "over_refusal is not ticked",
        ),
        (
            full_labels(right_action="answer", observed_action="refuse"),
            {"overridden_rules": ["over_refusal_unticked"]},
            "needs a rationale",
        ),
        (full_labels(intent=None), {"flagged": True}, "Say why you flag"),
    ],
)
def test_submit_rejects_bad_labels(
    engine: Engine, schema: LabelSchema, labels: dict[str, Any], kw: dict[str, Any], message: str
) -> None:
    campaign, people = setup_campaign(engine, schema)
    c = claim(engine, people["alice"], campaign)
    assert c is not None
    with pytest.raises(ValidationProblem, match=message):
        submit(engine, people["alice"], c.assignment.id or 0, labels=labels, **kw)
    with Session(engine) as s:
        assert s.exec(select(Annotation)).all() == []


def test_an_override_with_a_rationale_records_the_rule(engine: Engine, schema: LabelSchema) -> None:
    campaign, people = setup_campaign(engine, schema)
    c = claim(engine, people["alice"], campaign)
    assert c is not None
    labels = full_labels(
        right_action="answer", observed_action="refuse", rationale="It refused a benign ask"
    )
    ann = submit(
        engine,
        people["alice"],
        c.assignment.id or 0,
        labels=labels,
        overridden_rules=["over_refusal_unticked", "not_broken_anyway"],
    )
    assert ann.overridden_rules == ["over_refusal_unticked"]


def test_flag_for_lead_allows_missing_fields_with_a_note(
    engine: Engine, schema: LabelSchema
) -> None:
    campaign, people = setup_campaign(engine, schema)
    c = claim(engine, people["alice"], campaign)
    assert c is not None
    ann = submit(
        engine,
        people["alice"],
        c.assignment.id or 0,
        labels={"intent": "ambiguous"},
        flagged=True,
        flag_note="  The response is cut off  ",
    )
    assert ann.flagged and ann.flag_note == "The response is cut off"
    assert ann.labels["right_action"] is None


def test_submit_twice_or_someone_elses_assignment_is_refused(
    engine: Engine, schema: LabelSchema
) -> None:
    campaign, people = setup_campaign(engine, schema)
    c = claim(engine, people["alice"], campaign)
    assert c is not None
    with pytest.raises(PermissionDenied, match="another annotator"):
        submit(engine, people["bob"], c.assignment.id or 0)
    submit(engine, people["alice"], c.assignment.id or 0)
    with pytest.raises(Conflict, match="already submitted"):
        submit(engine, people["alice"], c.assignment.id or 0)
    with pytest.raises(NotFound):
        submit(engine, people["alice"], 99999)


# -- skip ----------------------------------------------------------------------------------------


def test_skip_needs_a_reason_and_frees_the_item_for_others(
    engine: Engine, schema: LabelSchema
) -> None:
    campaign, people = setup_campaign(engine, schema, items=1, overlap=1)
    c = claim(engine, people["alice"], campaign)
    assert c is not None
    with (
        db.session_scope(engine, immediate=True) as s,
        pytest.raises(ValidationProblem, match="reason"),
    ):
        labeling.skip(
            session=s, user=people["alice"], assignment_id=c.assignment.id or 0, reason=" "
        )
    with db.session_scope(engine, immediate=True) as s:
        skipped = labeling.skip(
            session=s,
            user=people["alice"],
            assignment_id=c.assignment.id or 0,
            reason="Needs a chemist",
        )
        assert skipped.status == "skipped" and skipped.reason == "Needs a chemist"
    assert claim(engine, people["alice"], campaign) is None
    other = claim(engine, people["bob"], campaign)
    assert other is not None and other.item.id == c.item.id
    with pytest.raises(Conflict, match="skipped"):
        submit(engine, people["alice"], c.assignment.id or 0)


# -- progress and housekeeping ------------------------------------------------------------------


def test_progress_counts_only_the_annotators_own_work(engine: Engine, schema: LabelSchema) -> None:
    campaign, people = setup_campaign(engine, schema, items=4, overlap=2)
    for i in range(2):
        c = claim(engine, people["alice"], campaign)
        assert c is not None
        submit(engine, people["alice"], c.assignment.id or 0, duration_s=10.0 + i * 10)
    c = claim(engine, people["alice"], campaign)
    assert c is not None
    label_all(engine, people["bob"], campaign)
    with Session(engine) as s:
        p = labeling.progress(session=s, user=people["alice"], campaign=campaign, now=T0)
    assert (p.done, p.skipped, p.in_progress, p.campaign_items) == (2, 0, 1, 4)
    assert p.assigned == 3 and p.median_seconds == 15.0


def test_expire_leases_marks_lapsed_leases(engine: Engine, schema: LabelSchema) -> None:
    campaign, people = setup_campaign(engine, schema)
    claim(engine, people["alice"], campaign)
    claim(engine, people["bob"], campaign, now=T0 + timedelta(minutes=20))
    with db.session_scope(engine) as s:
        lead = make_user(s, "lena", role="lead")
        n = labeling.expire_leases(
            session=s, actor=lead, campaign=campaign, now=T0 + timedelta(minutes=40)
        )
    assert n == 1
    with Session(engine) as s:
        statuses = sorted(a.status for a in s.exec(select(Assignment)).all())
    assert statuses == ["active", "expired"]


# -- concurrency -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("writer", "annotators"),
    [
        # As the app writes: labeling.write_session (SQLite writers of a process take turns).
        ("write_session", 16),
        # Bare BEGIN IMMEDIATE / row locks: correctness must not hang on the in-process lock.
        ("bare", 4),
    ],
)
def test_concurrent_annotators_never_overfill_or_duplicate(
    db_url: str, schema: LabelSchema, writer: str, annotators: int
) -> None:
    """2 threads per annotator (two tabs; 32 threads for 16) claim and label at once."""
    n_items, k = 40, 3
    names = tuple(f"ann{i:02d}" for i in range(annotators))
    # One connection per thread, as a server sized for 32 people would be (Settings.pool_size);
    # with fewer, threads queue for connections instead of for the database.
    engine = db.make_engine(db_url, pool_size=32)
    try:
        _run_concurrently(engine, schema, writer, annotators, n_items, k, names)
    finally:
        engine.dispose()


def _run_concurrently(
    engine: Engine,
    schema: LabelSchema,
    writer: str,
    annotators: int,
    n_items: int,
    k: int,
    names: tuple[str, ...],
) -> None:

    def transaction() -> Any:
        if writer == "write_session":
            return labeling.write_session(engine)
        return db.session_scope(engine, immediate=True)

    ghosts = tuple(f"ghost{i}" for i in range(6))
    campaign, people = setup_campaign(
        engine, schema, items=n_items, overlap=k, users=names + ghosts
    )
    # Six annotators took an item an hour ago and never came back: their leases have lapsed.
    ghost_leases = []
    for name in ghosts:
        c = claim(engine, people[name], campaign, now=utcnow() - timedelta(hours=1))
        assert c is not None
        ghost_leases.append(c.assignment.id)
    submitted: list[tuple[int, int, str]] = []
    abandoned: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(2 * annotators)

    deadline = time.monotonic() + 90

    def live_leases() -> int:
        with Session(engine) as s:
            return int(
                s.exec(
                    select(func.count())
                    .select_from(Assignment)
                    .where(
                        Assignment.campaign_id == campaign.id,
                        Assignment.status == "active",
                        col(Assignment.expires_at) > utcnow(),
                    )
                ).one()
            )

    def work(user: User, tab: int) -> None:
        start.wait()
        rounds = 0
        while True:
            rounds += 1
            # Every annotator's first tab walks away from its second item: a lease of 50 ms
            # that lapses mid-run and must go back to the pool (on a starved machine a tab may
            # find nothing left by then; the ghosts' leases below lapse in every run).
            walk_away = tab == 0 and rounds == 2
            try:
                with transaction() as s:
                    c = labeling.claim_next(
                        session=s,
                        user=user,
                        campaign=campaign,
                        lease_minutes=0.05 / 60 if walk_away else 30,
                    )
                if c is None:
                    # Nothing open to this annotator now, but an item may still be under a
                    # lease about to lapse (a tab that walked away) or about to be labeled:
                    # look again until no live lease is left.
                    if live_leases() and time.monotonic() < deadline:
                        threading.Event().wait(0.05)
                        continue
                    return
                if walk_away:
                    with lock:
                        abandoned.append(c.assignment.id or 0)
                    threading.Event().wait(0.1)
                    continue
                note = f"{user.name} on {c.item.external_id}"
                with transaction() as s:
                    labeling.submit(
                        session=s,
                        user=user,
                        assignment_id=c.assignment.id or 0,
                        labels=full_labels(rationale=note),
                        duration_s=1.0,
                    )
                with lock:
                    submitted.append((c.item.id or 0, user.id or 0, note))
            except Conflict:
                # The other tab submitted this very lease first: expected, nothing saved.
                continue
            except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
                with lock:
                    errors.append(exc)
                return

    threads = [
        threading.Thread(target=work, args=(people[name], tab)) for name in names for tab in (0, 1)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []

    with Session(engine) as s:
        annotations = s.exec(select(Annotation)).all()
        per_item = Counter(a.item_id for a in annotations)
        assert max(per_item.values()) <= k
        if annotators >= k:
            assert len(per_item) == n_items and set(per_item.values()) == {k}
        pairs = [(a.item_id, a.user_id) for a in annotations]
        assert len(pairs) == len(set(pairs))
        stored = {(a.item_id, a.user_id): a.labels["rationale"] for a in annotations}
        assert len(submitted) == len(annotations)
        for item_id, user_id, note in submitted:
            assert stored[(item_id, user_id)] == note
        # Every abandoned lease lapsed, and its item was completed all the same.
        for assignment_id in abandoned + ghost_leases:
            a = s.get(Assignment, assignment_id)
            assert a is not None
            assert per_item[a.item_id] == k
        done = s.exec(select(Assignment).where(col(Assignment.status) == "done")).all()
        assert len(done) == len(annotations)
        for assignment_id in ghost_leases:
            ghost = s.get(Assignment, assignment_id)
            assert ghost is not None and ghost.status == "active" and ghost.finished_at is None


def test_write_session_serializes_sqlite_writers_and_commits(
    engine: Engine, schema: LabelSchema
) -> None:
    campaign, people = setup_campaign(engine, schema, items=3)
    with labeling.write_session(engine) as s:
        got = labeling.claim_next(session=s, user=people["alice"], campaign=campaign)
        assert got is not None
    with Session(engine) as s:
        assert s.get(Assignment, got.assignment.id) is not None
    with pytest.raises(ValidationProblem), labeling.write_session(engine) as s:
        labeling.skip(
            session=s, user=people["alice"], assignment_id=got.assignment.id or 0, reason=""
        )
    # The failed transaction was rolled back and the lock released: the next one proceeds.
    with labeling.write_session(engine) as s:
        labeling.skip(
            session=s, user=people["alice"], assignment_id=got.assignment.id or 0, reason="n/a"
        )


# -- an annotator's own work, and the admin helpers the pages use --------------------------------


def test_own_annotations_page_and_search(engine: Engine, schema: LabelSchema) -> None:
    campaign, people = setup_campaign(engine, schema, items=5, overlap=2)
    label_all(engine, people["alice"], campaign)
    claim(engine, people["bob"], campaign)
    with Session(engine) as s:
        rows, total = storage.list_own_annotations(
            session=s, user=people["alice"], campaign=campaign, offset=0, limit=2
        )
        assert total == 5 and len(rows) == 2
        assert all(a.user_id == people["alice"].id for a, _ in rows)
        # Item ids are hidden from annotators (storage.visibility): no search by them, but by
        # the handle they were shown, exactly.
        rows, total = storage.list_own_annotations(
            session=s, user=people["alice"], campaign=campaign, search="IT-003"
        )
        assert total == 0
        item = s.exec(select(Item).where(Item.external_id == "it-003")).one()
        handle = visibility.item_handle(campaign=campaign, item_id=item.id or 0)
        rows, total = storage.list_own_annotations(
            session=s, user=people["alice"], campaign=campaign, search=handle.upper()
        )
        assert total == 1 and rows[0][1].external_id == "it-003"
        rows, total = storage.list_own_annotations(
            session=s, user=people["alice"], campaign=campaign, search=handle[:-1]
        )
        assert total == 0
        # Leads and admins, who see ids, find items by them.
        lead = s.merge(people["alice"])
        lead.role = "lead"
        s.add(lead)
        s.flush()
        rows, total = storage.list_own_annotations(
            session=s, user=lead, campaign=campaign, search="IT-003"
        )
        assert total == 1 and rows[0][1].external_id == "it-003"
        s.rollback()
        assert (
            storage.list_own_annotations(session=s, user=people["bob"], campaign=campaign)[1] == 0
        )


def test_edit_keeps_every_version(engine: Engine, schema: LabelSchema) -> None:
    campaign, people = setup_campaign(engine, schema, items=1)
    c = claim(engine, people["alice"], campaign)
    assert c is not None
    ann = submit(engine, people["alice"], c.assignment.id or 0)
    with db.session_scope(engine) as s:
        labeling.edit(
            session=s,
            user=people["alice"],
            annotation_id=ann.id or 0,
            labels=full_labels(right_action="answer_with_caveat"),
        )
    with pytest.raises(ValidationProblem, match="over_refusal"), db.session_scope(engine) as s:
        labeling.edit(
            session=s,
            user=people["alice"],
            annotation_id=ann.id or 0,
            labels=full_labels(observed_action="refuse"),
        )
    with Session(engine) as s:
        history = storage.own_history(session=s, user=people["alice"], annotation_id=ann.id or 0)
    assert [h.labels["right_action"] for h in history] == ["answer", "answer_with_caveat"]
    assert [h.action for h in history] == ["create", "edit"]


def test_admin_helpers(engine: Engine, schema: LabelSchema) -> None:
    with db.session_scope(engine) as s:
        adam = make_user(s, "adam", role="admin")
        make_user(s, "bob")
        campaign = make_campaign(s, schema)
        assert storage.set_role(session=s, actor=adam, name="bob", role="lead").role == "lead"
        assert not storage.set_active(session=s, actor=adam, name="bob", active=False).active
        with pytest.raises(Conflict, match="deactivate yourself"):
            storage.set_active(session=s, actor=adam, name="adam", active=False)
        with pytest.raises(Conflict, match="own role"):
            storage.set_role(session=s, actor=adam, name="adam", role="lead")
        with pytest.raises(ValidationProblem, match="at least 1"):
            storage.update_campaign(session=s, actor=adam, campaign=campaign, overlap=0)
        storage.update_campaign(session=s, actor=adam, campaign=campaign, overlap=3, guidelines="g")
        storage.set_members(session=s, actor=adam, campaign=campaign, members=["bob"])
        assert storage.campaign_members(session=s, actor=adam, campaign=campaign) == ["bob"]
        assert (campaign.overlap, campaign.guidelines, campaign.restricted) == (3, "g", True)


def test_release_gives_the_item_back_without_closing_it(
    engine: Engine, schema: LabelSchema
) -> None:
    campaign, people = setup_campaign(engine, schema, items=1, overlap=1)
    c = claim(engine, people["alice"], campaign)
    assert c is not None
    with labeling.write_session(engine) as s:
        labeling.release(session=s, user=people["alice"], assignment_id=c.assignment.id or 0)
    other = claim(engine, people["bob"], campaign)
    assert other is not None and other.item.id == c.item.id
