"""The demo's first run through AppTest: the lead's Dashboard and Review show the simulated
annotators' figures and disagreements, and an annotator's Label page has an item to label."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import streamlit as st
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from annotate.intake.demo import load_demo
from annotate.intake.demo_labels import SIMULATED_NAMES
from annotate.settings import Settings
from annotate.storage import db
from annotate.storage.campaigns import get_campaign
from annotate.storage.models import User
from tests.test_app_support import SECRET, AppDB, label_form, page_app


@pytest.fixture
def demo_db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppDB]:
    monkeypatch.setenv("ANNOTATE_DATABASE_URL", db_url)
    monkeypatch.setenv("ANNOTATE_SECRET_KEY", SECRET)
    load_demo(Settings(database_url=db_url))
    engine = db.make_engine(db_url)
    with Session(engine) as s:
        users = {u.name: u for u in s.exec(select(User)).all()}
        campaign = get_campaign(session=s, name="demo")
    try:
        yield AppDB(url=db_url, engine=engine, campaign=campaign, users=users)
    finally:
        engine.dispose()
        db.dispose_shared()
        st.cache_resource.clear()


def page(app_db: AppDB, user: str, module: str) -> AppTest:
    at = page_app(app_db, user, module)
    at.query_params["campaign"] = "demo"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_dashboard_has_figures_on_the_first_run(demo_db: AppDB) -> None:
    at = page(demo_db, "lena", "dashboard")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Items"] == "303" and metrics["Human annotators"] == str(len(SIMULATED_NAMES))
    assert int(metrics["With 2+ labels"]) > 0
    annotators = next(df.value for df in at.dataframe if "n_labeled" in df.value.columns)
    assert sorted(annotators["annotator"]) == list(SIMULATED_NAMES)


def test_review_lists_the_demo_disagreements(demo_db: AppDB) -> None:
    at = page(demo_db, "lena", "review")
    queue = at.dataframe(key="rev-table").value
    assert len(queue) > 0 and queue["Item"].str.startswith("s2-").all()


def test_an_annotator_gets_an_unlabeled_item(demo_db: AppDB) -> None:
    at = page(demo_db, "alice", "label")
    data = label_form(at)
    # Blind: the annotator's form names the item by its handle, never the seed id.
    assert data is not None and data["item"]["name"].startswith("#")
    assert "s2-" not in str(data)
