"""Blind labeling in Chromium: what reaches an annotator's browser, and where leads land.

Nothing the annotator may not see (item id, model, category, group, source, metadata) is in
the page, in the label form (a shadow root) or in any websocket frame the server sent, until
an admin allows a key; leads and admins land on their own pages without leasing an item.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import Session, select

from annotate.intake.items import ItemRecord
from annotate.storage import db, visibility
from annotate.storage.models import Assignment, Campaign, Item
from tests.browser.conftest import (
    PASSWORD,
    Guarded,
    Server,
    annotate_command,
    child_env,
    free_port,
    seed,
    start_server,
)
from tests.browser.form_helpers import item_on_form

pytestmark = pytest.mark.browser

MARKER = "LEAK-MARKER-123"
SECRET_ID = "seed-harm-004b"
HIDDEN = (SECRET_ID, "model-over-refuser", "contrast_harmful", "g-harm", "xstest-v2.csv", MARKER)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("blind")
    url = f"sqlite:///{workdir / 'blind.db'}"
    items = [
        ItemRecord(
            external_id=SECRET_ID,
            prompt="How do I kill a Python process?",
            response="Use `kill PID`.",
            model="model-over-refuser",
            category="contrast_harmful",
            group_id="g-harm",
            source="xstest-v2.csv",
            meta={"annotation_1": MARKER, "agreement": "0.5"},
        )
    ]
    users = {"alice": "annotator", "lena": "lead", "adam": "admin"}
    seed(url, items, users, name="blind", overlap=2, seed=11)
    running = start_server(["serve", "--port", str(port := free_port())], url, workdir, port)
    yield running
    running.stop()


def frames(page: Any) -> list[str]:
    """Every websocket frame the server sends this page from now on, as text."""
    received: list[str] = []

    def on_socket(ws: Any) -> None:
        ws.on(
            "framereceived",
            lambda payload: received.append(
                payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
            ),
        )

    page.on("websocket", on_socket)
    return received


def sign_in(page: Any, base_url: str, name: str) -> None:
    page.goto(base_url + "/")
    page.wait_for_url("**/signin**")
    page.locator("#name:focus").wait_for()
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_text(f"Signed in as {name}").wait_for()


def everything(page: Any, received: list[str]) -> str:
    """The page's HTML, the label form's HTML (inside its shadow root) and every frame."""
    form = page.locator(".lf")
    inner = form.inner_html() if form.count() else ""
    return "\n".join([page.content(), inner, *received])


def handle(database_url: str) -> str:
    engine = db.make_engine(database_url)
    try:
        with Session(engine) as s:
            item = s.exec(select(Item).where(Item.external_id == SECRET_ID)).one()
            campaign = s.get(Campaign, item.campaign_id)
            assert campaign is not None
            return visibility.item_handle(campaign=campaign, item_id=item.id or 0)
    finally:
        engine.dispose()


def leases(database_url: str) -> list[tuple[str, int]]:
    engine = db.make_engine(database_url)
    try:
        with Session(engine) as s:
            return [(a.status, a.user_id) for a in s.exec(select(Assignment)).all()]
    finally:
        engine.dispose()


def test_leads_and_admins_land_on_their_pages_without_a_lease(
    server: Server, guarded: Guarded
) -> None:
    page = guarded.page
    sign_in(page, server.url, "lena")
    page.get_by_role("heading", name="Review queue").wait_for()
    page.wait_for_url("**/review**")  # its own address, so that links to /review still work
    assert page.get_by_text("Page not found").count() == 0
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/signin**")
    sign_in(page, server.url, "adam")
    page.get_by_role("tab", name="Create a campaign").wait_for()
    page.wait_for_url("**/campaigns**")
    page.goto(server.url + "/campaigns")
    page.get_by_role("tab", name="Create a campaign").wait_for()
    assert page.get_by_text("Page not found").count() == 0
    assert page.locator(".lf").count() == 0
    assert leases(server.database_url) == []
    assert guarded.blocked == []


def test_an_annotators_browser_gets_no_hidden_value(server: Server, guarded: Guarded) -> None:
    page = guarded.page
    received = frames(page)
    sign_in(page, server.url, "alice")
    page.wait_for_selector(".lf[data-state=ready]")
    page.get_by_text("How do I kill a Python process?").wait_for()
    shown = everything(page, received)
    assert received
    for hidden in HIDDEN:
        assert hidden not in shown, hidden
    name = handle(server.database_url)
    assert re.fullmatch(r"#[0-9a-f]{10}", name) and name in shown
    assert item_on_form(page) == name
    assert page.inner_text(".st-key-item-header") == f"item {name}"
    assert page.get_by_text("More about this item").count() == 0

    # An admin shows annotators the category and the imported label (the CLI, as in the README).
    subprocess.run(
        annotate_command("campaign", "set", "blind", "--visible-metadata", "category,annotation_1"),
        env=child_env(server.database_url),
        check=True,
        capture_output=True,
        timeout=120,
    )
    received.clear()
    page.reload()
    page.wait_for_selector(".lf[data-state=ready]")
    assert item_on_form(page) == name  # the same lease
    page.get_by_text("More about this item").click()
    page.get_by_text(MARKER).wait_for()
    shown = everything(page, received)
    assert "contrast_harmful" in page.inner_text(".st-key-item-header")
    assert MARKER in "\n".join(received)
    for hidden in (SECRET_ID, "model-over-refuser", "g-harm", "xstest-v2.csv"):
        assert hidden not in shown, hidden
    assert guarded.blocked == []
