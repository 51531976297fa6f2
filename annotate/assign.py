"""Which item an annotator labels next: claims, leases, submit and skip.

A claim is a lease on one item for one annotator (an `Assignment` row, status `active` until
`expires_at`). The rules, enforced here and nowhere else:

- nobody gets an item twice (an item done, skipped or labeled by the annotator is never offered
  again; a lease of theirs that lapsed may be picked up again if the item is still open);
- an item is open while its *taken slots* are fewer than the campaign's overlap k, where a slot
  is a human annotation or an active, unexpired lease (automatic judges never take a slot);
- a lease that lapses frees its slot, so abandoned items return to the pool;
- an annotator with an active lease gets that item back (a reload is harmless);
- items already started by others come first (most-advanced first), so items accrue their k
  labels early; otherwise each annotator walks the items in a pseudo-random order of their own,
  reproducible from the campaign seed (`order_key`, computed in SQL on both backends).

Atomicity: every function that writes must run in a write transaction. On SQLite that is
`db.session_scope(engine, immediate=True)` (BEGIN IMMEDIATE: the whole claim runs under the
write lock, so what it reads cannot change before it writes; the lease is one
`INSERT ... ON CONFLICT (item_id, user_id) DO UPDATE ... RETURNING` statement, the update branch
re-opening the annotator's own lapsed lease). On PostgreSQL the annotator's user row is
locked first (one claim or submit per annotator at a time), candidate items are locked with
`SELECT ... FOR UPDATE SKIP LOCKED`, and the slot count is re-read after the lock is held.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, cast, exists, func, or_, true, union, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from annotate import db, store
from annotate.auth import require_role
from annotate.errors import Conflict, NotFound, PermissionDenied, ValidationProblem
from annotate.models import Annotation, Assignment, Campaign, Item, User, utcnow
from annotate.schema import LabelSchema, LabelValue, RuleWarning

# Arithmetic modulo the Mersenne prime 2^31 - 1 keeps every product below 2^62, so the order
# key never overflows SQLite's or PostgreSQL's 64-bit integers.
_P = 2_147_483_647
MAX_REASON = 2000


# -- write transactions -----------------------------------------------------------------------

_WRITERS: dict[str, threading.RLock] = {}
_WRITERS_GUARD = threading.Lock()


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A write transaction for claims, submits and skips, committed on success.

    On SQLite the transaction starts with BEGIN IMMEDIATE, and the writers of this process take
    turns on a lock first: SQLite's own busy handler makes waiting writers sleep and retry, so
    under load some starve (and hold pool connections) while newcomers win; a lock queues them
    instead. Other processes still wait on SQLite's lock. On PostgreSQL: a plain transaction
    (row locks do the work, see the module docstring).
    """
    if not db.is_sqlite(engine):
        with db.session_scope(engine) as session:
            yield session
        return
    key = engine.url.render_as_string(hide_password=False)
    with _WRITERS_GUARD:
        lock = _WRITERS.setdefault(key, threading.RLock())
    with lock, db.session_scope(engine, immediate=True) as session:
        yield session


# -- the per-annotator order ------------------------------------------------------------------


def order_constants(seed: int, user_id: int) -> tuple[int, int, int, int]:
    """The four constants of `user_id`'s item order in a campaign seeded with `seed`."""
    digest = hashlib.blake2b(f"{seed}:{user_id}".encode(), digest_size=16).digest()
    parts = [int.from_bytes(digest[i : i + 4], "big") % _P for i in range(0, 16, 4)]
    # A multiplier of 0 would collapse every item onto one key.
    return (parts[0] or 1, parts[1], parts[2], parts[3] or 1)


def order_key(seed: int, user_id: int, item_id: int) -> int:
    """Where `item_id` sits in `user_id`'s order (smaller comes first); mirrors `_order_sql`."""
    a, b, c, d = order_constants(seed, user_id)
    x = (item_id * a + b) % _P
    return (((x * x + c) % _P) * d + x) % _P


