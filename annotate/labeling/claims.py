"""Claims: atomically lease the next item to an annotator (SQLite and PostgreSQL variants)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from annotate.labeling import statements as sql
from annotate.labeling.qualify import CLOSED, pick_control
from annotate.labeling.queue import user_order
from annotate.labeling.slots import (
    _check_labeler,
    _check_write_transaction,
    _lock_user,
    _require_labeler,
    order_key,
)
from annotate.storage.models import Assignment, Campaign, Item, User, utcnow


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
    _require_labeler(session, user, "label items")
    now = now or utcnow()
    row = session.execute(
        sql.live_lease(), {"campaign_id": campaign.id, "user_id": user.id, "now": now}
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
    sql.run(session, sql.expire_own(), b_campaign=campaign.id, b_user=user.id, b_now=now)

    # Controls are served apart (qualification first, then at the campaign's rate) and are
    # never candidates below: they take no slot and need no lock.
    controls = {
        int(i) for i in sql.run(session, sql.campaign_controls(), campaign_id=campaign.id).scalars()
    }
    picked = pick_control(session, user, campaign, controls)
    if picked == CLOSED:
        return None
    if picked is not None:
        return _lease(session, campaign.id, picked, user.id, now, expires)

    is_pg = session.connection().dialect.name == "postgresql"
    tried: set[int] = set(controls)
    while True:
        item_id = _next_candidate(session, user, campaign, now, tried, lock=is_pg)
        if item_id is None:
            return None
        tried.add(item_id)
        if is_pg and _slots_taken(session, item_id, now) >= campaign.overlap:
            # Filled by a transaction that committed between our snapshot and our lock.
            continue
        claim = _lease(session, campaign.id, item_id, user.id, now, expires)
        if claim is not None:
            return claim


def _slots_taken(session: Session, item_id: int, now: datetime) -> int:
    """The item's slots taken as committed now (read after its row lock; the counter holds the
    human labels, as the rest of the claim reads them)."""
    return int(
        sql.run(session, sql.slots_taken(), item_id=item_id, now=now, user_id=0).scalar_one()
    )


def _lease(
    session: Session, campaign_id: int, item_id: int, user_id: int, now: datetime, expires: datetime
) -> Claim | None:
    """Lease `item_id` to `user_id` (None if they finished or skipped it meanwhile)."""
    assignment_id = _upsert_lease(session, campaign_id, item_id, user_id, now, expires)
    if assignment_id is None:
        return None
    assignment, item = session.execute(
        sql.lease_with_item(), {"assignment_id": assignment_id}
    ).one()
    return Claim(assignment=assignment, item=item)


_LOCK_BATCH = 16

_WALK = 32  # items of the annotator's order tested per query (early windows are mostly open)


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

    Started items are read from the items' human-label counters (a range 0 < n < k of an
    index) and the live leases, so the query touches the partly labeled frontier only, never
    the whole campaign. With `lock` (set on PostgreSQL, and only there) the returned item's
    row is locked; items locked by concurrent claims are skipped, not waited for.
    """
    assert user.id is not None and campaign.id is not None
    while True:
        ids = _started(session, user, campaign, now, tried)[: _LOCK_BATCH if lock else 1]
        if not ids:
            return _next_fresh(session, user, campaign, now, tried, lock=lock)
        picked = _lock_first(session, ids) if lock else ids[0]
        if picked is not None:
            return picked
        tried.update(ids)  # all held by concurrent claims: look further down the ranking


def _started(
    session: Session, user: User, campaign: Campaign, now: datetime, tried: set[int]
) -> list[int]:
    """Items with some but fewer than k slots taken that `user` may take, best first."""
    assert user.id is not None and campaign.id is not None
    leases: dict[int, int] = {
        int(i): int(n)
        for i, n in sql.run(session, sql.leases_per_item(), campaign_id=campaign.id, now=now)
    }
    counts: dict[int, int] = {
        int(i): int(n)
        for i, n in sql.run(
            session,
            sql.started_items(),
            campaign_id=campaign.id,
            k=campaign.overlap,
            user_id=user.id,
        )
    }
    leased_only = set(leases) - set(counts)
    if leased_only:
        for i, n in sql.run(session, sql.labels_of(), ids=sorted(leased_only)):
            counts[int(i)] = int(n)
    slots = {i: n + leases.get(i, 0) for i, n in counts.items()}
    open_ids = sorted(i for i, n in slots.items() if n < campaign.overlap and i not in tried)
    if not open_ids:
        return []
    # The counted items leave the user's own out already; leased ones still need the check.
    closed = _closed_for(session, campaign.id, user.id, [i for i in open_ids if i in leased_only])
    seed, uid = campaign.seed, user.id
    return sorted(
        (i for i in open_ids if i not in closed),
        key=lambda i: (-slots[i], order_key(seed, uid, i), i),
    )


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
    *,
    lock: bool,
) -> int | None:
    """The first item in `user`'s order that has no slot taken at all.

    Walks the annotator's cached order (`queue.user_order`) from its cursor, testing a
    window of items by primary key per query; windows whose items are all closed for good
    move the cursor on, so the walk does not start over on the next claim.
    """
    assert user.id is not None and campaign.id is not None
    order = user_order(session, campaign, user.id)
    pos = order.cursor
    total = len(order.ids)
    while pos < total:
        window = [int(i) for i in order.ids[pos : pos + _WALK]]
        state = _window_state(session, campaign, user, now, window)
        if all(state[i] == "closed" for i in window):
            pos += len(window)
            with order.lock:
                if order.cursor < pos and pos - len(window) <= order.cursor:
                    order.cursor = pos
            continue
        ids = [i for i in window if state[i] == "open" and i not in tried][
            : _LOCK_BATCH if lock else 1
        ]
        if not ids:
            pos += len(window)
            continue
        picked = _lock_first(session, ids) if lock else ids[0]
        if picked is not None:
            return picked
        tried.update(ids)
    return None


def _window_state(
    session: Session, campaign: Campaign, user: User, now: datetime, window: list[int]
) -> dict[int, str]:
    """For each item of `window`: open (no slot taken), busy (leased now) or closed for good.

    Closed for good: labeled by a human (labels are never deleted), or finished or skipped by
    `user`. An item only leased may open again when the lease lapses.
    """
    assert user.id is not None and campaign.id is not None
    state = dict.fromkeys(window, "open")
    found = sql.run(session, sql.window_state(), ids=window, user_id=user.id, now=now)
    for i, n, mine, leased in found:
        if int(n) > 0 or mine:
            state[int(i)] = "closed"
        elif leased:
            state[int(i)] = "busy"
    return state


def _upsert_lease(
    session: Session, campaign_id: int, item_id: int, user_id: int, now: datetime, expires: datetime
) -> int | None:
    """Write the lease; an item the annotator finished or skipped is never re-leased."""
    row = sql.run(
        session,
        sql.upsert_lease(session.connection().dialect.name),
        b_campaign=campaign_id,
        b_item=item_id,
        b_user=user_id,
        b_now=now,
        b_expires=expires,
    ).first()
    return int(row[0]) if row is not None else None


def _closed_for(session: Session, campaign_id: int, user_id: int, ids: Sequence[int]) -> set[int]:
    """Of `ids`, the items `user_id` labeled, finished or skipped (see slots._mine)."""
    if not ids:
        return set()
    found = sql.run(session, sql.mine_among(), campaign_id=campaign_id, user_id=user_id, ids=ids)
    return {int(i) for i in found.scalars()}
