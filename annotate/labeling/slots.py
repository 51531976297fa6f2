"""Slots and leases: who may take an item, each annotator's order, expiry, progress."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, cast, func, true, union, update
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from annotate.accounts.auth import has_role, require_role
from annotate.errors import NotFound, PermissionDenied
from annotate.labeling import statements
from annotate.storage import db
from annotate.storage.campaigns import can_label
from annotate.storage.models import Annotation, Assignment, Campaign, Item, User, utcnow

# Arithmetic modulo the Mersenne prime 2^31 - 1 keeps every product below 2^62, so the order
# key never overflows SQLite's or PostgreSQL's 64-bit integers.
_P = 2_147_483_647

MAX_REASON = 2000

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


def _machine_ids(session: Session) -> list[int]:
    """Ids of the automatic judges (few, usually none): their labels never take a slot."""
    return [int(i) for i in session.exec(select(User.id).where(col(User.is_machine))).all() if i]


def _not_machine(machines: Sequence[int]) -> ColumnElement[bool]:
    # A NOT IN over a handful of ids lets SQLite answer from the (campaign_id, item_id) index
    # instead of joining every annotation to its user.
    return col(Annotation.user_id).not_in(machines) if machines else true()


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
    leased = session.execute(
        statements.leased_by_others(), {"item_id": item_id, "now": now, "user_id": exclude_user_id}
    ).scalar_one()
    return int(labeled) + int(leased)


def _mine(campaign_id: int, user_id: int, among: Sequence[int] | None = None) -> Any:
    """Items `user_id` must never be offered: labeled, done or skipped by them (of `among`)."""
    labeled = select(col(Annotation.item_id)).where(
        Annotation.campaign_id == campaign_id, Annotation.user_id == user_id
    )
    finished = select(col(Assignment.item_id)).where(
        Assignment.campaign_id == campaign_id,
        Assignment.user_id == user_id,
        col(Assignment.status).in_(("done", "skipped")),
    )
    if among is not None:
        labeled = labeled.where(col(Annotation.item_id).in_(among))
        finished = finished.where(col(Assignment.item_id).in_(among))
    return union(labeled, finished)


def release(
    *, session: Session, user: User, assignment_id: int, now: datetime | None = None
) -> None:
    """Give up `user`'s lease without a reason (it may come back to them later); no-op if done."""
    require_role(user, "annotator", "release items", session=session)
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
    require_role(actor, "lead", "expire leases", session=session)
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
    require_role(user, "annotator", "see their progress", session=session)
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


def _check_write_transaction(session: Session) -> None:
    bind = session.connection()
    if bind.dialect.name == "sqlite" and not bind.get_execution_options().get("sqlite_immediate"):
        raise RuntimeError(
            "assignment writes need a write transaction: open the session with "
            "db.session_scope(engine, immediate=True)"
        )


def _lock_user(session: Session, user: User) -> None:
    if session.connection().dialect.name != "postgresql":
        return
    # A lock taken by this transaction is held to its end: a submit's next claim, in the same
    # transaction, does not ask again. One taken inside a savepoint is not remembered (it
    # goes if the savepoint is rolled back).
    transaction = session.get_transaction()
    held = session.info.get(_LOCKED)
    if held is not None and held[0] is transaction and user.id in held[1]:
        return
    # One claim or submit per annotator at a time, so two tabs cannot take two items.
    session.exec(select(User.id).where(User.id == user.id).with_for_update())
    if not session.in_nested_transaction():
        if held is None or held[0] is not transaction:
            held = session.info[_LOCKED] = (transaction, set[int | None]())
        held[1].add(user.id)


_VERIFIED = "annotate.verified_labelers"
_HELD = "annotate.held_rows"
_LOCKED = "annotate.locked_users"


def _require_labeler(session: Session, user: User, action: str) -> User:
    """`require_role(user, "annotator", action)`, reading the user back once per session: a
    claim or a submit checks at several steps of one transaction, and one read is enough."""
    verified: dict[int, User] = session.info.setdefault(_VERIFIED, {})
    if verified.get(id(user)) is user and has_role(user, "annotator"):
        return user
    require_role(user, "annotator", action, session=session)
    verified[id(user)] = user
    return user


def _check_labeler(session: Session, user: User, campaign: Campaign) -> User:
    _require_labeler(session, user, "label items")
    # Open campaigns admit every annotator: only a restricted one needs its member list.
    if campaign.restricted and not can_label(session=session, user=user, campaign=campaign):
        raise PermissionDenied(f"`{user.name}` is not a member of campaign `{campaign.name}`")
    return user


def _own_assignment_in_full(
    session: Session, user: User, assignment_id: int
) -> tuple[Assignment, Item, Campaign]:
    """`_own_assignment` with its item and campaign, in one query (a submit needs all three)."""
    lock = session.connection().dialect.name == "postgresql"
    row = session.execute(
        statements.assignment_in_full(lock), {"assignment_id": assignment_id}
    ).first()
    if row is None:
        raise NotFound(f"No assignment {assignment_id}")
    assignment, item, campaign, schema = row
    if assignment.user_id != user.id:
        raise PermissionDenied(f"Assignment {assignment_id} belongs to another annotator")
    # The session's identity map holds objects weakly: kept here, the rows just read are what
    # later `session.get`s of this transaction find without a query (the schema for the
    # submit's checks, the item's name for its toast, the campaign for the next claim).
    session.info.setdefault(_HELD, []).extend((item, campaign, schema))
    return assignment, item, campaign


def _own_assignment(session: Session, user: User, assignment_id: int) -> Assignment:
    lock = session.connection().dialect.name == "postgresql"
    assignment = session.scalars(
        statements.own_assignment(lock), {"assignment_id": assignment_id}
    ).first()
    if assignment is None:
        raise NotFound(f"No assignment {assignment_id}")
    if assignment.user_id != user.id:
        raise PermissionDenied(f"Assignment {assignment_id} belongs to another annotator")
    return assignment