def _order_sql(item_id: Any, seed: int, user_id: int, *, bigint: bool) -> ColumnElement[int]:
    """`order_key` as a SQL expression over an item id column (portable integer arithmetic).

    PostgreSQL needs the id widened to BIGINT before multiplying; SQLite's integers are
    64-bit already and the cast would only cost time.
    """
    a, b, c, d = order_constants(seed, user_id)
    x = ((cast(item_id, BigInteger) if bigint else item_id) * a + b) % _P
    return (((x * x + c) % _P) * d + x) % _P


# -- slots ------------------------------------------------------------------------------------


def _machine_ids(session: Session) -> list[int]:
    """Ids of the automatic judges (few, usually none): their labels never take a slot."""
    return [int(i) for i in session.exec(select(User.id).where(col(User.is_machine))).all() if i]


def _not_machine(machines: Sequence[int]) -> ColumnElement[bool]:
    # A NOT IN over a handful of ids lets SQLite answer from the (campaign_id, item_id) index
    # instead of joining every annotation to its user.
    return col(Annotation.user_id).not_in(machines) if machines else true()


def _human_annotations(campaign_id: int, machines: Sequence[int]) -> Any:
    return select(col(Annotation.item_id).label("item_id")).where(
        Annotation.campaign_id == campaign_id, _not_machine(machines)
    )


def _live_leases(campaign_id: int, now: datetime) -> Any:
    return select(col(Assignment.item_id).label("item_id")).where(
        Assignment.campaign_id == campaign_id,
        Assignment.status == "active",
        col(Assignment.expires_at) > now,
    )


def taken_slots(
    *, session: Session, item_id: int, now: datetime | None = None, exclude_user_id: int = 0
) -> int:
    """Human annotations plus live leases on `item_id` (leaving out `exclude_user_id`'s own)."""
    now = now or utcnow()
    labeled = session.exec(
        select(func.count())
        .select_from(Annotation)
        .where(
            Annotation.item_id == item_id,
            _not_machine(_machine_ids(session)),
            Annotation.user_id != exclude_user_id,
        )
    ).one()
    leased = session.exec(
        select(func.count())
        .select_from(Assignment)
        .where(
            Assignment.item_id == item_id,
            Assignment.status == "active",
            col(Assignment.expires_at) > now,
            Assignment.user_id != exclude_user_id,
            # A lease whose holder already labeled the item is not a second slot.
            ~exists().where(
                col(Annotation.item_id) == col(Assignment.item_id),
                col(Annotation.user_id) == col(Assignment.user_id),
            ),
        )
    ).one()
    return int(labeled) + int(leased)


def _mine(campaign_id: int, user_id: int) -> Any:
    """Items `user_id` must never be offered: labeled, done or skipped by them."""
    return union(
        select(col(Annotation.item_id)).where(
            Annotation.campaign_id == campaign_id, Annotation.user_id == user_id
        ),
        select(col(Assignment.item_id)).where(
            Assignment.campaign_id == campaign_id,
            Assignment.user_id == user_id,
            col(Assignment.status).in_(("done", "skipped")),
        ),
    )


# -- claims -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """An item leased to an annotator: what the labeling page shows."""

    assignment: Assignment
    item: Item
    resumed: bool = False


def _check_write_transaction(session: Session) -> None:
    bind = session.connection()
    if bind.dialect.name == "sqlite" and not bind.get_execution_options().get("sqlite_immediate"):
        raise RuntimeError(
            "assignment writes need a write transaction: open the session with "
            "db.session_scope(engine, immediate=True)"
        )


def _lock_user(session: Session, user: User) -> None:
    if session.connection().dialect.name == "postgresql":
        # One claim or submit per annotator at a time, so two tabs cannot take two items.
        session.exec(select(User.id).where(User.id == user.id).with_for_update())


