"""A label is stored as the same rows whether save_annotation writes it (SQL insert statements,
not the ORM's unit of work) or the ORM does: the annotation with its change_seq stamped by the
trigger, its history version, the slot counter. On SQLite and PostgreSQL."""

from __future__ import annotations

import importlib
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from annotate.schema import LabelSchema
from annotate.storage import db
from annotate.storage.models import Annotation, AnnotationHistory, Item, User
from tests.conftest import full_labels
from tests.labeling.test_assign import T0, claim, setup_campaign, submit

# By module path: the package's attribute `annotations` is __future__'s.
store = importlib.import_module("annotate.storage.annotations")


def orm_save(session: Session, user: User, item: Item, labels: dict[str, Any], **kw: Any) -> None:
    """The reference: the same label written through the unit of work (as before issue 15)."""
    ann = Annotation(
        campaign_id=item.campaign_id,
        item_id=item.id or 0,
        user_id=user.id or 0,
        labels=labels,
        created_at=T0,
        updated_at=T0,
        **kw,
    )
    session.add(ann)
    session.flush()
    session.add(
        AnnotationHistory(
            annotation_id=ann.id or 0,
            item_id=ann.item_id,
            user_id=ann.user_id,
            labels=labels,
            action="create",
            duration_s=ann.duration_s,
            changed_at=T0,
        )
    )
    item.human_labels += 1
    session.add(item)


def stored(engine: Engine, item_id: int) -> dict[str, Any]:
    """Every column of the item's annotation, its history and its counter, ids left out."""
    with engine.connect() as c:
        ann = c.execute(text("SELECT * FROM annotation WHERE item_id = :i"), {"i": item_id})
        row = dict(ann.mappings().one())
        hist = c.execute(
            text("SELECT * FROM annotation_history WHERE item_id = :i"), {"i": item_id}
        )
        versions = [dict(r) for r in hist.mappings().all()]
        count = c.execute(text("SELECT human_labels FROM item WHERE id = :i"), {"i": item_id})
        counter = count.scalar_one()
    assert row["change_seq"] is not None, "the trigger stamped the change"
    for version in versions:
        assert version.pop("annotation_id") == row["id"]
        version.pop("id"), version.pop("item_id")
    for name in ("id", "item_id", "change_seq"):
        row.pop(name)
    return {"annotation": row, "history": versions, "counter": counter}


@pytest.mark.parametrize(
    "how",
    [
        {"duration_s": 4.2},
        {"flagged": True, "flag_note": "Odd item", "duration_s": None},
        {"overridden_rules": ["refusal-needs-reason"], "duration_s": 1.0},
    ],
    ids=["plain", "flagged", "overridden"],
)
def test_a_submit_stores_what_the_orm_stored(
    engine: Engine, schema: LabelSchema, monkeypatch: pytest.MonkeyPatch, how: dict[str, Any]
) -> None:
    monkeypatch.setattr(store, "utcnow", lambda: T0)
    campaign, people = setup_campaign(engine, schema, items=4, overlap=2)
    alice, bob = people["alice"], people["bob"]
    got = claim(engine, alice, campaign)
    assert got is not None
    # Write the label itself (checked rules aside: this compares storage).
    with db.session_scope(engine) as s:
        item = s.get(Item, got.item.id)
        user = s.get(User, alice.id)
        assert item is not None and user is not None
        store.save_annotation(session=s, user=user, item=item, labels=full_labels(), **how)
    with db.session_scope(engine) as s:
        other = s.exec(select(Item).where(Item.id != got.item.id)).first()
        user = s.get(User, alice.id)
        assert other is not None and user is not None
        orm_save(s, user, other, full_labels(), **how)
    mine, reference = stored(engine, got.item.id or 0), stored(engine, other.id or 0)
    assert mine == reference
    assert mine["counter"] == 1 and mine["history"][0]["action"] == "create"
    # The path the label page takes stores it the same way, and its object is usable after.
    second = claim(engine, bob, campaign)
    assert second is not None
    ann = submit(engine, bob, second.assignment.id or 0, labels=full_labels())
    assert ann.id is not None and ann.item_id == second.item.id and ann.created_at == T0
    assert isinstance(ann.updated_at, datetime)
