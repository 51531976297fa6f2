"""The statements of the claim and submit hot path, built once with bind parameters.

Building a SQLAlchemy statement and computing its cache key costs more Python than running
the query on SQLite does (about 0.3 ms a statement, a dozen statements a label). These are
built on first use and reused, so each call only binds its values; `run` executes one on
the session's connection (plain rows, no ORM pass) for the queries that read columns.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import bindparam, exists, func, or_, union, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from annotate.storage.models import (
    Annotation,
    Assignment,
    Campaign,
    Control,
    Item,
    LabelSchemaRecord,
)


def run(session: Session, statement: Any, **params: Any) -> Any:
    """Execute a prebuilt Core statement on `session`'s connection; its CursorResult (pending
    ORM changes are not flushed first: callers flush before, as claims and submits do)."""
    return session.connection().execute(statement, params)


@cache
def live_lease() -> Any:
    """The user's newest live lease in a campaign, with its item (ORM entities)."""
    return (
        select(Assignment, Item)
        .join(Item, col(Item.id) == Assignment.item_id)
        .where(
            col(Assignment.campaign_id) == bindparam("campaign_id"),
            col(Assignment.user_id) == bindparam("user_id"),
            col(Assignment.status) == "active",
            col(Assignment.expires_at) > bindparam("now"),
        )
        .order_by(col(Assignment.claimed_at).desc())
        .limit(1)
    )


@cache
def expire_own() -> Any:
    """Mark the user's lapsed leases in a campaign expired (parameters b_campaign, b_user,
    b_now: a DML statement reserves its columns' names)."""
    return (
        update(Assignment)
        .where(
            col(Assignment.campaign_id) == bindparam("b_campaign"),
            col(Assignment.user_id) == bindparam("b_user"),
            col(Assignment.status) == "active",
            col(Assignment.expires_at) <= bindparam("b_now"),
        )
        .values(status="expired")
    )


@cache
def leases_per_item() -> Any:
    """Live leases per item of a campaign."""
    return (
        select(col(Assignment.item_id), func.count())
        .where(
            col(Assignment.campaign_id) == bindparam("campaign_id"),
            col(Assignment.status) == "active",
            col(Assignment.expires_at) > bindparam("now"),
        )
        .group_by(col(Assignment.item_id))
    )


@cache
def started_items() -> Any:
    """Items of a campaign with some but fewer than `k` human labels, with their count,
    leaving out those the user labeled, finished or skipped (their own labels would make the
    frontier grow with every label they give)."""
    return select(col(Item.id), col(Item.human_labels)).where(
        col(Item.campaign_id) == bindparam("campaign_id"),
        col(Item.human_labels) > 0,
        col(Item.human_labels) < bindparam("k"),
        ~exists().where(
            col(Annotation.item_id) == col(Item.id),
            col(Annotation.user_id) == bindparam("user_id"),
        ),
        ~exists().where(
            col(Assignment.item_id) == col(Item.id),
            col(Assignment.user_id) == bindparam("user_id"),
            col(Assignment.status).in_(("done", "skipped")),
        ),
    )


@cache
def labels_of() -> Any:
    """The human-label counters of the items `ids`."""
    return select(col(Item.id), col(Item.human_labels)).where(
        col(Item.id).in_(bindparam("ids", expanding=True))
    )


@cache
def mine_among() -> Any:
    """Of the items `ids`, those the user labeled, finished or skipped (never offered again)."""
    labeled = select(col(Annotation.item_id)).where(
        col(Annotation.campaign_id) == bindparam("campaign_id"),
        col(Annotation.user_id) == bindparam("user_id"),
        col(Annotation.item_id).in_(bindparam("ids", expanding=True)),
    )
    finished = select(col(Assignment.item_id)).where(
        col(Assignment.campaign_id) == bindparam("campaign_id"),
        col(Assignment.user_id) == bindparam("user_id"),
        col(Assignment.status).in_(("done", "skipped")),
        col(Assignment.item_id).in_(bindparam("ids", expanding=True)),
    )
    return union(labeled, finished)


@cache
def newest_item() -> Any:
    """The largest item id of a campaign."""
    return select(func.max(col(Item.id))).where(col(Item.campaign_id) == bindparam("campaign_id"))


