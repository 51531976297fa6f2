"""A lead page's first load does not wait for a large figure: it shows a placeholder in its
place and the figure on a later run once the background worker has computed it; small
campaigns stay exact and complete at once; `annotate serve` computes the lead figures of
its active campaigns before any lead opens a page. "Large" is made here by lowering
`lead.SMALL_LABELS` and slowing one computation down, never by mocking the database. The
figures compute in the server (`figure_process` off) where a test slows a computation down
by patching it; `test_a_large_dashboard_computed_in_the_figure_process` runs it on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest
from conftest import make_campaign
from lead_helpers import Seeded, forget_warm, seed_campaign
from sqlalchemy import event
from streamlit.testing.v1 import AppTest

from annotate import review
from annotate.app import figure_process, lead, warm_figures, warm_start
from annotate.app.context import AppContext
from annotate.review.figures import ReportFilters
from annotate.schema import LabelSchema
from annotate.settings import get_settings
from annotate.storage import db
from tests.test_app_support import AppDB, app_db_fixture, page_app, texts

CAMPAIGN = "progressive"
WAITING = "Computing the queue's order"


@pytest.fixture
def app_db(db_url: str, monkeypatch: pytest.MonkeyPatch, schema: LabelSchema) -> Iterator[AppDB]:
    monkeypatch.setenv("ANNOTATE_FIGURE_PROCESS", "0")
    yield from app_db_fixture(db_url, monkeypatch, schema)
    forget_warm(db_url)


@pytest.fixture
def seeded(app_db: AppDB, schema: LabelSchema) -> Seeded:
    with db.session_scope(app_db.engine) as s:
        return seed_campaign(s, schema, name=CAMPAIGN)


def as_large(monkeypatch: pytest.MonkeyPatch, app_db: AppDB, seeded: Seeded) -> None:
    """As for 100,000 items (figures computed in the background), with the campaign's labels
    loaded already, as `annotate serve` loads them when it starts."""
    monkeypatch.setattr(lead, "SMALL_LABELS", 0)
    ctx = AppContext(get_settings(database_url=app_db.url), app_db.engine, seeded.lead)
    lead.label_table(ctx, seeded.campaign)
    lead.label_table(ctx, seeded.campaign, adjudications=False)


def open_page(app_db: AppDB, module: str) -> AppTest:
    at = page_app(app_db, "lena", module)
    at.query_params["campaign"] = CAMPAIGN
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown(at: AppTest) -> str:
    parts = texts(at.markdown) + texts(at.caption) + texts(at.info) + texts(at.warning)
    parts += texts(at.subheader) + [str(m.value) for m in at.metric]
    return "\n".join(parts)


def gated(monkeypatch: pytest.MonkeyPatch, name: str) -> threading.Event:
    """`review.<name>` waits until the returned event is set (at most 10 s) before it
    computes: a figure that takes as long as the test wants."""
    go = threading.Event()
    real: Callable[..., Any] = getattr(review, name)

    def slow(*args: Any, **kwargs: Any) -> Any:
        go.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(review, name, slow)
    return go


def test_a_large_first_figure_shows_a_placeholder_then_the_figure(
    app_db: AppDB, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_large(monkeypatch, app_db, seeded)
    go = gated(monkeypatch, "item_disagreement")
    at = open_page(app_db, "review")
    # The run finished while the queue's order was still computing: a placeholder stands in.
    text = shown(at)
    assert WAITING in text and "started" in text
    assert "Unanimous items" not in text
    assert "being computed for the first time" in text
    go.set()
    assert warm_figures.wait_for_figures(30)
    at.run()
    assert not at.exception
    text = shown(at)
    assert WAITING not in text
    assert "Unanimous items" in text  # the queue, from the figure computed meanwhile


def test_a_small_campaign_is_complete_on_its_first_load(
    app_db: AppDB, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Well under SMALL_LABELS: computed in the page even when a figure takes its time.
    go = gated(monkeypatch, "item_disagreement")
    threading.Timer(0.5, go.set).start()
    at = open_page(app_db, "review")
    text = shown(at)
    assert WAITING not in text and "Unanimous items" in text


def test_a_large_figure_done_within_the_wait_is_shown_at_once(
    app_db: AppDB, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_large(monkeypatch, app_db, seeded)
    monkeypatch.setattr(warm_figures, "FRESH_WAIT_S", 30.0)  # no figure here takes that long
    at = open_page(app_db, "dashboard")
    text = shown(at)
    assert "Computing" not in text
    assert "Where to look first" in text and "Alpha over time" in text


def test_a_failed_first_computation_is_shown_and_tried_again(
    app_db: AppDB, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_large(monkeypatch, app_db, seeded)
    monkeypatch.setattr(warm_figures, "RETRY_S", 0.0)
    real = review.model_suggestions
    calls: list[int] = []

    def broken_once(*args: Any, **kwargs: Any) -> pd.DataFrame:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("model on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(review, "model_suggestions", broken_once)
    at = open_page(app_db, "review")
    assert warm_figures.wait_for_figures(30)
    at.run()  # finds the failure, shows it, and tries again
    assert "The last try failed: `model on fire`" in shown(at)
    assert warm_figures.wait_for_figures(30)
    at.run()
    assert "model on fire" not in shown(at) and len(calls) == 2


def test_serve_warms_the_lead_figures_before_any_lead_asks(
    app_db: AppDB, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = review.agreement_report

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(int(kwargs.get("n_resamples", 0)))
        return real(*args, **kwargs)

    monkeypatch.setattr(review, "agreement_report", counted)
    settings = get_settings(database_url=app_db.url)
    assert warm_start.warm_campaigns(settings, app_db.engine) > 0
    assert warm_figures.wait_for_figures(30)
    ctx = AppContext(settings=settings, engine=app_db.engine, user=seeded.lead)
    fkey = lead.filters_key(ReportFilters())
    for name, args, adjudications in [
        ("report", (fkey, 200), True),
        ("items", (fkey,), True),
        ("queue_items", (fkey,), False),
        ("suggestions", (), False),
    ]:
        assert warm_figures.kept(ctx, seeded.campaign, name, args, adjudications=adjudications)
    assert sorted(calls) == [0, 200]
    at = open_page(app_db, "dashboard")
    assert "Where to look first" in shown(at)
    assert sorted(calls) == [0, 200]  # the page was served what the server computed at start


def test_warming_is_off_with_zero_campaigns(app_db: AppDB, seeded: Seeded) -> None:
    settings = get_settings(database_url=app_db.url, warm_campaigns=0)
    assert warm_start.start(settings, app_db.engine) is None
    assert warm_start.warm_campaigns(settings, app_db.engine) == 0


def test_a_large_campaigns_first_load_shows_the_page_while_its_labels_load(
    app_db: AppDB, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lead, "SMALL_LABELS", 0)  # as for 100,000 items
    go = threading.Event()
    real = lead._load

    def slow(*args: Any, **kwargs: Any) -> Any:
        go.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(lead, "_load", slow)
    at = open_page(app_db, "dashboard")
    text = shown(at)
    assert f"Loading the labels of `{CAMPAIGN}`" in text and "started" in text
    assert "Where to look first" not in text
    go.set()
    ctx = AppContext(get_settings(database_url=app_db.url), app_db.engine, seeded.lead)
    for thread in [t for t in threading.enumerate() if t.name.startswith("annotate-first-load")]:
        thread.join(30)
    assert not lead.labels_loading(ctx, seeded.campaign)  # a poll would rerun the page now
    at.run()
    assert not at.exception
    text = shown(at)
    assert "Loading the labels" not in text and "Where to look first" in text


def test_a_large_dashboard_computed_in_the_figure_process(
    app_db: AppDB, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANNOTATE_FIGURE_PROCESS", "1")
    as_large(monkeypatch, app_db, seeded)
    for module, expected in [("dashboard", "Where to look first"), ("review", "Unanimous items")]:
        at = open_page(app_db, module)
        assert warm_figures.wait_for_figures(60)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        text = shown(at)
        assert "Computing" not in text and "failed" not in text, text
        assert expected in text
    child = figure_process.pid()
    assert child is not None and child != os.getpid()  # computed there, not here


def test_the_active_campaigns_are_found_without_reading_every_label(
    app_db: AppDB, seeded: Seeded, schema: LabelSchema
) -> None:
    with db.session_scope(app_db.engine) as s:
        make_campaign(s, schema, name="nobody-labels")
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        statements.append((sql, params))

    event.listen(app_db.engine, "before_cursor_execute", seen)
    try:
        with db.session_scope(app_db.engine) as s:
            found = warm_start.active_campaigns(session=s, limit=3)
    finally:
        event.remove(app_db.engine, "before_cursor_execute", seen)
    assert [c.name for c in found] == [CAMPAIGN]  # none without labels
    if app_db.engine.dialect.name == "sqlite":
        with app_db.engine.connect() as conn:
            plan = " / ".join(
                str(row[-1])
                for sql, params in statements
                for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
            )
        assert "SEARCH annotation USING COVERING INDEX ix_annotation_campaign_updated" in plan
        assert "SCAN annotation" not in plan, plan
