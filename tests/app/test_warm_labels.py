"""Lead pages stay warm: a submit never makes the next lead page wait for a full reload."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from conftest import make_user
from lead_helpers import Seeded, full_labels, seed_campaign
from sqlalchemy.engine import Engine
from sqlmodel import select

from annotate import storage
from annotate.app import lead
from annotate.app.context import AppContext
from annotate.schema import LabelSchema
from annotate.settings import get_settings
from annotate.storage import db
from annotate.storage.models import Item, User
from annotate.storage.queries import load_labels
from annotate.table import LabelTable


@pytest.fixture
def seeded(engine: Engine, schema: LabelSchema) -> Seeded:
    with db.session_scope(engine) as s:
        return seed_campaign(s, schema, name="warm")


@pytest.fixture
def ctx(db_url: str, engine: Engine, seeded: Seeded) -> Iterator[AppContext]:
    yield AppContext(
        settings=get_settings(database_url=db_url), engine=engine, user=seeded.lead, pages={}
    )
    with lead._WARM_LOCK:
        for slot in [k for k in lead._WARM if k[0] == db_url]:
            lead._WARM.pop(slot)


def _add_label(engine: Engine, seeded: Seeded, schema: LabelSchema, name: str) -> None:
    with db.session_scope(engine) as s:
        item = s.exec(select(Item).where(Item.id == seeded.items["i6"])).one()
        user = s.exec(select(User).where(User.name == name)).first() or make_user(s, name)
        storage.save_annotation(
            session=s,
            user=user,
            item=item,
            labels=schema.normalize_labels(full_labels(right_action="refuse")),
        )


def _fresh(engine: Engine, seeded: Seeded) -> LabelTable:
    with db.session_scope(engine) as s:
        return load_labels(session=s, actor=seeded.lead, campaign=seeded.campaign)


def test_a_submit_serves_the_loaded_labels_while_the_new_ones_load(
    ctx: AppContext,
    engine: Engine,
    seeded: Seeded,
    schema: LabelSchema,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, key = lead.label_table(ctx, seeded.campaign)
    assert len(first.humans()) == len(_fresh(engine, seeded).humans())
    assert lead.freshness(ctx, seeded.campaign) is not None
    assert not lead.freshness(ctx, seeded.campaign).refreshing  # type: ignore[union-attr]

    # A slow database: the background load waits until the test lets it go.
    go = threading.Event()
    real = lead._load

    def slow(*args: object) -> LabelTable:
        assert go.wait(30)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(lead, "_load", slow)
    # As for a large campaign: its last load took longer than a page waits.
    monkeypatch.setattr(lead, "FRESH_WAIT_S", 0.0)
    _add_label(engine, seeded, schema, "dora")
    served, served_key = lead.label_table(ctx, seeded.campaign)
    # The page is answered at once with what was loaded; the figures cached under `key` hold.
    assert served is first and served_key == key
    state = lead.freshness(ctx, seeded.campaign)
    assert state is not None and state.refreshing
    # Another page load meanwhile starts no second load.
    again, _ = lead.label_table(ctx, seeded.campaign)
    assert again is first
    go.set()
    assert lead.wait_for_labels(ctx, seeded.campaign, timeout_s=30)
    newest, newest_key = lead.label_table(ctx, seeded.campaign)
    assert newest_key != key
    # What is served after the refresh is what a full load gives.
    fresh = _fresh(engine, seeded).humans()
    got = newest.humans()
    assert len(got) == len(first.humans()) + 1
    columns = ["item_id", "annotator", "right_action"]
    assert got[columns].reset_index(drop=True).equals(fresh[columns].reset_index(drop=True))
    assert not lead.freshness(ctx, seeded.campaign).refreshing  # type: ignore[union-attr]


def test_a_small_campaign_is_served_its_newest_labels(
    ctx: AppContext, engine: Engine, seeded: Seeded, schema: LabelSchema
) -> None:
    first, key = lead.label_table(ctx, seeded.campaign)
    _add_label(engine, seeded, schema, "dora")
    # The reload takes milliseconds here, within the page's short wait: no stale figures.
    newest, newest_key = lead.label_table(ctx, seeded.campaign)
    assert newest_key != key and len(newest.humans()) == len(first.humans()) + 1


def test_a_failed_refresh_keeps_the_loaded_labels_and_says_so(
    ctx: AppContext,
    engine: Engine,
    seeded: Seeded,
    schema: LabelSchema,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, key = lead.label_table(ctx, seeded.campaign)

    def broken(*args: object) -> LabelTable:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(lead, "_load", broken)
    monkeypatch.setattr(lead, "FRESH_WAIT_S", 0.0)
    _add_label(engine, seeded, schema, "dora")
    served, served_key = lead.label_table(ctx, seeded.campaign)
    assert lead.wait_for_labels(ctx, seeded.campaign, timeout_s=30)
    state = lead.freshness(ctx, seeded.campaign)
    assert served is first and served_key == key
    assert state is not None and state.error == "disk on fire" and not state.refreshing


def test_a_large_campaigns_refresh_waits_for_the_page_being_rendered(
    ctx: AppContext,
    engine: Engine,
    seeded: Seeded,
    schema: LabelSchema,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lead, "FRESH_WAIT_S", 0.0)  # as for a large campaign: nobody waits
    _, key = lead.label_table(ctx, seeded.campaign)
    _add_label(engine, seeded, schema, "dora")
    with lead.rendering():
        served, served_key = lead.label_table(ctx, seeded.campaign)  # starts the refresh
        assert served_key == key
        # It does not share the interpreter with the page: it waits until the run is over.
        assert not lead.wait_for_labels(ctx, seeded.campaign, timeout_s=0.0)
        time.sleep(0.3)
        assert lead.freshness(ctx, seeded.campaign).refreshing  # type: ignore[union-attr]
    assert lead.wait_for_labels(ctx, seeded.campaign, timeout_s=30)
    assert lead.label_table(ctx, seeded.campaign)[1] != key


def test_a_page_asking_for_the_newest_labels_does_not_wait_for_itself(
    ctx: AppContext,
    engine: Engine,
    seeded: Seeded,
    schema: LabelSchema,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lead, "FRESH_WAIT_S", 0.0)
    monkeypatch.setattr(lead, "PAGE_WAIT_S", 60.0)
    _, key = lead.label_table(ctx, seeded.campaign)
    _add_label(engine, seeded, schema, "dora")
    with lead.rendering():
        lead.label_table(ctx, seeded.campaign)
        started = time.monotonic()
        assert lead.wait_for_labels(ctx, seeded.campaign, timeout_s=30)  # "Show the newest"
        assert time.monotonic() - started < 10
        assert lead.label_table(ctx, seeded.campaign)[1] != key


def test_a_large_campaigns_page_does_not_wait_for_its_quick_refresh(
    ctx: AppContext,
    engine: Engine,
    seeded: Seeded,
    schema: LabelSchema,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, key = lead.label_table(ctx, seeded.campaign)  # a quick load: a small campaign waits
    monkeypatch.setattr(lead, "SMALL_LABELS", 0)  # as for 100,000 items
    go = threading.Event()
    real = lead._load

    def slow(*args: object) -> object:
        go.wait(10)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(lead, "_load", slow)
    _add_label(engine, seeded, schema, "dora")
    started = time.monotonic()
    assert lead.label_table(ctx, seeded.campaign)[1] == key  # the labels already loaded
    assert time.monotonic() - started < 0.5  # at once, not after lead.FRESH_WAIT_S
    go.set()
    assert lead.wait_for_labels(ctx, seeded.campaign, timeout_s=30)
    assert lead.label_table(ctx, seeded.campaign)[1] != key