@cache
def upsert_lease(dialect: str) -> Any:
    """Lease an item (insert, or renew an active or expired lease; never a finished one);
    parameters b_campaign, b_item, b_user, b_now, b_expires."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(Assignment).values(
        campaign_id=bindparam("b_campaign"),
        item_id=bindparam("b_item"),
        user_id=bindparam("b_user"),
        status="active",
        claimed_at=bindparam("b_now", type_=Assignment.__table__.c.claimed_at.type),  # type: ignore[attr-defined]
        expires_at=bindparam("b_expires", type_=Assignment.__table__.c.expires_at.type),  # type: ignore[attr-defined]
    )
    return statement.on_conflict_do_update(
        index_elements=[Assignment.item_id, Assignment.user_id],
        set_={
            "status": "active",
            "claimed_at": statement.excluded.claimed_at,
            "expires_at": statement.excluded.expires_at,
            "reason": None,
            "finished_at": None,
        },
        where=col(Assignment.status).in_(("active", "expired")),
    ).returning(col(Assignment.id))


@cache
def own_assignment(lock: bool) -> Any:
    """An assignment by id (ORM entity), row-locked with `lock` (PostgreSQL)."""
    query = select(Assignment).where(col(Assignment.id) == bindparam("assignment_id"))
    return query.with_for_update() if lock else query


@cache
def assignment_in_full(lock: bool) -> Any:
    """An assignment by id with its item, campaign and the campaign's schema record (ORM
    entities, read as stored now); with `lock` (PostgreSQL) the assignment's row is locked."""
    query = (
        select(Assignment, Item, Campaign, LabelSchemaRecord)
        .join(Item, col(Item.id) == col(Assignment.item_id))
        .join(Campaign, col(Campaign.id) == col(Assignment.campaign_id))
        .join(LabelSchemaRecord, col(LabelSchemaRecord.id) == col(Campaign.schema_id))
        .where(col(Assignment.id) == bindparam("assignment_id"))
        .execution_options(populate_existing=True)
    )
    return query.with_for_update(of=Assignment.__table__) if lock else query  # type: ignore[attr-defined]


@cache
def finish_assignment() -> Any:
    """Mark an assignment done (parameters b_id, b_now)."""
    finished = Assignment.__table__.c.finished_at.type  # type: ignore[attr-defined]
    return (
        update(Assignment)
        .where(col(Assignment.id) == bindparam("b_id"))
        .values(status="done", finished_at=bindparam("b_now", type_=finished))
    )


@cache
def lease_with_item() -> Any:
    """A lease by id with its item (ORM entities, read as stored now)."""
    return (
        select(Assignment, Item)
        .join(Item, col(Item.id) == col(Assignment.item_id))
        .where(col(Assignment.id) == bindparam("assignment_id"))
        .execution_options(populate_existing=True)
    )


@cache
def leased_by_others() -> Any:
    """Live leases on an item held by others who have not labeled it."""
    return (
        select(func.count())
        .select_from(Assignment)
        .where(
            col(Assignment.item_id) == bindparam("item_id"),
            col(Assignment.status) == "active",
            col(Assignment.expires_at) > bindparam("now"),
            col(Assignment.user_id) != bindparam("user_id"),
            # A lease whose holder already labeled the item is not a second slot.
            ~exists().where(
                col(Annotation.item_id) == col(Assignment.item_id),
                col(Annotation.user_id) == col(Assignment.user_id),
            ),
        )
    )


@cache
def slot_state() -> Any:
    """What a submit needs to know of an item beside the item itself, in one read: whether it
    is a control now, the live leases held on it by others (as `leased_by_others`), and the
    user's own annotation of it (id and origin; NULL when there is none)."""
    own = (
        col(Annotation.item_id) == bindparam("item_id"),
        col(Annotation.user_id) == bindparam("user_id"),
    )
    return select(
        exists().where(col(Control.item_id) == bindparam("item_id")).label("control"),
        leased_by_others().scalar_subquery().label("others"),
        select(col(Annotation.id)).where(*own).scalar_subquery().label("own_id"),
        select(col(Annotation.origin)).where(*own).scalar_subquery().label("own_origin"),
    )


@cache
def window_state() -> Any:
    """For each item `ids`: its human labels, whether the user labeled, finished or skipped it
    (as `mine_among`), and whether it is under a live lease."""
    labeled = exists().where(
        col(Annotation.item_id) == col(Item.id),
        col(Annotation.user_id) == bindparam("user_id"),
    )
    finished = exists().where(
        col(Assignment.item_id) == col(Item.id),
        col(Assignment.user_id) == bindparam("user_id"),
        col(Assignment.status).in_(("done", "skipped")),
    )
    leased = exists().where(
        col(Assignment.item_id) == col(Item.id),
        col(Assignment.status) == "active",
        col(Assignment.expires_at) > bindparam("now"),
    )
    return select(col(Item.id), col(Item.human_labels), or_(labeled, finished), leased).where(
        col(Item.id).in_(bindparam("ids", expanding=True))
    )


@cache
def slots_taken() -> Any:
    """An item's slots taken now: its human-label counter and the live leases on it of others
    who have not labeled it (parameters item_id, now, user_id: 0 leaves nobody out)."""
    return select(col(Item.human_labels) + leased_by_others().scalar_subquery()).where(
        col(Item.id) == bindparam("item_id")
    )


@cache
def campaign_controls() -> Any:
    """The ids of a campaign's control items (storage.controls.control_ids, prebuilt)."""
    return select(col(Control.item_id)).where(col(Control.campaign_id) == bindparam("campaign_id"))
