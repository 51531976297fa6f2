"""Hostile model text on the lead's pages in Chromium: the review queue and the dashboard.

The most disagreed item (top of the queue, first on the dashboard's "where to look") carries
a `<script>`, an `<img onerror>`, a `javascript:` link and a remote markdown image in its
prompt, response, category, model and an annotator's rationale. Nothing may run (a flag the
script would set stays unset, no dialog), no `<img>` may point off the machine, no link may be
`javascript:`, and no request may even be attempted beyond the loopback server. A crafted
`?item=` on the Adjudicate page must not draw an image through the error message either.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from lead_helpers import seed_campaign
from sqlmodel import select

from annotate.schema import load_schema
from annotate.storage import db
from annotate.storage.models import Annotation, Item
from tests.browser.conftest import ROOT, Guarded, Server, free_port, sign_in, start_server

pytestmark = pytest.mark.browser

SCHEMA = load_schema(ROOT / "schemas" / "refusal-v1.yaml")
HOSTILE = """Sure! <script>window.__pwned = 'script'</script>

<img src=x onerror="window.__pwned = 'onerror'">

[Click for details](javascript:window.__pwned='link')

![](http://remote.invalid/pixel.png)
"""
WATCH = """
window.__dialogs = [];
window.alert = (m) => window.__dialogs.push(String(m));
window.confirm = (m) => { window.__dialogs.push(String(m)); return false; };
window.prompt = (m) => { window.__dialogs.push(String(m)); return null; };
"""
IDLE = (
    "() => !document.querySelector('[data-testid=stStatusWidgetRunningIcon],"
    " [data-testid=stStatusWidgetRunningManIcon], [data-stale=true]')"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("lead-hostile")
    url = f"sqlite:///{workdir / 'lead.db'}"
    engine = db.make_engine(url)
    db.migrate(engine)
    with db.session_scope(engine) as s:
        seeded = seed_campaign(s, SCHEMA, name="adj")
        item = s.get(Item, seeded.items["i3"])
        assert item is not None
        item.prompt = HOSTILE
        item.response = HOSTILE
        item.category = "<script>window.__pwned='category'</script>"
        item.model = "![](http://remote.invalid/model.png)"
        s.add(item)
        for ann in s.exec(select(Annotation).where(Annotation.item_id == item.id)):
            ann.labels = {**ann.labels, "rationale": HOSTILE}
            s.add(ann)
    engine.dispose()
    running = start_server(["serve", "--port", str(port := free_port())], url, workdir, port)
    yield running
    running.stop()


def assert_inert(guarded: Guarded) -> None:
    page = guarded.page
    page.wait_for_function(IDLE)
    page.wait_for_timeout(1000)  # give any stray loader time to fire
    assert guarded.blocked == [], "requests left the machine"
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("window.__dialogs") == []
    assert page.locator("img[src*='remote.invalid'], img[src='x']").count() == 0
    assert page.locator("a[href^='javascript:' i]").count() == 0
    assert page.locator("[onerror]").count() == 0
    remote = page.evaluate(
        "() => [...document.querySelectorAll('img')].map(i => i.src)"
        ".filter(s => !/^(data:|blob:|https?:\\/\\/(127\\.0\\.0\\.1|localhost)[:/])/.test(s))"
    )
    assert remote == []


@pytest.fixture
def lead_page(server: Server, guarded: Guarded) -> Any:
    guarded.page.add_init_script(WATCH)
    sign_in(guarded.page, server.url, "lena")
    return guarded.page


def test_review_queue_shows_hostile_items_inert(
    server: Server, guarded: Guarded, lead_page: Any
) -> None:
    lead_page.goto(server.url + "/review?campaign=adj")
    lead_page.wait_for_selector("text=Review queue")
    lead_page.wait_for_selector("[data-testid=stDataFrame]")
    assert_inert(guarded)
    # The hostile item is the one "Adjudicate next" opens; its page renders inert as well.
    lead_page.locator(".st-key-rev-next button:visible").click()
    lead_page.wait_for_url("**/adjudicate?**item=i3**")
    lead_page.wait_for_selector("text=remote.invalid/pixel.png")
    assert_inert(guarded)


def test_dashboard_shows_hostile_items_inert(
    server: Server, guarded: Guarded, lead_page: Any
) -> None:
    lead_page.goto(server.url + "/dashboard?campaign=adj")
    lead_page.wait_for_selector("text=Where to look first")
    lead_page.wait_for_selector("[data-testid=stMetric]")
    assert_inert(guarded)


def test_a_crafted_item_parameter_draws_no_image(
    server: Server, guarded: Guarded, lead_page: Any
) -> None:
    crafted = "x` ![](http://remote.invalid/err.png) [go](javascript:window.__pwned='err') `y"
    lead_page.goto(server.url + "/adjudicate?campaign=adj&item=" + quote(crafted, safe=""))
    lead_page.wait_for_selector("[data-testid=stAlert] >> text=No item")
    assert "remote.invalid/err.png" in lead_page.inner_text("[data-testid=stAlert]")
    assert_inert(guarded)