def _check_labeler(session: Session, user: User, campaign: Campaign) -> User:
    require_role(user, "annotator", "label items")
    if not store.can_label(session=session, user=user, campaign=campaign):
        raise PermissionDenied(f"`{user.name}` is not a member of campaign `{campaign.name}`")
    return user


def current_claim(
    *, session: Session, user: User, campaign: Campaign, now: datetime | None = None
) -> Claim | None:
    """`user`'s live lease in `campaign`, if any; reads only (safe on every page rerun).

    Raises PermissionDenied for anyone who may not label (the role check costs no query;
    membership was checked when the lease was made by `claim_next`, and again on submit).
    """
    require_role(user, "annotator", "label items")
    now = now or utcnow()
    row = session.exec(
        select(Assignment, Item)
        .join(Item, col(Item.id) == Assignment.item_id)
        .where(
            Assignment.campaign_id == campaign.id,
            Assignment.user_id == user.id,
            Assignment.status == "active",
            col(Assignment.expires_at) > now,
        )
        .order_by(col(Assignment.claimed_at).desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return Claim(assignment=row[0], item=row[1], resumed=True)


def claim_next(
    *,
    session: Session,
    user: User,
    campaign: Campaign,
    lease_minutes: float = 30.0,
    now: datetime | None = None,
) -> Claim | None:
    """Lease the next item of `campaign` to `user`, or return their live lease; None when done.

    Needs a write transaction (see the module docstring). Raises PermissionDenied when `user`
    may not label in `campaign`. A resumed lease is extended to `lease_minutes` from now.
    """
    _check_labeler(session, user, campaign)
    _check_write_transaction(session)
    _lock_user(session, user)
    assert user.id is not None and campaign.id is not None
    now = now or utcnow()
    expires = now + timedelta(minutes=lease_minutes)

    live = current_claim(session=session, user=user, campaign=campaign, now=now)
    if live is not None:
        live.assignment.expires_at = expires
        session.add(live.assignment)
        session.flush()
        return live

    # The annotator's own lapsed leases are marked; their items may come back to them below.
    session.execute(
        update(Assignment)
        .where(
            col(Assignment.campaign_id) == campaign.id,
            col(Assignment.user_id) == user.id,
            col(Assignment.status) == "active",
            col(Assignment.expires_at) <= now,
        )
        .values(status="expired")
    )

    is_pg = session.connection().dialect.name == "postgresql"
    tried: set[int] = set()
    while True:
        item_id = _next_candidate(session, user, campaign, now, tried, lock=is_pg)
        if item_id is None:
            return None
        tried.add(item_id)
        if is_pg and taken_slots(session=session, item_id=item_id, now=now) >= campaign.overlap:
            # Filled by a transaction that committed between our snapshot and our lock.
            continue
        assignment_id = _upsert_lease(session, campaign.id, item_id, user.id, now, expires)
        if assignment_id is None:
            continue
        assignment = session.get(Assignment, assignment_id, populate_existing=True)
        item = session.get(Item, item_id)
        assert assignment is not None and item is not None
        return Claim(assignment=assignment, item=item)


_LOCK_BATCH = 16


def _next_candidate(
    session: Session,
    user: User,
    campaign: Campaign,
    now: datetime,
    tried: set[int],
    *,
    lock: bool,
) -> int | None:
    """The best open item for `user`: started items first (most slots taken), then fresh.

    With `lock` (set on PostgreSQL, and only there) the returned item's row is locked; items
    locked by concurrent claims are skipped, not waited for.
    """
    assert user.id is not None and campaign.id is not None
    machines = _machine_ids(session)
    slot_rows = (
        _human_annotations(campaign.id, machines)
        .union_all(_live_leases(campaign.id, now))
        .subquery()
    )
    started = (
        select(slot_rows.c.item_id, func.count().label("n"))
        .group_by(slot_rows.c.item_id)
        .having(func.count() < campaign.overlap)
        .subquery()
    )
    mine = _mine(campaign.id, user.id).subquery()
    while True:
        query = select(started.c.item_id).where(started.c.item_id.not_in(select(mine.c.item_id)))
        if tried:
            query = query.where(started.c.item_id.not_in(sorted(tried)))
        query = query.order_by(
            started.c.n.desc(),
            _order_sql(started.c.item_id, campaign.seed, user.id, bigint=lock),
            started.c.item_id,
        )
        ids = [int(r[0]) for r in session.execute(query.limit(_LOCK_BATCH if lock else 1)).all()]
        if not ids:
            return _next_fresh(session, user, campaign, now, tried, machines, lock=lock)
        picked = _lock_first(session, ids) if lock else ids[0]
        if picked is not None:
            return picked
        tried.update(ids)  # all held by concurrent claims: look further down the ranking


def _lock_first(session: Session, ids: Sequence[int]) -> int | None:
    """PostgreSQL: lock and return the first of `ids` (in order) that nobody else holds."""
    for item_id in ids:
        got = session.execute(
            select(col(Item.id)).where(col(Item.id) == item_id).with_for_update(skip_locked=True)
        ).first()
        if got is not None:
            return int(got[0])
    return None


def _next_fresh(
    session: Session,
    user: User,
    campaign: Campaign,
    now: datetime,
    tried: set[int],
    machines: Sequence[int],
    *,
    lock: bool,
) -> int | None:
    """The first item in `user`'s order that has no slot taken at all."""
    assert user.id is not None and campaign.id is not None
    pg = session.connection().dialect.name == "postgresql"
    order = _order_sql(Item.id, campaign.seed, user.id, bigint=pg)
    total: int | None = None  # counted only once the first window comes up empty
    # Rank a window of the order first and test slots only inside it: the per-item tests are
    # what costs, and early in a campaign the first ranked items are all fresh. The window
    # grows until it covers the campaign.
    window = 256
    while True:
        ranked = (
            select(col(Item.id).label("id"), order.label("k"))
            .where(Item.campaign_id == campaign.id)
            .order_by(order, col(Item.id))
            .limit(window)
            .subquery()
        )
        query = select(ranked.c.id).where(~_has_slot(ranked.c.id, campaign, user, now, machines))
        if tried:
            query = query.where(ranked.c.id.not_in(sorted(tried)))
        query = query.order_by(ranked.c.k, ranked.c.id).limit(_LOCK_BATCH if lock else 1)
        ids = [int(r[0]) for r in session.execute(query).all()]
        if ids:
            picked = _lock_first(session, ids) if lock else ids[0]
            if picked is not None:
                return picked
            tried.update(ids)
            continue
        if total is None:
            total = session.exec(
                select(func.count()).select_from(Item).where(Item.campaign_id == campaign.id)
            ).one()
        if window >= total:
            return None
        window *= 4


def _has_slot(
    item_id: Any, campaign: Campaign, user: User, now: datetime, machines: Sequence[int]
) -> ColumnElement[bool]:
    """Whether the item `item_id` has a slot taken, or is closed to `user` (done or skipped)."""
    return or_(
        exists().where(
            col(Assignment.item_id) == item_id,
            col(Assignment.status) == "active",
            col(Assignment.expires_at) > now,
        ),
        exists().where(
            col(Annotation.campaign_id) == campaign.id,
            col(Annotation.item_id) == item_id,
            _not_machine(machines),
        ),
        exists().where(
            col(Assignment.item_id) == item_id,
            col(Assignment.user_id) == user.id,
            col(Assignment.status).in_(("done", "skipped")),
        ),
    )


def _upsert_lease(
    session: Session, campaign_id: int, item_id: int, user_id: int, now: datetime, expires: datetime
) -> int | None:
    """Write the lease; an item the annotator finished or skipped is never re-leased."""
    values = {
        "campaign_id": campaign_id,
        "item_id": item_id,
        "user_id": user_id,
        "status": "active",
        "claimed_at": now,
        "expires_at": expires,
    }
    dialect = session.connection().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(Assignment).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[Assignment.item_id, Assignment.user_id],
        set_={
            "status": "active",
            "claimed_at": now,
            "expires_at": expires,
            "reason": None,
            "finished_at": None,
        },
        where=col(Assignment.status).in_(("active", "expired")),
    ).returning(Assignment.id)
    row = session.execute(stmt).first()
    return int(row[0]) if row is not None else None


# -- labels -----------------------------------------------------------------------------------


def rationale_field(schema: LabelSchema) -> str | None:
    """The text field that holds an annotator's rationale: `rationale`, else the first text one."""
    texts = [f.name for f in schema.fields if f.kind == "text"]
    return "rationale" if "rationale" in texts else (texts[0] if texts else None)


def review_labels(
    schema: LabelSchema, labels: Mapping[str, Any], *, partial: bool = False
) -> tuple[dict[str, LabelValue], list[RuleWarning]]:
    """Normalize `labels` and list the consistency rules they break (pure; nothing is saved).

    Raises ValidationProblem naming the field when a value is unknown or a required field is
    missing (unless `partial`).
    """
    normalized = schema.normalize_labels(labels, partial=partial)
    return normalized, schema.check_consistency(normalized)


def check_overrides(
    schema: LabelSchema,
    labels: Mapping[str, Any],
    warnings: Sequence[RuleWarning],
    overridden_rules: Sequence[str],
) -> list[str]:
    """The rule ids to record as overridden; ValidationProblem unless each is confirmed.

    Every broken rule must be in `overridden_rules`, and overriding needs a rationale (in the
    schema's rationale field) when the schema has one.
    """
    broken = [w.rule for w in warnings]
    unconfirmed = [w for w in warnings if w.rule not in set(overridden_rules)]
    if unconfirmed:
        raise ValidationProblem(
            "These labels break the guidelines' consistency rules: "
            + " ".join(w.message for w in unconfirmed)
            + " Change the labels, or confirm the override with a rationale."
        )
    field = rationale_field(schema)
    if broken and field is not None and not (labels.get(field) or "").strip():
        raise ValidationProblem(
            f"Overriding {', '.join(broken)} needs a rationale: say in `{field}` why these "
            "labels are right."
        )
    return broken


def _own_assignment(session: Session, user: User, assignment_id: int) -> Assignment:
    query = select(Assignment).where(Assignment.id == assignment_id)
    if session.connection().dialect.name == "postgresql":
        query = query.with_for_update()
    assignment = session.exec(query).first()
    if assignment is None:
        raise NotFound(f"No assignment {assignment_id}")
    if assignment.user_id != user.id:
        raise PermissionDenied(f"Assignment {assignment_id} belongs to another annotator")
    return assignment


def submit(
    *,
    session: Session,
    user: User,
    assignment_id: int,
    labels: Mapping[str, Any],
    duration_s: float | None = None,
    overridden_rules: Sequence[str] = (),
    flagged: bool = False,
    flag_note: str | None = None,
    now: datetime | None = None,
) -> Annotation:
    """Save `user`'s labels for their leased item and close the lease; returns the annotation.

    Labels are validated against the campaign's schema (a flagged item may leave required
    fields empty, but needs a `flag_note` for the lead). Broken consistency rules must be
    listed in `overridden_rules` and explained in the rationale. A lease that ran out is still
    honoured while the item has a free slot; once k others labeled it, Conflict is raised and
    nothing is saved. Needs a write transaction. `duration_s` is the time on the item in
    seconds.
    """
    require_role(user, "annotator", "submit labels")
    _check_write_transaction(session)
    _lock_user(session, user)
    assignment = _own_assignment(session, user, assignment_id)
    campaign = session.get(Campaign, assignment.campaign_id)
    item = session.get(Item, assignment.item_id)
    assert campaign is not None and item is not None
    _check_labeler(session, user, campaign)
    if assignment.status == "done":
        raise Conflict(
            f"Item `{item.external_id}` is already submitted; change your labels in My work"
        )
    if assignment.status == "skipped":
        raise Conflict(f"You skipped item `{item.external_id}`; it is no longer yours to label")
    note = (flag_note or "").strip() or None
    if flagged and note is None:
        raise ValidationProblem(f"Say why you flag item `{item.external_id}` for the lead")
    if duration_s is not None and duration_s < 0:
        raise ValidationProblem(f"Time on item must be positive, got {duration_s}")
    schema = store.campaign_schema(session=session, campaign=campaign)
    normalized, warnings = review_labels(schema, labels, partial=flagged)
    overridden = check_overrides(schema, normalized, warnings, overridden_rules)
    if session.connection().dialect.name == "postgresql":
        # Claims lock the item row too: while we count, nobody can take a slot on it.
        session.exec(select(Item.id).where(Item.id == item.id).with_for_update())
    # The clock is read once the locks are held, and the slots are counted whether or not our
    # lease still runs: a claim made the instant our lease lapsed may have taken our slot.
    now = now or utcnow()
    others = taken_slots(
        session=session, item_id=item.id or 0, now=now, exclude_user_id=user.id or 0
    )
    if others >= campaign.overlap:
        lapsed = assignment.status != "active" or assignment.expires_at <= now
        raise Conflict(
            (f"Your lease on item `{item.external_id}` ran out and " if lapsed else "")
            + f"{others} other annotators have labeled or taken item `{item.external_id}`, "
            "as many as it needs; your labels were not saved"
        )
    annotation = store.save_annotation(
        session=session,
        user=user,
        item=item,
        labels=normalized,
        duration_s=round(duration_s, 1) if duration_s is not None else None,
        flagged=flagged,
        flag_note=note,
        overridden_rules=overridden,
    )
    assignment.status = "done"
    assignment.finished_at = now
    session.add(assignment)
    session.flush()
    return annotation


def skip(
    *,
    session: Session,
    user: User,
    assignment_id: int,
    reason: str,
    now: datetime | None = None,
) -> Assignment:
    """Give `user`'s leased item back with a reason; it will not be offered to them again."""
    require_role(user, "annotator", "skip items")
    _check_write_transaction(session)
    _lock_user(session, user)
    reason = reason.strip()
    if not reason:
        raise ValidationProblem("Give a reason for skipping, so the lead can fix the item")
    if len(reason) > MAX_REASON:
        raise ValidationProblem(
            f"The reason is {len(reason)} characters; keep it under {MAX_REASON}"
        )
    assignment = _own_assignment(session, user, assignment_id)
    if assignment.status in ("done", "skipped"):
        item = session.get(Item, assignment.item_id)
        ext = item.external_id if item is not None else assignment.item_id
        raise Conflict(f"Item `{ext}` is already {assignment.status}")
    assignment.status = "skipped"
    assignment.reason = reason
    assignment.finished_at = now or utcnow()
    session.add(assignment)
    session.flush()
    return assignment


def edit(
    *,
    session: Session,
    user: User,
    annotation_id: int,
    labels: Mapping[str, Any],
    overridden_rules: Sequence[str] = (),
    flagged: bool = False,
    flag_note: str | None = None,
) -> Annotation:
    """Change one of `user`'s own annotations (My work); every version stays in the history.

    The same checks as `submit`: schema, consistency rules with confirmed overrides, a note
    for a flag. PermissionDenied for anyone else's annotation.
    """
    annotation, item = store.get_own_annotation(
        session=session, user=user, annotation_id=annotation_id
    )
    campaign = session.get(Campaign, annotation.campaign_id)
    assert campaign is not None
    _check_labeler(session, user, campaign)
    note = (flag_note or "").strip() or None
    if flagged and note is None:
        raise ValidationProblem(f"Say why you flag item `{item.external_id}` for the lead")
    schema = store.campaign_schema(session=session, campaign=campaign)
    normalized, warnings = review_labels(schema, labels, partial=flagged)
    overridden = check_overrides(schema, normalized, warnings, overridden_rules)
    return store.save_annotation(
        session=session,
        user=user,
        item=item,
        labels=normalized,
        flagged=flagged,
        flag_note=note,
        overridden_rules=overridden,
    )


def release(
    *, session: Session, user: User, assignment_id: int, now: datetime | None = None
) -> None:
    """Give up `user`'s lease without a reason (it may come back to them later); no-op if done."""
    require_role(user, "annotator", "release items")
    assignment = _own_assignment(session, user, assignment_id)
    if assignment.status == "active":
        assignment.status = "expired"
        assignment.expires_at = min(assignment.expires_at, now or utcnow())
        session.add(assignment)
        session.flush()


def expire_leases(
    *, session: Session, actor: User, campaign: Campaign, now: datetime | None = None
) -> int:
    """Mark every lapsed lease of `campaign` expired (housekeeping; leads); returns how many.

    Lapsed leases free their slot without this; marking them keeps the table honest.
    """
    require_role(actor, "lead", "expire leases")
    now = now or utcnow()
    rows = session.execute(
        update(Assignment)
        .where(
            col(Assignment.campaign_id) == campaign.id,
            col(Assignment.status) == "active",
            col(Assignment.expires_at) <= now,
        )
        .values(status="expired")
        .returning(col(Assignment.id))
    ).all()
    return len(rows)


# -- progress ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """An annotator's own progress in a campaign (nothing about anyone else's labels)."""

    done: int
    skipped: int
    in_progress: int
    campaign_items: int
    median_seconds: float | None
    last_hour: int

    @property
    def assigned(self) -> int:
        """Items leased to the annotator so far, finished or not."""
        return self.done + self.skipped + self.in_progress


def progress(
    *, session: Session, user: User, campaign: Campaign, now: datetime | None = None
) -> Progress:
    """`user`'s counts in `campaign`, the campaign size, and their pace (median s per item)."""
    require_role(user, "annotator", "see their progress")
    now = now or utcnow()
    by_status: dict[str, int] = {
        str(status): int(n)
        for status, n in session.exec(
            select(Assignment.status, func.count())
            .where(Assignment.campaign_id == campaign.id, Assignment.user_id == user.id)
            .group_by(col(Assignment.status))
        ).all()
    }
    live = session.exec(
        select(func.count())
        .select_from(Assignment)
        .where(
            Assignment.campaign_id == campaign.id,
            Assignment.user_id == user.id,
            Assignment.status == "active",
            col(Assignment.expires_at) > now,
        )
    ).one()
    done = session.exec(
        select(func.count())
        .select_from(Annotation)
        .where(Annotation.campaign_id == campaign.id, Annotation.user_id == user.id)
    ).one()
    recent = [
        float(d)
        for d in session.exec(
            select(Annotation.duration_s)
            .where(
                Annotation.campaign_id == campaign.id,
                Annotation.user_id == user.id,
                col(Annotation.duration_s).is_not(None),
            )
            .order_by(col(Annotation.created_at).desc())
            .limit(20)
        ).all()
        if d is not None
    ]
    last_hour = session.exec(
        select(func.count())
        .select_from(Annotation)
        .where(
            Annotation.campaign_id == campaign.id,
            Annotation.user_id == user.id,
            col(Annotation.created_at) > now - timedelta(hours=1),
        )
    ).one()
    items = session.exec(
        select(func.count()).select_from(Item).where(Item.campaign_id == campaign.id)
    ).one()
    recent.sort()
    median = None
    if recent:
        mid = len(recent) // 2
        median = recent[mid] if len(recent) % 2 else (recent[mid - 1] + recent[mid]) / 2
    return Progress(
        done=int(done),
        skipped=by_status.get("skipped", 0),
        in_progress=int(live),
        campaign_items=int(items),
        median_seconds=median,
        last_hour=int(last_hour),
    )
