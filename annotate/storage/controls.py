"""Which items are controls, and which annotations are control answers (plain queries).

A control is an adjudicated item a lead set aside (see `annotate.review.controls`). An
annotation made on an item while it is a control is a control answer: it is stored with
`origin = "control"`, takes no slot (it does not count in `Item.human_labels`), and
`load_labels` leaves it out, together with every label of every control item, so controls
never enter agreement, the review queue or a gold release.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from annotate.storage.models import Control

CONTROL_ORIGIN = "control"


def control_ids(session: Session, campaign_id: int) -> set[int]:
    """Ids of the control items of `campaign_id` (few: read whole, by an index)."""
    return {
        int(i)
        for i in session.exec(
            select(Control.item_id).where(Control.campaign_id == campaign_id)
        ).all()
    }


def is_control(session: Session, item_id: int) -> bool:
    """Whether `item_id` is a control now (one primary-key read)."""
    return session.get(Control, item_id) is not None


def not_control(item_id: Any) -> ColumnElement[bool]:
    """SQL condition: the item `item_id` (a column) is not a control."""
    return ~exists().where(col(Control.item_id) == item_id)
