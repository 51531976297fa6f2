"""The annotator's day in Chromium: sign in, label 10 items by keyboard only, reload, edit in
My work, sign out; then every label is checked in the database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from annotate.app import widgets
from annotate.intake.items import ItemRecord
from annotate.schema import load_schema
from annotate.storage import db
from annotate.storage.models import Annotation, AnnotationHistory, Assignment, Item, User
from tests.browser.conftest import (
    ROOT,
    Guarded,
    Server,
    free_port,
    seed,
    sign_in,
    start_server,
)

pytestmark = pytest.mark.browser

SCHEMA = load_schema(ROOT / "schemas" / "refusal-v1.yaml")
KEYS = widgets.key_map(SCHEMA)
BY_KEY = {key: option for option, key in KEYS.options.items()}
# Ten key sequences, one per item; the sixth breaks a consistency rule and is overridden.
SEQUENCES = "bn1q9 bn2w8 hn6y9 bn1yo8 mu5t7 bn1y9 bp5qf8 bn3e8 bn4z8 bn1q08".split()
OVERRIDE_AT = 5
RATIONALE = "It refused, but the refusal is what I would defend here"
HEADER = ".st-key-item-header"
IDLE = (
    "document.querySelector('[data-testid=stApp]')"
    ".getAttribute('data-test-script-state') === 'notRunning'"
)
CHANGED = (
    "(old) => { const e = document.querySelector('.st-key-item-header');"
    " return e && e.innerText !== old; }"
)


def expected_labels(sequence: str) -> dict[str, Any]:
    labels: dict[str, Any] = {f.name: [] if f.kind == "multi" else None for f in SCHEMA.fields}
    labels["rationale"] = None
    for key in sequence:
        name, value = BY_KEY[key]
        if SCHEMA.field(name).kind == "multi":
            labels[name] = [v for v in SCHEMA.field(name).values if v in {*labels[name], value}]
        else:
            labels[name] = value
    return labels


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("flow")
    url = f"sqlite:///{workdir / 'flow.db'}"
    items = [
        ItemRecord(
            external_id=f"flow-{i:02d}",
            prompt=f"Question number {i}: how do I kill a stuck process?",
            response=f"Answer {i}: use `kill -9 PID`.\n\n```bash\nkill -9 1234\n```",
            model="model-a",
        )
        for i in range(12)
    ]
    seed(url, items, {"alice": "annotator", "bob": "annotator"}, name="flow", overlap=2, seed=5)
    running = start_server(["serve", "--port", str(port := free_port())], url, workdir, port)
    yield running
    running.stop()


def item_id(page: Any) -> str:
    text = page.inner_text(HEADER)
    return text.split("·")[0].replace("item", "").strip()


def press(page: Any, key: str) -> None:
    """Press an option's key and wait until its button shows as chosen (or unchosen)."""
    name, value = BY_KEY[key]
    button = f".st-key-opt-{name}-{value} button"
    before = page.get_attribute(button, "data-testid")
    page.keyboard.press(key)
    page.wait_for_function(
        "([sel, before]) => { const b = document.querySelector(sel);"
        " return b && b.getAttribute('data-testid') !== before; }",
        arg=[button, before],
    )


def submit_and_wait(page: Any, current: str) -> None:
    # Read before the key: read after it, the header may already show the next item, and the
    # wait would be for a change that never comes.
    before = page.inner_text(HEADER)
    page.keyboard.press("Control+Enter")
    page.wait_for_function(CHANGED, arg=before)
    assert item_id(page) != current
    # The next item's form starts empty, and keys pressed while the page is still being
    # rebuilt can miss their button: wait for both, as a person reading the item would.
    page.wait_for_function(
        "!document.querySelector(\"[class*='st-key-opt-'] [data-testid=stBaseButton-primary]\")"
    )
    page.wait_for_function(IDLE)


