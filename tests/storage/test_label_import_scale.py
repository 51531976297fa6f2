"""Importing labels into a large campaign: only the labeled items are loaded, and each save
costs the same however many objects the session holds (it was quadratic: 1,000,000 items)."""

from __future__ import annotations

import time

from conftest import ADMIN, make_campaign, make_item, make_user
from sqlalchemy import event, inspect
from sqlmodel import Session, select

from annotate import storage
from annotate.intake.labels import LabelRow
from annotate.schema import LabelSchema
from annotate.storage.annotations import save_annotation
from annotate.storage.models import Annotation, AnnotationHistory, Item


def _items(session: Session, campaign: object, n: int) -> None:
    storage.import_items(
        session=session,
        actor=ADMIN,
        campaign=campaign,  # type: ignore[arg-type]
        records=[make_item(external_id=f"i{n_:05d}") for n_ in range(n)],
    )
    session.commit()


def test_import_labels_loads_only_the_labeled_items_without_their_text(
    session: Session, schema: LabelSchema
) -> None:
    campaign = make_campaign(session, schema)
    _items(session, campaign, 300)
    session.expunge_all()
    rows = [
        LabelRow(line=2 + n, item_id=f"i{n:05d}", annotator=who, field="intent", value="benign")
        for n in (7, 8, 9)
        for who in ("x", "y")
    ]
    loaded: list[Item] = []

    def on_load(_session: Session, obj: object) -> None:
        if isinstance(obj, Item):
            loaded.append(obj)

    event.listen(session, "loaded_as_persistent", on_load)
    result = storage.import_labels(session=session, actor=ADMIN, campaign=campaign, rows=rows)
    event.remove(session, "loaded_as_persistent", on_load)
    assert result.annotations_added == 6
    assert {o.external_id for o in loaded} <= {"i00007", "i00008", "i00009"}
    assert all("prompt" not in inspect(o).dict for o in loaded)
    session.commit()
    counts = dict(session.exec(select(Item.external_id, Item.human_labels)).all())
    assert sum(counts.values()) == 6
    assert counts["i00008"] == 2
    history = session.exec(select(AnnotationHistory)).all()
    assert sorted((h.action, h.labels["intent"]) for h in history) == [("import", "benign")] * 6
    assert {(h.annotation_id, h.item_id, h.user_id) for h in history} == {
        (a.id, a.item_id, a.user_id) for a in session.exec(select(Annotation)).all()
    }
    judged = [LabelRow(line=2, item_id="i00008", annotator="j", field="intent", value="harmful")]
    storage.import_labels(
        session=session, actor=ADMIN, campaign=campaign, rows=judged, machine=True
    )
    session.commit()
    assert session.exec(select(Item.human_labels).where(Item.external_id == "i00008")).one() == 2


def _cpu_of_saves(session: Session, items: list[Item], users: list[object]) -> float:
    start = time.process_time()
    for user in users:
        for item in items:
            save_annotation(session=session, user=user, item=item, labels={"intent": "benign"})  # type: ignore[arg-type]
    return time.process_time() - start


def test_save_annotation_cost_does_not_grow_with_the_session(
    session: Session, schema: LabelSchema
) -> None:
    campaign = make_campaign(session, schema, overlap=9)
    _items(session, campaign, 3000)
    users = [make_user(session, f"u{n}") for n in range(4)]
    session.commit()
    few = session.exec(select(Item).where(Item.external_id < "i00030")).all()
    quiet = _cpu_of_saves(session, list(few[:15]), users)
    session.commit()
    held = session.exec(select(Item)).all()  # 3,000 objects in the session, held
    crowded = _cpu_of_saves(session, list(few[15:30]), users)
    assert len(held) == 3000
    # Before: every save tested all 3,000 objects (0.4-0.9 s more for these 60 saves).
    assert crowded < 2.5 * quiet + 0.05, (quiet, crowded)
