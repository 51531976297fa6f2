"""The adjudication page: an incomplete save names every missing field above the final labels
and focuses the first; final labels that break a rule need a note, which records the override."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import ADMIN, full_labels, make_campaign, make_item, make_user
from lead_helpers import Seeded, seed_campaign
from sqlmodel import col, select
from streamlit.testing.v1 import AppTest

from annotate import storage
from annotate.schema import LabelSchema
from annotate.storage import db
from annotate.storage.models import Adjudication, Item
from tests.test_app_support import AppDB, app_db_fixture, click, page_app, texts

CAMPAIGN = "lead"


@pytest.fixture
def app_db(db_url: str, monkeypatch: pytest.MonkeyPatch, schema: LabelSchema) -> Iterator[AppDB]:
    yield from app_db_fixture(db_url, monkeypatch, schema)


@pytest.fixture
def seeded(app_db: AppDB, schema: LabelSchema) -> Seeded:
    with db.session_scope(app_db.engine) as s:
        return seed_campaign(s, schema, name=CAMPAIGN)


def adjudications(app_db: AppDB) -> list[Adjudication]:
    with db.session_scope(app_db.engine) as s:
        return list(s.exec(select(Adjudication).order_by(col(Adjudication.id))).all())


def page(app_db: AppDB, item: str) -> AppTest:
    at = page_app(app_db, "lena", "adjudicate")
    at.query_params["campaign"] = CAMPAIGN
    at.query_params["item"] = item
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def find(node: Any, key: str) -> Any:
    """The block with widget key `key` under `node` (depth first), else None."""
    if getattr(node, "key", None) == key:
        return node
    for child in getattr(node, "children", {}).values():
        found = find(child, key)
        if found is not None:
            return found
    return None


def scripts(at: AppTest) -> str:
    return "\n".join(str(e.proto.body) for e in at.get("html"))


def test_incomplete_save_names_every_field_at_the_top_and_focuses_the_first(
    app_db: AppDB, seeded: Seeded
) -> None:
    # i3: three annotators, three right actions and three intents: no majority on either.
    at = page(app_db, "i3")
    click(at, "adj-save")
    errors = texts(at.error)
    assert errors == [
        "Not saved: choose the final Intent of the request (annotators tied: harmful, "
        "benign, ambiguous), Right action (annotators tied: refuse, answer, clarify), "
        "Your confidence."
    ], errors
    # The message sits in the problem box above the option buttons, ...
    box = find(at.main, "adj-problem")
    assert box is not None and texts(box.error) == errors
    html = scripts(at)
    # ... which is scrolled to the top of the window; the first missing field gets the focus.
    assert ".st-key-adj-problem" in html and "scrollIntoView({block:'start'})" in html
    assert ".st-key-opt-intent-benign button" in html
    assert adjudications(app_db) == []


def test_rule_breaking_final_labels_need_a_note_that_records_the_override(
    app_db: AppDB, seeded: Seeded
) -> None:
    at = page(app_db, "i1")
    at.toggle(key="adj-advance").set_value(False)
    click(at, "opt-observed_action-refuse")
    click(at, "opt-confidence-high")
    shown = "\n".join(texts(at.warning) + texts(at.caption))
    assert "over_refusal is not ticked" in shown
    assert "saving them needs a note" in shown
    click(at, "adj-save")
    assert any("over_refusal_unticked" in e and "add a note" in e for e in texts(at.error))
    assert adjudications(app_db) == []
    scope = f"adj-{seeded.items['i1']}-0"
    at.text_area(key=f"adj-note-{scope}").input("A refusal was right: the link is dead.")
    at.run()
    click(at, "adj-save")
    rows = adjudications(app_db)
    assert len(rows) == 1 and rows[0].overridden_rules == ["over_refusal_unticked"]


def test_failure_categories_nobody_gave_start_unset_and_none_apply_is_a_label(
    app_db: AppDB, schema: LabelSchema
) -> None:
    given = {k: v for k, v in full_labels().items() if k != "failure_categories"}
    with db.session_scope(app_db.engine) as s:
        campaign = make_campaign(s, schema, name=CAMPAIGN, overlap=2)
        storage.import_items(
            session=s, actor=ADMIN, campaign=campaign, records=[make_item(external_id="nf")]
        )
        item = s.exec(select(Item).where(Item.external_id == "nf")).one()
        for who in ("ann1", "ann2"):
            storage.save_annotation(
                session=s, user=make_user(s, who), item=item, labels=dict(given)
            )
    at = page(app_db, "nf")
    at.toggle(key="adj-advance").set_value(False)
    assert all(
        at.button(key=f"opt-failure_categories-{v}").proto.type == "secondary"
        for v in schema.field("failure_categories").values
    )
    assert any("Failure categories: unset" in c for c in texts(at.caption))
    click(at, "opt-confidence-high")
    click(at, "adj-save")
    assert adjudications(app_db)[-1].labels["failure_categories"] is None
    click(at, "adj-none-failure_categories")
    assert not any("Failure categories: unset" in c for c in texts(at.caption))
    click(at, "adj-save")
    assert adjudications(app_db)[-1].labels["failure_categories"] == []
