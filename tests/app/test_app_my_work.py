"""My work through AppTest: only your own labels, editing with history."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlmodel import Session, select

from annotate import storage
from annotate.app.pages import my_work
from annotate.schema import LabelSchema
from annotate.storage import db
from annotate.storage.models import Annotation, AnnotationHistory, Item
from tests import test_app_support as support
from tests.conftest import full_labels
from tests.test_app_support import AppDB, choose, click, page_app, texts


@pytest.fixture
def app_db(db_url: str, monkeypatch: pytest.MonkeyPatch, schema: LabelSchema) -> Iterator[AppDB]:
    gen = support.app_db_fixture(db_url, monkeypatch, schema, items=3)
    seeded = next(gen)
    # Alice labeled two items, Bob one of them (with a different right action).
    with db.session_scope(seeded.engine) as s:
        items = s.exec(select(Item).order_by(Item.id)).all()
        for item in items[:2]:
            storage.save_annotation(
                session=s, user=seeded.users["alice"], item=item, labels=full_labels()
            )
        storage.save_annotation(
            session=s,
            user=seeded.users["bob"],
            item=items[0],
            labels=full_labels(right_action="refuse", rationale="BOB-SECRET"),
        )
    yield seeded
    gen.close()


def test_lists_only_your_own_labels(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "my_work").run()
    assert not at.exception and not at.error
    assert any("2 labeled items" in c for c in texts(at.caption))
    edit_keys = [b.key for b in at.button if b.key and b.key.startswith("edit-")]
    assert len(edit_keys) == 2
    page = " ".join(texts(at.markdown) + texts(at.caption))
    assert "BOB-SECRET" not in page and "refuse" not in page
    bob = page_app(app_db, "bob", "my_work").run()
    assert any("1 labeled items" in c for c in texts(bob.caption))


def test_search_narrows_the_list(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "my_work").run()
    at.text_input(key="mw-search").input("number 1").run()
    assert len([b for b in at.button if b.key and b.key.startswith("edit-")]) == 1
    # Item ids are hidden from annotators, so they do not find items either.
    at.text_input(key="mw-search").input("it-01").run()
    assert texts(at.info) == ["Nothing matches."]
    at.text_input(key="mw-search").input("nothing like this").run()
    assert texts(at.info) == ["Nothing matches."]


def test_editing_a_label_keeps_the_history(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "my_work").run()
    first_edit = next(b.key for b in at.button if b.key and b.key.startswith("edit-"))
    click(at, first_edit)
    assert at.button(key="mw-save")
    assert at.button(key="opt-right_action-answer").proto.type == "primary"
    choose(at, ("right_action", "answer_with_caveat"))
    click(at, "mw-save")
    assert not at.error
    # Named by the handle the annotator saw, not by the hidden item id.
    assert any(re.search(r"Saved your change to #[0-9a-f]{10};", m) for m in texts(at.success))
    annotation_id = int(first_edit.split("-")[1])
    with Session(app_db.engine) as s:
        saved = s.get(Annotation, annotation_id)
        assert saved is not None and saved.labels["right_action"] == "answer_with_caveat"
        history = s.exec(
            select(AnnotationHistory).where(AnnotationHistory.annotation_id == annotation_id)
        ).all()
    assert [h.action for h in history] == ["create", "edit"]
    assert [h.labels["right_action"] for h in history] == ["answer", "answer_with_caveat"]
    # Back on the list after saving.
    assert [b.key for b in at.button if b.key and b.key.startswith("edit-")]


def test_edits_follow_the_consistency_rules(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "my_work").run()
    click(at, next(b.key for b in at.button if b.key and b.key.startswith("edit-")))
    choose(at, ("observed_action", "refuse"))
    click(at, "mw-save")
    assert any("You are overriding this" in w for w in texts(at.warning))
    click(at, "mw-save")
    assert any("needs a rationale" in e for e in texts(at.error))


def test_someone_elses_annotation_cannot_be_opened(app_db: AppDB) -> None:
    with Session(app_db.engine) as s:
        bobs = s.exec(select(Annotation).where(Annotation.user_id == app_db.users["bob"].id)).one()
    at = page_app(app_db, "alice", "my_work")
    at.session_state[my_work.EDIT_KEY] = bobs.id
    at.run()
    assert any("another annotator's" in e for e in texts(at.error))
    assert "BOB-SECRET" not in " ".join(texts(at.markdown) + [t.value for t in at.text_area])
