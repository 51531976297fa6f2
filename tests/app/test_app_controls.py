"""Controls and qualification through AppTest: feedback, the verdict, and no tell on the page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import Session, select

from annotate.review import adjudication
from annotate.review.controls import mark_controls, set_control_settings
from annotate.schema import LabelSchema
from annotate.storage import db
from annotate.storage.models import Campaign, Control, Item
from annotate.storage.visibility import item_handle
from tests import test_app_support as support
from tests.conftest import full_labels
from tests.test_app_support import AppDB, label_form, page_app, submit, texts

GOOD = full_labels()
WRONG = full_labels(
    right_action="refuse", intent="harmful", failure_categories=["unsafe_compliance"]
)
NOTE = "A benign question: the **answer** is right."


@pytest.fixture
def app_db(db_url: str, monkeypatch: pytest.MonkeyPatch, schema: LabelSchema) -> Iterator[AppDB]:
    yield from support.app_db_fixture(db_url, monkeypatch, schema, items=8, overlap=1)


def make_controls(app_db: AppDB, schema: LabelSchema, n: int, **settings: Any) -> list[str]:
    """Adjudicate it-00.. it-(n-1), mark them controls, and apply `settings`."""
    lead = app_db.users["lena"]
    ids = [f"it-{i:02d}" for i in range(n)]
    with db.session_scope(app_db.engine) as s:
        items = {it.external_id: it for it in s.exec(select(Item)).all()}
        for ext in ids:
            adjudication.adjudicate(
                session=s,
                actor=lead,
                item_id=items[ext].id or 0,
                labels=schema.normalize_labels(GOOD),
                note=NOTE,
            )
        mark_controls(session=s, actor=lead, campaign=app_db.campaign, external_ids=ids)
        campaign = s.merge(app_db.campaign)
        set_control_settings(session=s, actor=lead, campaign=campaign, **settings)
    return ids


def header(at: support.AppTest) -> str:
    return next(c for c in texts(at.caption) if c.startswith("item "))


def shown_item(app_db: AppDB, at: support.AppTest) -> tuple[str, str]:
    """(handle, external id) of the item on the Label page: annotators see only the handle."""
    handle = header(at).split("`")[1]
    with db.session_scope(app_db.engine) as s:
        for item in s.exec(select(Item).where(Item.campaign_id == app_db.campaign.id)).all():
            if item_handle(campaign=app_db.campaign, item_id=item.id or 0) == handle:
                return handle, item.external_id
    raise AssertionError(f"no item has the handle {handle}")


def shown_text(at: support.AppTest) -> str:
    """Every text the page shows (markdown, captions, notices), lower-cased."""
    parts: list[str] = []
    for kind in ("markdown", "caption", "info", "warning", "success", "error", "title"):
        parts += texts(at.get(kind))
    return "\n".join(parts).lower()


def test_qualification_shows_the_leads_labels_after_each_item(
    app_db: AppDB, schema: LabelSchema
) -> None:
    make_controls(app_db, schema, 3, qualification_items=2, control_rate=0.0)
    at = page_app(app_db, "alice", "label").run()
    assert not at.exception
    assert "qualification**: item 1 of 2" in shown_text(at)
    first, ext = shown_item(app_db, at)
    assert ext in {"it-00", "it-01", "it-02"}
    submit(at, GOOD)
    assert not at.exception and not at.error
    page = shown_text(at)
    assert f"feedback on item `{first}`" in page and "your credit **1.00**" in page
    assert "item 2 of 2" in page
    frame = at.dataframe[0].value
    row = frame[frame["Field"] == "Right action"].iloc[0]
    assert (row["The lead"], row["You"]) == ("answer", "answer")
    assert "the lead's note" in page
    submit(at, GOOD)
    # Qualified: the feedback on the second item, then a real item without the banner.
    page = shown_text(at)
    assert "your credit **1.00**" in page and "qualification**: item" not in page
    assert shown_item(app_db, at)[1] not in {"it-00", "it-01", "it-02"}


def test_a_failed_qualification_keeps_the_items_closed(app_db: AppDB, schema: LabelSchema) -> None:
    make_controls(app_db, schema, 3, qualification_items=2, control_rate=0.0)
    at = page_app(app_db, "bob", "label").run()
    submit(at, WRONG)
    assert "your credit **0.00**" in shown_text(at)
    frame = at.dataframe[0].value
    row = frame[frame["Field"] == "Right action"].iloc[0]
    assert (row["The lead"], row["You"]) == ("answer", "refuse")
    submit(at, WRONG)
    page = shown_text(at)
    assert "stay closed" in page and "a lead can let you try again" in page
    assert label_form(at) is None
    # Alice sees nothing of bob's feedback.
    other = page_app(app_db, "alice", "label").run()
    assert "feedback on item" not in shown_text(other)


def _shape(value: Any) -> Any:
    """The structure of form data: keys and types, not values."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


