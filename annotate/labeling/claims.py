"""Claims: atomically lease the next item to an annotator (SQLite and PostgreSQL variants)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from annotate.accounts.auth import require_role
from annotate.labeling.slots import (
    _check_labeler,
    _check_write_transaction,
    _human_annotations,
    _live_leases,
    _lock_user,
    _machine_ids,
    _mine,
    _not_machine,
    _order_sql,
    taken_slots,
)
from annotate.storage.models import Annotation, Assignment, Campaign, Item, User, utcnow


@dataclass(frozen=True)
class Claim:
    """An item leased to an annotator: what the labeling page shows."""

    assignment: Assignment
    item: Item
    resumed: bool = False


def current_claim(
    *, session: Session, user: User, campaign: Campaign, now: datetime | None = None
) -> Claim | None:
    """`user`'s live lease in `campaign`, if any; reads only (safe on every page rerun).

    Raises PermissionDenied for anyone who may not label (the role check costs no query;
    membership was checked when the lease was made by `claim_next`, and again on submit).
    """
    require_role(user, "annotator", "label items", session=session)
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
