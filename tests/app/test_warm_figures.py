"""Lead figures stay warm: after a submit a large campaign's page gets the figures already
computed at once, and what the background then computes equals a full recomputation."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pandas as pd
import pytest
from conftest import make_user
from lead_helpers import Seeded, forget_warm, full_labels, seed_campaign
from sqlalchemy.engine import Engine
from sqlmodel import select

from annotate import review, storage
from annotate.app import lead, warm_figures
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
        return seed_campaign(s, schema, name="warmfig")


@pytest.fixture
def ctx(db_url: str, engine: Engine, seeded: Seeded) -> Iterator[AppContext]:
    yield AppContext(
        settings=get_settings(database_url=db_url), engine=engine, user=seeded.lead, pages={}
    )
    forget_warm(db_url)


def _add_label(engine: Engine, seeded: Seeded, schema: LabelSchema, name: str, item: str) -> None:
    with db.session_scope(engine) as s:
        row = s.exec(select(Item).where(Item.id == seeded.items[item])).one()
        user = s.exec(select(User).where(User.name == name)).first() or make_user(s, name)
        storage.save_annotation(
            session=s,
            user=user,
            item=row,
            labels=schema.normalize_labels(full_labels(right_action="refuse")),
        )


def _fresh(engine: Engine, seeded: Seeded) -> LabelTable:
    with db.session_scope(engine) as s:
        return load_labels(session=s, actor=seeded.lead, campaign=seeded.campaign)


def _items(ctx: AppContext, table: LabelTable, key: str) -> warm_figures.Served[pd.DataFrame]:
    return warm_figures.figure(
        ctx,
        table.campaign,
        "items",
        (),
        key,
        lambda: review.item_disagreement(table, actor=ctx.user),
    )


def _computed(ctx: AppContext, table: LabelTable, key: str) -> warm_figures.Served[pd.DataFrame]:
    """The figure once its first computation is done (in the background when it is large)."""
    _items(ctx, table, key)
    assert warm_figures.wait_for_figures(30)
    served = _items(ctx, table, key)
    assert served.ready
    return served


def test_a_submit_serves_the_figure_computed_while_the_new_one_computes(
    ctx: AppContext,
    engine: Engine,
    seeded: Seeded,
    schema: LabelSchema,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As for a large campaign: labels and figures take longer than a page waits.
    monkeypatch.setattr(lead, "FRESH_WAIT_S", 0.0)
    monkeypatch.setattr(warm_figures, "FRESH_WAIT_S", 0.0)
    monkeypatch.setattr(warm_figures, "BACKGROUND_SHARE", 1.0)
    table, key = lead.label_table(ctx, seeded.campaign)
    first = _computed(ctx, table, key)
    assert not first.stale
    assert _items(ctx, table, key).value is first.value  # kept, not recomputed

    for who, item in [("dora", "i6"), ("erin", "i6"), ("dora", "i1")]:
        _add_label(engine, seeded, schema, who, item)
        lead.label_table(ctx, seeded.campaign)  # starts loading the new labels
        assert lead.wait_for_labels(ctx, seeded.campaign, timeout_s=30)
        # The background computation waits until the test has seen the page served.
        go = threading.Event()
        real = review.item_disagreement

        def slow(
            *args: object, go: threading.Event = go, real: object = real, **kwargs: object
        ) -> pd.DataFrame:
            assert go.wait(30)
            return real(*args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(review, "item_disagreement", slow)
        newer, newer_key = lead.label_table(ctx, seeded.campaign)
        assert newer_key != key
        served = _items(ctx, newer, newer_key)
        # At once, the figure computed before, marked stale; no second computation starts.
        assert served.stale and served.value is first.value
        assert _items(ctx, newer, newer_key).value is first.value
        go.set()
        assert warm_figures.wait_for_figures(30)
        monkeypatch.setattr(review, "item_disagreement", real)
        done = _items(ctx, newer, newer_key)
        assert not done.stale
        # What the background computed is what a full recomputation from the database gives.
        expected = review.item_disagreement(_fresh(engine, seeded), actor=seeded.lead)
        pd.testing.assert_frame_equal(done.value, expected)
        assert int(done.value["n_labels"].sum()) == int(first.value["n_labels"].sum()) + 1
        first, key = done, newer_key


def test_a_small_campaign_gets_exact_figures(
    ctx: AppContext, engine: Engine, seeded: Seeded, schema: LabelSchema
) -> None:
    table, key = lead.label_table(ctx, seeded.campaign)
    before = _items(ctx, table, key).value
    _add_label(engine, seeded, schema, "dora", "i6")
    # Labels and the figure take milliseconds here: computed in the page, never stale.
    newer, newer_key = lead.label_table(ctx, seeded.campaign)
    served = _items(ctx, newer, newer_key)
    assert not served.stale
    assert int(served.value["n_labels"].sum()) == int(before["n_labels"].sum()) + 1


def test_a_failed_background_computation_keeps_the_figure_and_says_so(
    ctx: AppContext,
    engine: Engine,
    seeded: Seeded,
    schema: LabelSchema,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(warm_figures, "FRESH_WAIT_S", 0.0)
    monkeypatch.setattr(warm_figures, "BACKGROUND_SHARE", 1.0)
    table, key = lead.label_table(ctx, seeded.campaign)
    first = _computed(ctx, table, key)
    _add_label(engine, seeded, schema, "dora", "i6")
    lead.label_table(ctx, seeded.campaign)  # starts loading the new labels
    assert lead.wait_for_labels(ctx, seeded.campaign, timeout_s=30)  # however busy the machine
    newer, newer_key = lead.label_table(ctx, seeded.campaign)
    assert newer_key != key

    def broken() -> pd.DataFrame:
        raise RuntimeError("disk on fire")

    served = warm_figures.figure(ctx, newer.campaign, "items", (), newer_key, broken)
    assert served.stale and served.value is first.value
    assert warm_figures.wait_for_figures(30)
    assert warm_figures.errors(ctx, seeded.campaign) == ["disk on fire"]
    # The next load tries again, and serves the figure kept meanwhile.
    again = _items(ctx, newer, newer_key)
    assert again.value is first.value
    assert warm_figures.wait_for_figures(30)
    assert not _items(ctx, newer, newer_key).stale


def test_a_large_campaign_recomputes_no_figure_in_the_page_however_quick(
    ctx: AppContext,
    engine: Engine,
    seeded: Seeded,
    schema: LabelSchema,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As for 100,000 items: each figure takes well under FRESH_WAIT_S, but a page holds about
    # ten, so after a submit they are served as kept and recomputed in the background.
    monkeypatch.setattr(lead, "SMALL_LABELS", 0)
    monkeypatch.setattr(warm_figures, "BACKGROUND_SHARE", 1.0)
    table, key = lead.label_table(ctx, seeded.campaign)
    first = _computed(ctx, table, key)
    assert first.value is not None
    _add_label(engine, seeded, schema, "dora", "i6")
    lead.label_table(ctx, seeded.campaign)  # starts loading the new labels (not waited for)
    assert lead.wait_for_labels(ctx, seeded.campaign, timeout_s=30)
    newer, newer_key = lead.label_table(ctx, seeded.campaign)
    assert newer_key != key
    page_thread = threading.get_ident()
    computed_in: list[int] = []
    real = review.item_disagreement

    def watched(*args: object, **kwargs: object) -> pd.DataFrame:
        computed_in.append(threading.get_ident())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(review, "item_disagreement", watched)
    served = _items(ctx, newer, newer_key)
    assert served.stale and served.value is first.value
    assert warm_figures.wait_for_figures(30)
    assert computed_in and page_thread not in computed_in
    done = _items(ctx, newer, newer_key)
    assert not done.stale
    assert int(done.value["n_labels"].sum()) == int(first.value["n_labels"].sum()) + 1
