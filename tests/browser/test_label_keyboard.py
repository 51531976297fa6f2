"""The browser label form's keyboard model in Chromium: Tab / Shift+Tab between fields, number
keys within the marked one, letters from the schema, `/` and Esc for the rationale, skip and
flag keys, Ctrl+Enter; every choice checked against what the database stored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import Session, col, select

from annotate.accounts import sessions
from annotate.storage import db
from annotate.storage.models import Annotation, Assignment, Item, User
from tests.browser.conftest import Guarded, Server, free_port, seed, sign_in, start_server
from tests.browser.form_helpers import (
    CHANGED,
    FORM_ROOT,
    LABEL_SETS,
    SCHEMA,
    assignment,
    chosen,
    expected_labels,
    focused,
    item_ids,
    item_on_form,
    keys_for,
    option,
)
from tests.browser.load_helpers import make_items

pytestmark = pytest.mark.browser
FIELDS = [f.name for f in SCHEMA.fields]
TEXT_FOCUSED = f"{FORM_ROOT}.activeElement && {FORM_ROOT}.activeElement.tagName === 'TEXTAREA'"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("keyboard")
    url = f"sqlite:///{workdir / 'keys.db'}"
    people = {name: "annotator" for name in ("alice", "bob", "carol", "dave")}
    seed(url, make_items(8), people, name="keys", overlap=3, seed=2)
    running = start_server(["serve", "--port", str(port := free_port())], url, workdir, port)
    yield running
    running.stop()


def stored(url: str, user: str) -> dict[str, Annotation]:
    engine = db.make_engine(url)
    try:
        with Session(engine) as s:
            rows = s.exec(
                select(Annotation, Item)
                .join(Item, col(Item.id) == Annotation.item_id)
                .join(User, col(User.id) == Annotation.user_id)
                .where(User.name == user)
            ).all()
            # Keyed as the annotator saw the items: by handle (see form_helpers.item_ids).
            names = {v: k for k, v in item_ids(url).items()}
            return {names[item.external_id]: ann for ann, item in rows}
    finally:
        engine.dispose()


def assignments(url: str, user: str) -> dict[str, tuple[str, str | None]]:
    engine = db.make_engine(url)
    try:
        with Session(engine) as s:
            rows = s.exec(
                select(Assignment, Item)
                .join(Item, col(Item.id) == Assignment.item_id)
                .join(User, col(User.id) == Assignment.user_id)
                .where(User.name == user)
            ).all()
            names = {v: k for k, v in item_ids(url).items()}
            return {names[item.external_id]: (a.status, a.reason) for a, item in rows}
    finally:
        engine.dispose()


def submit_and_wait(page: Any) -> None:
    before = assignment(page)
    page.keyboard.press("Control+Enter")
    page.wait_for_function(CHANGED, arg=before)


def test_three_items_by_keyboard_only_with_the_focus_model(
    server: Server, guarded: Guarded
) -> None:
    page = guarded.page
    sign_in(page, server.url, "alice")
    page.wait_for_selector(".lf[data-state=ready]")
    # The marked field is visible as such: a frame and an arrow before its name.
    arrow = page.eval_on_selector(
        ".lf-field.lf-focused .lf-label", "e => getComputedStyle(e, '::before').content"
    )
    assert "▶" in arrow
    labeled: dict[str, dict[str, Any]] = {}
    for labels in LABEL_SETS[:3]:
        current = item_on_form(page)
        assert focused(page) == FIELDS[0] and chosen(page) == set()
        walked = [focused(page)]
        for key in keys_for(labels):
            page.keyboard.press(key)
            if key == "Tab":
                walked.append(focused(page))
        # Tab went through the fields in schema order, one at a time.
        assert walked == FIELDS[: len(walked)]
        for name, value in labels.items():
            page.wait_for_selector(option(name, value))
        page.keyboard.press("Shift+Tab")
        assert focused(page) == FIELDS[len(walked) - 2]
        assert chosen(page) == {f"{n}={v}" for n, v in labels.items()}
        submit_and_wait(page)
        labeled[current] = expected_labels(labels)
    saved = stored(server.database_url, "alice")
    assert {ext: a.labels for ext, a in saved.items()} == labeled
    assert all(a.duration_s is not None and a.overridden_rules == [] for a in saved.values())
    assert assignments(server.database_url, "alice") == {
        **{ext: ("done", None) for ext in labeled},
        item_on_form(page): ("active", None),
    }
    assert guarded.blocked == []


def test_every_kind_of_field_is_stored_as_chosen(server: Server, guarded: Guarded) -> None:
    page = guarded.page
    sign_in(page, server.url, "bob")
    page.wait_for_selector(".lf[data-state=ready]")
    first = item_on_form(page)
    # Letters from the schema choose from anywhere and mark their field; a single choice
    # replaces the last one.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("h")
    assert focused(page) == "intent"
    page.keyboard.press("m")
    page.wait_for_selector(option("intent", "ambiguous"))
    # Number keys within the marked field; the same number again unchooses.
    for key in ("Tab", "4", "4", "3", "Tab", "5", "Tab", "1", "Tab"):
        page.keyboard.press(key)
    assert focused(page) == "failure_categories"
    # Multi-choice: numbers toggle, and the stored list follows the schema's order.
    for key in ("7", "8", "5", "7"):
        page.keyboard.press(key)
    page.wait_for_selector(option("failure_categories", "overconfidence", pressed=False))
    page.keyboard.press("Shift+Tab")
    assert focused(page) == "observed_action"
    for key in ("Tab", "Tab", "2"):
        page.keyboard.press(key)
    # `/` writes the rationale; Esc leaves it, and number keys choose again, not type.
    page.keyboard.press("/")
    page.wait_for_function(TEXT_FOCUSED)
    page.keyboard.type("The premise is false 1 2 3")
    page.keyboard.press("Escape")
    page.wait_for_function(f"!({TEXT_FOCUSED})")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("3")
    page.wait_for_selector(option("confidence", "high"))
    # Flag for the lead: the note box gets the cursor.
    page.keyboard.press("a")
    page.wait_for_function(TEXT_FOCUSED)
    page.keyboard.type("Check the premise with the lead")
    page.keyboard.press("Escape")
    expected = {
        "intent": "ambiguous",
        "epistemic_status": "false_premise",
        "right_action": "abstain",
        "observed_action": "answer",
        "failure_categories": ["grounding_failure", "false_premise_accepted"],
        "confidence": "high",
        "rationale": "The premise is false 1 2 3",
    }
    assert chosen(page) == {
        f"{n}={v}"
        for n, value in expected.items()
        if n != "rationale"
        for v in (value if isinstance(value, list) else [value])
    }
    submit_and_wait(page)

    # Skip, for another reason: the details box gets the cursor.
    skipped = item_on_form(page)
    page.keyboard.press("s")
    page.wait_for_selector(".lf-skippanel:not([hidden])")
    page.keyboard.press("4")
    page.wait_for_function(TEXT_FOCUSED)
    page.keyboard.type("Not in English")
    submit_and_wait(page)

    # Required fields are checked in the browser first: nothing is sent, and the cursor goes
    # to the first field still to choose, where the message is.
    third = item_on_form(page)
    page.keyboard.press("1")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("[data-field=epistemic_status] .lf-alert >> text=Still to choose")
    assert focused(page) == "epistemic_status" and item_on_form(page) == third

    saved = stored(server.database_url, "bob")
    assert list(saved) == [first]
    assert saved[first].labels == expected
    assert saved[first].flagged and saved[first].flag_note == "Check the premise with the lead"
    statuses = assignments(server.database_url, "bob")
    assert statuses[skipped] == ("skipped", "Not in English")
    assert statuses[third] == ("active", None)
    assert guarded.blocked == []


def test_keys_typed_right_after_submit_land_on_the_next_item(
    server: Server, guarded: Guarded
) -> None:
    page = guarded.page
    sign_in(page, server.url, "carol")
    page.wait_for_selector(".lf[data-state=ready]")
    first, second = LABEL_SETS[0], LABEL_SETS[2]
    labeled = {item_on_form(page): expected_labels(first)}
    for key in keys_for(first):
        page.keyboard.press(key)
    for name, value in first.items():
        page.wait_for_selector(option(name, value))
    before = assignment(page)
    # No waiting between the submit and the next item's keys: a person who knows the next
    # answer types on while the item is on its way.
    page.keyboard.press("Control+Enter")
    for key in keys_for(second):
        page.keyboard.press(key)
    page.wait_for_function(CHANGED, arg=before)
    for name, value in second.items():
        page.wait_for_selector(option(name, value))
    assert chosen(page) == {f"{n}={v}" for n, v in second.items()}
    # The keys really were typed before the item came, and were replayed onto it.
    assert int(page.get_attribute(".lf", "data-replayed") or 0) >= 1
    labeled[item_on_form(page)] = expected_labels(second)
    submit_and_wait(page)
    saved = stored(server.database_url, "carol")
    assert {ext: a.labels for ext, a in saved.items()} == labeled
    assert guarded.blocked == []


def test_a_submit_after_signing_out_elsewhere_saves_nothing(
    server: Server, guarded: Guarded
) -> None:
    # The answer to a submit reruns only the item and its form, not main(): the fragment
    # checks the session itself (context.fragment) before the message is handled.
    page = guarded.page
    sign_in(page, server.url, "dave")
    page.wait_for_selector(".lf[data-state=ready]")
    for key in keys_for(LABEL_SETS[0]):
        page.keyboard.press(key)
    engine = db.make_engine(server.database_url)
    try:
        with db.session_scope(engine) as s:
            dave = s.exec(select(User).where(User.name == "dave")).one()
            sessions.sign_out(session=s, user=dave)
    finally:
        engine.dispose()
    page.keyboard.press("Control+Enter")
    # The fragment's session check reruns the whole app: the sign-in gate, with why.
    page.wait_for_selector("text=You signed out; sign in again")
    assert page.locator(".lf").count() == 0
    assert stored(server.database_url, "dave") == {}