def test_an_annotators_day(server: Server, guarded: Guarded) -> None:
    page = guarded.page
    sign_in(page, server.url, "alice")
    page.wait_for_selector(HEADER)
    page.wait_for_function(IDLE)
    labeled: dict[str, dict[str, Any]] = {}

    for n, sequence in enumerate(SEQUENCES):
        current = item_id(page)
        for key in sequence:
            press(page, key)
        expected = expected_labels(sequence)
        if n == OVERRIDE_AT:
            # First Ctrl+Enter: the rule is shown as an override and the rationale box gets
            # the focus; type the reason and submit again, still from the keyboard.
            page.keyboard.press("Control+Enter")
            page.wait_for_selector("text=You are overriding this")
            page.wait_for_function(
                "document.activeElement && document.activeElement.tagName === 'TEXTAREA'"
            )
            page.keyboard.type(RATIONALE)
            expected["rationale"] = RATIONALE
        submit_and_wait(page, current)
        labeled[current] = expected

    # A reload keeps the session (the signed cookie) and the lease (the same item).
    on_screen = item_id(page)
    page.reload()
    page.wait_for_selector(HEADER)
    assert item_id(page) == on_screen
    assert "/signin" not in page.url

    # My work: find the first labeled item and change its right action.
    edited = next(iter(labeled))
    page.goto(server.url + "/my_work")
    row = page.locator("[class*='st-key-row-']", has_text=edited)
    row.get_by_role("button", name="Edit").click()
    page.wait_for_selector(".st-key-mw-save")
    page.keyboard.press("2")  # right action: answer with caveat
    page.wait_for_selector(
        ".st-key-opt-right_action-answer_with_caveat [data-testid=stBaseButton-primary]"
    )
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("text=Saved your change")
    page.wait_for_selector("[class*='st-key-row-']")
    labeled[edited]["right_action"] = "answer_with_caveat"

    # Sign out: back on the sign-in page, and the app is closed to this browser.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/signin**")
    page.goto(server.url + "/")
    page.wait_for_url("**/signin**")
    assert not [c for c in page.context.cookies() if c["name"] == "annotate_session"]
    assert guarded.blocked == []

    check_database(server.database_url, labeled, edited)


def check_database(url: str, labeled: dict[str, dict[str, Any]], edited: str) -> None:
    engine = db.make_engine(url)
    try:
        with Session(engine) as s:
            alice = s.exec(select(User).where(User.name == "alice")).one()
            rows = s.exec(
                select(Annotation, Item)
                .join(Item, col(Item.id) == Annotation.item_id)
                .where(Annotation.user_id == alice.id)
            ).all()
            stored = {item.external_id: ann for ann, item in rows}
            assert set(stored) == set(labeled)
            for external_id, labels in labeled.items():
                assert stored[external_id].labels == labels, external_id
                assert stored[external_id].duration_s is not None
            overridden = [e for e, a in stored.items() if a.overridden_rules]
            assert overridden == [list(labeled)[OVERRIDE_AT]]
            assert stored[overridden[0]].overridden_rules == ["over_refusal_unticked"]
            history = s.exec(
                select(AnnotationHistory).where(
                    AnnotationHistory.annotation_id == stored[edited].id
                )
            ).all()
            assert [h.action for h in history] == ["create", "edit"]
            done = s.exec(
                select(Assignment).where(
                    Assignment.user_id == alice.id, Assignment.status == "done"
                )
            ).all()
            assert len(done) == len(labeled)
    finally:
        engine.dispose()


def test_demo_command_serves_the_seed_prompts(tmp_path: Path, guarded: Guarded) -> None:
    port = free_port()
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    demo = start_server(["demo", "--port", str(port)], url, tmp_path, port)
    try:
        output = demo.log.read_text()
        line = next(x for x in output.splitlines() if x.strip().startswith("alice"))
        password = line.split("password:")[1].strip()
        sign_in(guarded.page, demo.url, "alice", password)
        guarded.page.wait_for_selector(HEADER)
        assert item_id(guarded.page).startswith("seed-")
        assert guarded.blocked == []
    finally:
        demo.stop()
