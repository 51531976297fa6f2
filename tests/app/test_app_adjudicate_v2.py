"""The adjudication page under refusal-v2: fields follow `show_when` as on the label form (not
shown, not required, null in the final labels when hidden), and the lead records why the
annotators disagreed (`disagreement_cause`), which the gold record carries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import ADMIN, DEFAULT_SCHEMA_PATH, make_campaign, make_item, make_user
from sqlmodel import col, select
from streamlit.testing.v1 import AppTest

from annotate import storage
from annotate.schema import load_schema
from annotate.storage import db
from annotate.storage.models import Adjudication, Item
from tests.test_app_support import AppDB, app_db_fixture, click, page_app, texts

V2 = load_schema(DEFAULT_SCHEMA_PATH.parent / "refusal-v2.yaml")
CAMPAIGN = "lead2"
BASE = {
    "intent": "benign",
    "epistemic_status": "answerable",
    "harm_area": "none",
    "severity": "none",
    "right_action": "answer",
    "observed_action": "answer",
    "answer_quality": "useful",
    "failure_categories": [],
    "confidence": "high",
}
# Annotators split on the right action; all say the response answered, usefully.
SPLIT = [
    BASE,
    {**BASE, "right_action": "clarify", "noncompliance_reason": "incomplete"},
    {**BASE, "right_action": "refuse", "noncompliance_reason": "safety"},
]


@pytest.fixture
def app_db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppDB]:
    yield from app_db_fixture(db_url, monkeypatch, V2)


@pytest.fixture
def seeded(app_db: AppDB) -> None:
    with db.session_scope(app_db.engine) as s:
        campaign = make_campaign(s, V2, name=CAMPAIGN, overlap=3)
        storage.import_items(
            session=s, actor=ADMIN, campaign=campaign, records=[make_item(external_id="s1")]
        )
        item = s.exec(select(Item).where(Item.campaign_id == campaign.id)).one()
        for i, labels in enumerate(SPLIT):
            user = make_user(s, f"ann{i}")
            storage.save_annotation(
                session=s, user=user, item=item, labels=V2.normalize_labels(labels)
            )


def adjudications(app_db: AppDB) -> list[Adjudication]:
    with db.session_scope(app_db.engine) as s:
        return list(s.exec(select(Adjudication).order_by(col(Adjudication.id))).all())


def page(app_db: AppDB) -> AppTest:
    at = page_app(app_db, "lena", "adjudicate")
    at.query_params["campaign"] = CAMPAIGN
    at.query_params["item"] = "s1"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.toggle(key="adj-advance").set_value(False)
    # The lead's own confidence is never pre-filled.
    return click(at, "opt-confidence-high")


def buttons(at: AppTest, field: str) -> list[str]:
    return [b.key for b in at.button if str(b.key).startswith(f"opt-{field}-")]


def cause(at: AppTest) -> Any:
    """The disagreement-cause select (its key carries the item and adjudication)."""
    [found] = [b for b in at.selectbox if str(b.key).startswith("adj-cause-")]
    return found


def scope_of(at: AppTest) -> str:
    key = next(str(t.key) for t in at.text_area if str(t.key).startswith("adj-note-"))
    return key.removeprefix("adj-note-")


def test_hidden_fields_are_not_shown_required_or_kept(app_db: AppDB, seeded: None) -> None:
    at = page(app_db)
    # The observed action answered: its quality shows, the refusal style does not; no right
    # action is chosen yet (a three-way tie), so why-not-an-answer waits for it.
    assert buttons(at, "answer_quality") and not buttons(at, "refusal_style")
    click(at, "opt-right_action-clarify")
    assert buttons(at, "noncompliance_reason")
    click(at, "opt-noncompliance_reason-incomplete")
    # The lead decides the response refused: quality goes, style comes and is required.
    click(at, "opt-observed_action-refuse")
    assert not buttons(at, "answer_quality") and buttons(at, "refusal_style")
    at.text_area(key=f"adj-note-{scope_of(at)}").input("Ask what they mean first.")
    at.run()
    click(at, "adj-save")
    assert texts(at.error) == ["Not saved: choose the final How it declined."], texts(at.error)
    assert adjudications(app_db) == []
    click(at, "opt-refusal_style-bare")
    cause(at).set_value("guideline_gap")
    at.run()
    click(at, "adj-save")
    assert not at.exception and not texts(at.error), texts(at.error)
    [row] = adjudications(app_db)
    labels: dict[str, Any] = row.labels
    # The annotators' answer_quality was pre-filled, but the field is hidden: null.
    assert labels["answer_quality"] is None
    assert labels["refusal_style"] == "bare"
    assert labels["noncompliance_reason"] == "incomplete"
    assert row.disagreement_cause == "guideline_gap"
    # Re-adjudicating starts from the stored cause; the history shows it.
    again = page(app_db)
    assert cause(again).value == "guideline_gap"
    assert any("disagreement: `guideline_gap`" in m for m in texts(again.markdown))


def test_choosing_answer_hides_the_noncompliance_reason(app_db: AppDB, seeded: None) -> None:
    at = page(app_db)
    click(at, "opt-right_action-refuse")
    click(at, "opt-noncompliance_reason-safety")
    click(at, "opt-right_action-answer")
    assert not buttons(at, "noncompliance_reason")
    # No rule warning may talk about a field that is not shown.
    assert not any("noncompliance" in w for w in texts(at.warning))
    click(at, "adj-save")
    assert not texts(at.error), texts(at.error)
    [row] = adjudications(app_db)
    assert row.labels["noncompliance_reason"] is None
    # Nothing chosen for the cause: not recorded; the select starts from the stored one.
    assert row.disagreement_cause is None
    at = page(app_db)
    assert cause(at).value is None


def test_a_v1_campaign_has_no_cause_select(app_db: AppDB, seeded: None) -> None:
    v1 = load_schema(DEFAULT_SCHEMA_PATH)
    with db.session_scope(app_db.engine) as s:
        campaign = make_campaign(s, v1, name="old", overlap=1)
        storage.import_items(
            session=s, actor=ADMIN, campaign=campaign, records=[make_item(external_id="o1")]
        )
    at = page_app(app_db, "lena", "adjudicate")
    at.query_params["campaign"] = "old"
    at.query_params["item"] = "o1"
    at.run()
    assert not at.exception
    assert not [b for b in at.selectbox if str(b.key).startswith("adj-cause")]
