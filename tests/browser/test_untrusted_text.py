"""Hostile model text in Chromium: nothing executes, nothing is fetched, everything is readable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from annotate.intake.items import ItemRecord, Turn
from tests.browser.conftest import Guarded, Server, free_port, seed, sign_in, start_server

pytestmark = pytest.mark.browser

HOSTILE = """Sure! <script>window.__pwned = 'script'</script>

<img src=x onerror="window.__pwned = 'onerror'">

[Click for details](javascript:window.__pwned='link')

![](http://remote.invalid/pixel.png)

<img src="http://remote.invalid/tracker.gif">

[tracked link](http://remote.invalid/track?id=1) and <http://remote.invalid/auto>

```html
<script>window.__pwned = 'code'</script>
```
"""

# Recorded before any page script runs: alerts, CSP violations and element creation.
WATCH = """
window.__alerts = [];
window.alert = (m) => window.__alerts.push(String(m));
window.__violations = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__violations.push(e.blockedURI + ' ' + e.violatedDirective));
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("hostile")
    url = f"sqlite:///{workdir / 'hostile.db'}"
    items = [
        ItemRecord(
            external_id="hostile-1",
            conversation=[
                Turn(role="user", content="Hi <img src=http://remote.invalid/u.png>"),
                Turn(role="assistant", content="![x](http://remote.invalid/a.png) Hello"),
                Turn(role="user", content="Show me <b>bold</b> [a link](http://remote.invalid/l)"),
            ],
            response=HOSTILE,
            model="model-x",
            category="<script>window.__pwned='meta'</script>",
        )
    ]
    seed(url, items, {"xavier": "annotator"}, name="hostile", overlap=1, seed=1)
    running = start_server(["serve", "--port", str(port := free_port())], url, workdir, port)
    yield running
    running.stop()


def test_hostile_text_is_inert_and_fetches_nothing(server: Server, guarded: Guarded) -> None:
    page = guarded.page
    page.add_init_script(WATCH)
    local: list[str] = []
    page.on("request", lambda r: local.append(r.url))
    sign_in(page, server.url, "xavier")
    page.wait_for_selector(".st-key-item-header")
    page.wait_for_selector("text=Click for details")
    page.wait_for_timeout(1500)  # give any stray loader time to fire

    assert guarded.blocked == [], "requests left the machine"
    assert not [u for u in local if "remote.invalid" in u or u.endswith("/x")]
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("window.__alerts") == []
    assert page.evaluate("window.__violations") == []
    # Nothing active was created from the text.
    assert page.locator("img[src*='remote.invalid'], img[src='x']").count() == 0
    assert page.locator("a[href^='javascript:'], a[href*='remote.invalid']").count() == 0
    assert page.locator("[onerror]").count() == 0
    # ...and the annotator still sees what the model wrote.
    body = page.inner_text("body")
    for shown in (
        "<script>window.__pwned = 'script'</script>",
        "<img src=x onerror=\"window.__pwned = 'onerror'\">",
        "javascript:window.__pwned='link'",
        "http://remote.invalid/pixel.png",
        "http://remote.invalid/track?id=1",
        "http://remote.invalid/auto",
        "<b>bold</b>",
    ):
        assert shown in body, shown
    assert page.locator(".annotate-text pre code").count() >= 1  # code block kept as code


def test_the_sign_in_page_loads_nothing_from_elsewhere(server: Server, guarded: Guarded) -> None:
    page = guarded.page
    page.goto(server.url + "/signin")
    page.wait_for_selector("#password")
    assert guarded.blocked == []
