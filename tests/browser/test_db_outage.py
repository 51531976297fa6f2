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
from tests.browser.form_helpers import (
    CHANGED,
    LABEL_SETS,
    assignment,
    chosen,
    expected_labels,
    item_ids,
    keys_for,
    option,
)
from tests.browser.load_helpers import HEADER, make_items

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not pgtemp.available(), reason="PostgreSQL server binaries are missing"),
]

LABELS = LABEL_SETS[1]


@pytest.fixture
def cluster() -> Iterator[pgtemp.TempCluster]:
    made = pgtemp.TempCluster()
    try:
        made.start()
        yield made
    finally:
        made.close()


def test_submit_while_the_database_is_down_keeps_the_choices(
    cluster: pgtemp.TempCluster, guarded: Guarded, tmp_path: Path
) -> None:
    seed(cluster.url, make_items(3), {"alice": "annotator"}, name="outage", overlap=2, seed=3)
    port = free_port()
    server = start_server(["serve", "--port", str(port)], cluster.url, tmp_path, port)
    page = guarded.page
    try:
        sign_in(page, server.url, "alice")
        page.wait_for_selector(".lf[data-state=ready]")
        header = page.inner_text(HEADER)
        on_form = assignment(page)
        for key in keys_for(LABELS):
            page.keyboard.press(key)
        for name, value in LABELS.items():
            page.wait_for_selector(option(name, value))
        picked = {f"{name}={value}" for name, value in LABELS.items()}
        assert chosen(page) == picked

        cluster.stop()
        page.keyboard.press("Control+Enter")
        # The refusal shows in the form, next to the cursor; the form is ready again.
        page.wait_for_selector(".lf[data-state=ready] .lf-alert[data-kind=error]")
        shown = page.inner_text("body")
        assert "Can't save right now" in page.inner_text(".lf-alert"), shown
        assert "Traceback" not in shown and "OperationalError" not in shown
        assert page.inner_text(HEADER) == header and assignment(page) == on_form
        assert chosen(page) == picked

        cluster.start()
        page.keyboard.press("Control+Enter")
        page.wait_for_function(CHANGED, arg=on_form)
        assert guarded.blocked == []
    finally:
        server.stop()

    # The annotator saw the item's handle; its id is looked up behind it.
    external_id = item_ids(cluster.url)[header.split("·")[0].replace("item", "").strip()]
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
    assert [(labels, ext) for labels, ext in rows] == [(expected_labels(LABELS), external_id)]
