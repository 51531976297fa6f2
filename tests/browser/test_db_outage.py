"""PostgreSQL goes away while an annotator works: the page says it cannot save, keeps her
choices, and saves them once the database is back.

The app runs against a private cluster the test starts and stops itself (tests/pgtemp.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from annotate.storage import db
from annotate.storage.models import Annotation, Item
from tests import pgtemp
from tests.browser.conftest import Guarded, free_port, seed, sign_in, start_server
from tests.browser.load_helpers import BY_KEY, CHANGED, HEADER, IDLE, expected_labels, make_items

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not pgtemp.available(), reason="PostgreSQL server binaries are missing"),
]

KEYS = "bn2w8"
CHOSEN = "[class*='st-key-opt-'] [data-testid=stBaseButton-primary]"


@pytest.fixture
def cluster() -> Iterator[pgtemp.TempCluster]:
    made = pgtemp.TempCluster()
    try:
        made.start()
        yield made
    finally:
        made.close()


def chosen(page: object) -> set[str]:
    """The option buttons shown as chosen, as `field-value` keys."""
    classes: list[str] = page.eval_on_selector_all(  # type: ignore[attr-defined]
        CHOSEN,
        "els => els.map(e => [...e.closest('[class*=\"st-key-opt-\"]').classList]"
        ".find(c => c.startsWith('st-key-opt-')))",
    )
    return {c.removeprefix("st-key-opt-") for c in classes}


def test_submit_while_the_database_is_down_keeps_the_choices(
    cluster: pgtemp.TempCluster, guarded: Guarded, tmp_path: Path
) -> None:
    seed(cluster.url, make_items(3), {"alice": "annotator"}, name="outage", overlap=2, seed=3)
    port = free_port()
    server = start_server(["serve", "--port", str(port)], cluster.url, tmp_path, port)
    page = guarded.page
    try:
        sign_in(page, server.url, "alice")
        page.wait_for_selector(HEADER)
        page.wait_for_function(IDLE)
        header = page.inner_text(HEADER)
        for key in KEYS:
            name, value = BY_KEY[key]
            page.keyboard.press(key)
            page.wait_for_selector(f".st-key-opt-{name}-{value} [data-testid=stBaseButton-primary]")
        picked = {"-".join(BY_KEY[k]) for k in KEYS}
        assert chosen(page) == picked

        cluster.stop()
        page.keyboard.press("Control+Enter")
        page.wait_for_selector("[data-testid=stAlert]")
        page.wait_for_function(IDLE)
        shown = page.inner_text("body")
        assert "Can't save right now" in page.inner_text("[data-testid=stAlert]"), shown
        assert "Traceback" not in shown and "OperationalError" not in shown
        assert page.inner_text(HEADER) == header
        assert chosen(page) == picked

        cluster.start()
        page.keyboard.press("Control+Enter")
        page.wait_for_function(CHANGED, arg=header)
        assert guarded.blocked == []
    finally:
        server.stop()

    external_id = header.split("·")[0].replace("item", "").strip()
    engine = db.make_engine(cluster.url)
    try:
        with Session(engine) as s:
            rows = s.exec(
                select(Annotation.labels, Item.external_id).join(
                    Item, col(Item.id) == Annotation.item_id
                )
            ).all()
    finally:
        engine.dispose()
    assert [(labels, ext) for labels, ext in rows] == [(expected_labels(KEYS), external_id)]