def test_a_control_looks_like_any_item_on_the_page_and_in_its_data(
    app_db: AppDB, schema: LabelSchema
) -> None:
    controls = set(make_controls(app_db, schema, 3, control_rate=0.5))
    at = page_app(app_db, "alice", "label").run()
    seen: dict[bool, tuple[Any, list[str], str]] = {}
    for _ in range(5):
        form = label_form(at)
        if form is None:
            break
        _handle, ext = shown_item(app_db, at)
        is_control = ext in controls
        page = shown_text(at)
        assert "control" not in page and "control" not in str(form).lower()
        # The schema's description comes with the session's first item, whichever it is, and
        # is named by its id afterwards: compared by that id.
        named = {**form, "form": {"id": form["form"]["id"]}}
        structure = (_shape(named), [type(e).__name__ for e in at.main], page.count("\n"))
        seen.setdefault(is_control, (structure, sorted(form), ext))
        submit(at, GOOD)
    assert set(seen) == {True, False}, "the seeded stream should serve both kinds"
    assert seen[True][0] == seen[False][0]
    assert seen[True][1] == seen[False][1]
    with Session(app_db.engine) as s:
        assert len(s.exec(select(Control)).all()) == 3


def test_the_lead_marks_an_adjudicated_item_as_a_control(
    app_db: AppDB, schema: LabelSchema
) -> None:
    with db.session_scope(app_db.engine) as s:
        item = s.exec(select(Item).where(Item.external_id == "it-05")).one()
        adjudication.adjudicate(
            session=s,
            actor=app_db.users["lena"],
            item_id=item.id or 0,
            labels=schema.normalize_labels(GOOD),
            note=NOTE,
        )
        item_id = item.id
    at = page_app(app_db, "lena", "adjudicate")
    at.query_params["campaign"] = "demo"
    at.query_params["item"] = "it-05"
    at.run()
    assert not at.exception
    toggle = at.toggle(key=f"adj-control-{item_id}")
    assert toggle.value is False
    toggle.set_value(True).run()
    assert not at.exception and not at.error
    with Session(app_db.engine) as s:
        assert s.get(Control, item_id) is not None
    at.toggle(key=f"adj-control-{item_id}").set_value(False).run()
    with Session(app_db.engine) as s:
        assert s.get(Control, item_id) is None


def test_the_dashboard_shows_control_credit_per_annotator(
    app_db: AppDB, schema: LabelSchema
) -> None:
    make_controls(app_db, schema, 3, qualification_items=2, control_rate=0.0)
    for who, labels in (("alice", GOOD), ("bob", WRONG)):
        at = page_app(app_db, who, "label").run()
        submit(at, labels)
        submit(at, labels)
    # Some real labels so that the dashboard has figures.
    at = page_app(app_db, "alice", "label").run()
    submit(at, GOOD)
    dash = page_app(app_db, "lena", "dashboard")
    dash.query_params["campaign"] = "demo"
    dash.run()
    assert not dash.exception, [e.value for e in dash.exception]
    table = next(df.value for df in dash.dataframe if "Control answers" in df.value.columns)
    rows = table.set_index("Annotator")
    assert rows.loc["alice", "Control answers"] == 2
    assert rows.loc["alice", "Credit (banded)"] == 1.0
    assert rows.loc["bob", "Credit (banded)"] == 0.0
    assert rows.loc["alice", "Qualification"] == "passed"
    assert rows.loc["bob", "Qualification"] == "failed"
    assert "to" in rows.loc["alice", "95% interval"]
    assert any("3 control items" in c for c in texts(dash.caption))
    # The annotator table carries the same credit beside agreement (alice has real labels).
    people = next(df.value for df in dash.dataframe if "n_labeled" in df.value.columns)
    people = people.set_index("annotator")
    assert people.loc["alice", "control_credit"] == 1.0
    assert people.loc["alice", "control_answers"] == 2
    assert "-" in people.loc["alice", "control_ci"]
    # The lead lets bob try again.
    dash.button(key="dash-requalify").click().run()
    assert not dash.exception
    with Session(app_db.engine) as s:
        from annotate.labeling import qualification_state

        campaign = s.get(Campaign, app_db.campaign.id)
        assert campaign is not None
        bob = app_db.users["bob"]
        assert qualification_state(session=s, user=bob, campaign=campaign).in_progress
