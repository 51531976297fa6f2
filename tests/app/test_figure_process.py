"""Lead figures computed in the figure process: the same values as computed in the server, a
failure shown and tried again, a killed process started again without hanging a page, and
pages served while it computes."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest
from lead_helpers import Seeded, forget_warm, seed_campaign
from pydantic import BaseModel
from sqlalchemy.engine import Engine

from annotate.app import dashboard_figures, figure_process, lead, warm_figures
from annotate.app.context import AppContext
from annotate.app.controls_view import credit_of
from annotate.app.pages import review as review_page
from annotate.schema import LabelSchema
from annotate.settings import get_settings
from annotate.storage import db
from annotate.table import LabelTable


@figure_process.recipe
def pid_of(ctx: AppContext, table: LabelTable) -> Callable[[], int]:
    """The id of the process that computes it."""
    return os.getpid


@figure_process.recipe
def broken(ctx: AppContext, table: LabelTable, message: str) -> Callable[[], int]:
    def compute() -> int:
        raise RuntimeError(message)

    return compute


@figure_process.recipe
def sleepy(ctx: AppContext, table: LabelTable, seconds: float) -> Callable[[], int]:
    def compute() -> int:
        time.sleep(seconds)
        return os.getpid()

    return compute


@pytest.fixture
def seeded(engine: Engine, schema: LabelSchema) -> Seeded:
    with db.session_scope(engine) as s:
        return seed_campaign(s, schema, name="procfig")


@pytest.fixture
def ctx(db_url: str, engine: Engine, seeded: Seeded) -> Iterator[AppContext]:
    settings = get_settings(database_url=db_url, figure_process=True)
    yield AppContext(settings=settings, engine=engine, user=seeded.lead, pages={})
    forget_warm(db_url)


@pytest.fixture
def large(monkeypatch: pytest.MonkeyPatch) -> None:
    """As for 100,000 items: every figure is computed in the background."""
    monkeypatch.setattr(lead, "SMALL_LABELS", 0)
    monkeypatch.setattr(warm_figures, "BACKGROUND_SHARE", 1.0)
    monkeypatch.setattr(warm_figures, "RETRY_S", 0.0)


def _same(a: Any, b: Any) -> None:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    elif isinstance(a, tuple | list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    elif isinstance(a, BaseModel):
        assert a.model_dump_json() == b.model_dump_json()
    else:
        assert a == b


def _ready(ctx: AppContext, table: LabelTable, key: str, name: str, compute: Any) -> Any:
    warm_figures.figure(ctx, table.campaign, name, (), key, compute)
    assert warm_figures.wait_for_figures(60)
    return warm_figures.figure(ctx, table.campaign, name, (), key, compute)


def test_the_process_computes_what_the_server_computes(ctx: AppContext, seeded: Seeded) -> None:
    table, key = lead.label_table(ctx, seeded.campaign)
    queue, queue_key = lead.label_table(ctx, seeded.campaign, adjudications=False)
    drift = dashboard_figures.drift_of(ctx, table)()
    wanted = [(w.compute, w.adjudications) for w in dashboard_figures.lead_figures(ctx, table)]
    wanted += [(w.compute, False) for w in review_page.lead_figures(ctx, queue)]
    wanted.append((credit_of(ctx, table, dict(drift)), True))
    for compute, adjudications in wanted:
        at = queue_key if not adjudications else key
        job = figure_process.job_for(ctx, seeded.campaign, at, compute, adjudications)
        assert job is not None, compute
        got = figure_process.result(job, compute, at, 0.0)
        assert got.key == at and got.as_of > 0
        _same(got.value, compute())


def test_figures_of_a_large_campaign_are_computed_in_the_other_process(
    ctx: AppContext, seeded: Seeded, large: None
) -> None:
    table, key = lead.label_table(ctx, seeded.campaign)
    served = _ready(ctx, table, key, "pid", pid_of(ctx, table))
    assert served.ready and served.value != os.getpid()
    assert served.value == figure_process.pid()
    # Off: the same figure computes in the server.
    settings = ctx.settings.model_copy(update={"figure_process": False})
    off = AppContext(settings, ctx.engine, ctx.user)
    here = _ready(off, table, key, "pid here", pid_of(off, table))
    assert here.value == os.getpid()


def test_a_failure_in_the_process_is_shown_and_tried_again(
    ctx: AppContext, seeded: Seeded, large: None
) -> None:
    table, key = lead.label_table(ctx, seeded.campaign)
    warm_figures.figure(ctx, table.campaign, "flaky", (), key, broken(ctx, table, "on fire"))
    assert warm_figures.wait_for_figures(60)
    assert warm_figures.errors(ctx, seeded.campaign) == ["on fire"]
    # The next load shows the failure while it tries again (here with a computation that works).
    served = warm_figures.figure(ctx, table.campaign, "flaky", (), key, pid_of(ctx, table))
    assert not served.ready and served.computing and served.error == "on fire"
    assert warm_figures.wait_for_figures(60)
    again = warm_figures.figure(ctx, table.campaign, "flaky", (), key, pid_of(ctx, table))
    assert again.ready and again.value == figure_process.pid()
    assert warm_figures.errors(ctx, seeded.campaign) == []


def test_a_killed_process_fails_its_figure_and_is_started_again(
    ctx: AppContext, seeded: Seeded, large: None
) -> None:
    table, key = lead.label_table(ctx, seeded.campaign)
    started = time.monotonic()
    served = warm_figures.figure(ctx, table.campaign, "slow", (), key, sleepy(ctx, table, 60))
    assert not served.ready and served.computing
    assert time.monotonic() - started < 2  # the page did not wait for it
    while figure_process.pid() is None and time.monotonic() - started < 30:
        time.sleep(0.05)
    killed = figure_process.pid()
    assert killed is not None
    time.sleep(0.5)
    os.kill(killed, signal.SIGKILL)
    assert warm_figures.wait_for_figures(10)  # the worker noticed; nothing hangs
    failed = warm_figures.figure(ctx, table.campaign, "other", (), key, pid_of(ctx, table))
    kept = warm_figures.figure(ctx, table.campaign, "slow", (), key, sleepy(ctx, table, 0))
    assert kept.error is not None and "figure process stopped" in kept.error
    assert warm_figures.wait_for_figures(60)
    assert not failed.ready
    again = warm_figures.figure(ctx, table.campaign, "other", (), key, pid_of(ctx, table))
    assert again.ready and again.value not in (killed, os.getpid())
    assert warm_figures.figure(ctx, table.campaign, "slow", (), key, sleepy(ctx, table, 0)).ready


def test_pages_are_served_while_the_process_computes(
    ctx: AppContext, seeded: Seeded, large: None
) -> None:
    table, key = lead.label_table(ctx, seeded.campaign)
    first = _ready(ctx, table, key, "pid", pid_of(ctx, table))
    warm_figures.figure(ctx, table.campaign, "slow", (), key, sleepy(ctx, table, 3))
    # While the process computes for seconds, every load is served at once from what is kept.
    for _ in range(5):
        started = time.monotonic()
        served = warm_figures.figure(ctx, table.campaign, "pid", (), key, pid_of(ctx, table))
        assert served.value == first.value and time.monotonic() - started < 0.2
        time.sleep(0.1)
    slow = warm_figures.figure(ctx, table.campaign, "slow", (), key, sleepy(ctx, table, 3))
    assert not slow.ready and slow.computing
    assert warm_figures.wait_for_figures(60)


def test_serve_starts_the_process_loading_its_labels(ctx: AppContext, seeded: Seeded) -> None:
    off = ctx.settings.model_copy(update={"figure_process": False})
    assert figure_process.prepare(off, [seeded.campaign.id or 0]) is None
    thread = figure_process.prepare(ctx.settings, [seeded.campaign.id or 0])
    assert thread is not None
    thread.join(60)
    assert not thread.is_alive() and figure_process.pid() is not None
