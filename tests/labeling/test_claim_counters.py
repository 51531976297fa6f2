"""The slot counter on items and the cached per-annotator order that claims read (issue 15)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from annotate import labeling, storage
from annotate.labeling import claims
from annotate.schema import LabelSchema
from annotate.storage import db
from annotate.storage.models import Annotation, Item, User
from tests.conftest import ADMIN, full_labels, make_item
from tests.labeling.test_assign import T0, claim, label_all, setup_campaign, submit


def counters(engine: Engine) -> dict[int, tuple[int, int]]:
    """item id -> (counter, human annotations counted afresh)."""
    with Session(engine) as s:
        humans = dict(
            s.exec(
                select(Annotation.item_id, func.count())
                .join(User, User.id == Annotation.user_id)  # type: ignore[arg-type]
                .where(User.is_machine == False)  # noqa: E712
                .group_by(Annotation.item_id)
            ).all()
        )
        return {
            int(i.id or 0): (i.human_labels, int(humans.get(i.id, 0)))
            for i in s.exec(select(Item)).all()
        }


def test_the_counter_counts_human_annotations_once(engine: Engine, schema: LabelSchema) -> None:
    campaign, people = setup_campaign(engine, schema, items=4, overlap=3)
    for name in ("alice", "bob"):
        c = claim(engine, people[name], campaign)
        assert c is not None
        submit(engine, people[name], c.assignment.id or 0)
    with db.session_scope(engine) as s:
        judge = storage.add_user(session=s, actor=ADMIN, name="judge", is_machine=True)
        items = s.exec(select(Item).order_by(Item.id)).all()  # type: ignore[arg-type]
        storage.save_annotation(session=s, user=judge, item=items[0], labels=full_labels())
        storage.save_annotation(
            session=s, user=people["carol"], item=items[3], labels=full_labels(), origin="import"
        )
        # A second save by the same person is an edit: no new slot.
        storage.save_annotation(
            session=s, user=people["carol"], item=items[3], labels=full_labels(confidence="low")
        )
    got = counters(engine)
    assert all(kept == fresh for kept, fresh in got.values()), got
    # Alice, Bob and Carol count; the judge does not.
    assert sum(n for n, _ in got.values()) == 3


def test_a_small_walk_keeps_the_order_and_fills_every_item_once(
    engine: Engine, schema: LabelSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Windows of two items make the cursor move many times over a 9-item campaign.
    monkeypatch.setattr(claims, "_WALK", 2)
    campaign, people = setup_campaign(engine, schema, items=9, overlap=1)
    alice = people["alice"]
    first = label_all(engine, alice, campaign)
    with Session(engine) as s:
        ids = {it.external_id: it.id or 0 for it in s.exec(select(Item)).all()}
    assert first == sorted(
        ids, key=lambda e: (labeling.order_key(11, alice.id or 0, ids[e]), ids[e])
    )
    assert claim(engine, people["bob"], campaign) is None


def test_a_lapsed_lease_behind_the_cursor_comes_back(
    engine: Engine, schema: LabelSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(claims, "_WALK", 1)
    campaign, people = setup_campaign(engine, schema, items=3, overlap=1)
    held = claim(engine, people["alice"], campaign, lease=1)
    assert held is not None
    # Bob labels everything else while Alice's lease is live, walking past her item.
    others = label_all(engine, people["bob"], campaign)
    assert held.item.external_id not in others and len(others) == 2
    later = T0 + timedelta(minutes=5)
    back = claim(engine, people["bob"], campaign, now=later)
    assert back is not None and back.item.id == held.item.id


def test_items_added_after_the_order_was_cached_are_offered(
    engine: Engine, schema: LabelSchema
) -> None:
    campaign, people = setup_campaign(engine, schema, items=2, overlap=1)
    assert len(label_all(engine, people["alice"], campaign)) == 2
    with db.session_scope(engine) as s:
        storage.import_items(
            session=s,
            actor=ADMIN,
            campaign=campaign,
            records=[make_item(external_id=f"new-{i}", prompt=f"n{i}") for i in range(3)],
        )
    assert sorted(label_all(engine, people["alice"], campaign)) == ["new-0", "new-1", "new-2"]


def test_the_migration_counts_labels_already_stored(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    db.migrate(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO label_schema (id, name, version, sha256, content, created_at) "
                "VALUES (1, 's', 1, 'x', '{}', '2030-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO campaign (id, name, schema_id, overlap, guidelines, restricted, seed,"
                " created_at) VALUES (1, 'c', 1, 2, '', 0, 0, '2030-01-01')"
            )
        )
        for uid, machine in ((1, 0), (2, 0), (3, 1)):
            conn.execute(
                text(
                    'INSERT INTO "user" (id, name, role, is_machine, created_at, active) '
                    "VALUES (:i, :n, 'annotator', :m, '2030-01-01', 1)"
                ),
                {"i": uid, "n": f"u{uid}", "m": machine},
            )
        for iid in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO item (id, campaign_id, external_id, response, meta, content_hash,"
                    " created_at) VALUES (:i, 1, :e, 'r', '{}', :e, '2030-01-01')"
                ),
                {"i": iid, "e": f"e{iid}"},
            )
        for iid, uid in ((1, 1), (1, 2), (1, 3), (2, 3)):
            conn.execute(
                text(
                    "INSERT INTO annotation (campaign_id, item_id, user_id, labels, flagged,"
                    " overridden_rules, origin, created_at, updated_at) VALUES"
                    " (1, :i, :u, '{}', 0, '[]', 'import', '2030-01-01', '2030-01-01')"
                ),
                {"i": iid, "u": uid},
            )
    db.migrate(engine)
    assert counters(engine) == {1: (2, 2), 2: (0, 0)}
