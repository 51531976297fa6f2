"""A lead's session in Chromium: the review queue, three adjudications, then the database.

The lead opens the Review queue, starts at the most disagreed item and adjudicates three
items in queue order (the third overriding the annotators' majority, with the required note);
the database must then hold three current, manual adjudications by that lead, with the note
and the bands, and nothing may have been fetched from off the machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from lead_helpers import seed_campaign
from sqlmodel import Session, col, select

from annotate.schema import load_schema
from annotate.storage import db
from annotate.storage.models import Adjudication, Annotation, Item, User
from tests.browser.conftest import ROOT, Guarded, Server, free_port, sign_in, start_server

pytestmark = pytest.mark.browser

SCHEMA = load_schema(ROOT / "schemas" / "refusal-v1.yaml")
NOTE = "The response gives dosages: a caveat is the least it needs."
HOSTILE = (
    "Sure! ![pixel](http://tracker.invalid/p.png) <img src=http://tracker.invalid/i.png> "
    "[click](javascript:alert(1)) <script>alert(1)</script>"
)
TITLE = "[data-testid=stHeading]"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("adjudication")
    url = f"sqlite:///{workdir / 'lead.db'}"
    engine = db.make_engine(url)
    db.migrate(engine)
    with db.session_scope(engine) as s:
        seeded = seed_campaign(s, SCHEMA, name="adj")
        # Hostile text where the lead looks: the response, a rationale and a flag note.
        item = s.get(Item, seeded.items["i3"])
        assert item is not None
        item.response = HOSTILE
        s.add(item)
        for ann in s.exec(select(Annotation).where(Annotation.item_id == item.id)):
            ann.labels = {**ann.labels, "rationale": HOSTILE}
            ann.flag_note = HOSTILE if ann.flagged else None
            s.add(ann)
    engine.dispose()
    running = start_server(["serve", "--port", str(port := free_port())], url, workdir, port)
    yield running
    running.stop()


# Streamlit keeps the previous run's elements on screen, marked stale, while a rerun draws the
# new ones; the status widget shows a running icon meanwhile.
IDLE = (
    "() => !document.querySelector('[data-testid=stStatusWidgetRunningIcon],"
    " [data-testid=stStatusWidgetRunningManIcon], [data-stale=true]')"
)


def settle(page: Any) -> None:
    page.wait_for_function(IDLE)


def click(page: Any, key: str) -> None:
    settle(page)
    # :visible: Streamlit draws a button with a tooltip twice, one copy hidden.
    page.locator(f".st-key-{key} button:visible").click()


def choose(page: Any, field: str, value: str) -> None:
    """Click an option of the final labels and wait until it shows as chosen."""
    click(page, f"opt-{field}-{value}")
    page.wait_for_selector(f".st-key-opt-{field}-{value} [data-testid=stBaseButton-primary]")


def on_item(page: Any, external_id: str) -> None:
    """Wait until the Adjudicate page shows `external_id`."""
    page.wait_for_url(f"**/adjudicate?**item={external_id}**")
    page.wait_for_selector(f"text=item {external_id}")
    page.wait_for_selector(".st-key-adj-save")
    settle(page)


def save(page: Any, external_id: str) -> None:
    click(page, "adj-save")
    page.wait_for_selector(f"text=Adjudicated {external_id}")


def test_a_lead_adjudicates_three_items_from_the_queue(server: Server, guarded: Guarded) -> None:
    page = guarded.page
    sign_in(page, server.url, "lena")
    page.goto(server.url + "/review?campaign=adj")
    page.wait_for_selector("text=Review queue")
    page.wait_for_selector("text=5 items · 0 adjudicated")

    # 1. The top of the queue: three right actions far apart, no majority.
    click(page, "rev-next")
    on_item(page, "i3")
    page.wait_for_selector("text=What the annotators said")
    page.wait_for_selector("[data-testid=stDataFrame]")
    # The hostile text is shown as text: nothing fetched (checked at the end), nothing run.
    page.wait_for_selector("text=tracker.invalid/p.png")
    assert page.locator("img[src*='tracker.invalid']").count() == 0
    assert page.locator("a[href^='javascript']").count() == 0
    # The save key before choosing: every missing field is named above the final labels,
    # in view, and the keyboard focus is on the first one's first option.
    settle(page)
    page.keyboard.press("Control+Enter")
    problem = page.locator(".st-key-adj-problem", has_text="Not saved")
    problem.wait_for()
    assert (
        "Not saved: choose the final Intent of the request (annotators tied: harmful, benign, "
        "ambiguous), Right action (annotators tied: refuse, answer, clarify), Your confidence."
    ) in problem.inner_text()
    page.wait_for_function(
        "() => document.activeElement && "
        "document.activeElement.closest('.st-key-opt-intent-benign') !== null"
    )
    box = problem.bounding_box()
    viewport = page.viewport_size
    assert box is not None and viewport is not None
    # Scrolled to the top of the window (within a pixel: layout positions are fractional).
    assert -1 <= box["y"] <= 1 and box["height"] <= viewport["height"], (box, viewport)
    choose(page, "right_action", "clarify")
    choose(page, "intent", "ambiguous")
    choose(page, "confidence", "medium")
    page.locator(".st-key-adj-gap-adj-3-0 label").click()
    page.wait_for_selector(".st-key-adj-gap-adj-3-0 input:checked", state="attached")
    save(page, "i3")

    # 2. Next in the queue: a 1-1 split between clarify and answer_safe_part; the band
    # the page suggests gives the other annotator's choice credit.
    on_item(page, "i4")
    choose(page, "right_action", "clarify")
    choose(page, "confidence", "high")
    save(page, "i4")

    # 3. A near miss whose majority is `answer`: the lead overrides it, so a note is needed.
    on_item(page, "i2")
    choose(page, "right_action", "answer_with_caveat")
    choose(page, "confidence", "high")
    page.wait_for_selector("text=the note is required")
    click(page, "adj-save")
    page.wait_for_selector("text=add a note saying why")
    page.locator(".st-key-adj-note-adj-2-0 textarea").fill(NOTE)
    page.keyboard.press("Tab")  # commit the text area before saving
    save(page, "i2")

    assert guarded.blocked == []
    check_database(server.database_url)


def check_database(url: str) -> None:
    engine = db.make_engine(url)
    try:
        with Session(engine) as s:
            lena = s.exec(select(User).where(User.name == "lena")).one()
            rows = s.exec(
                select(Adjudication, Item)
                .join(Item, col(Item.id) == Adjudication.item_id)
                .order_by(col(Adjudication.id))
            ).all()
            assert [item.external_id for _, item in rows] == ["i3", "i4", "i2"]
            for adj, item in rows:
                assert adj.lead_id == lena.id, item.external_id
                assert adj.created_at is not None
                assert adj.method == "manual" and adj.is_current and adj.previous_id is None
                right = adj.labels["right_action"]
                assert adj.band[right] == 1.0
                assert set(SCHEMA.normalize_labels(adj.labels)) == set(adj.labels)
            by_item = {item.external_id: adj for adj, item in rows}
            assert by_item["i3"].guideline_gap and by_item["i3"].labels["intent"] == "ambiguous"
            assert by_item["i4"].band == {"answer_safe_part": 0.5, "clarify": 1.0, "abstain": 0.5}
            assert by_item["i2"].overrides_majority and by_item["i2"].note == NOTE
            assert by_item["i2"].labels["right_action"] == "answer_with_caveat"
            assert not by_item["i3"].overrides_majority and not by_item["i4"].overrides_majority
    finally:
        engine.dispose()
