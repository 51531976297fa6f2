"""The annotator's day in Chromium: sign in, label 10 items by keyboard only (the browser form's
focus model), reload, edit in My work, sign out; then every label is checked in the database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from annotate.intake.items import ItemRecord
from annotate.storage import db
from annotate.storage.models import Annotation, AnnotationHistory, Assignment, Item, User
from tests.browser.conftest import (
    Guarded,
    Server,
    free_port,
    seed,
    sign_in,
    start_server,
)
from tests.browser.form_helpers import (
    CHANGED,
    FORM_ROOT,
    LABEL_SETS,
    assignment,
    chosen_list,
    expected_labels,
    item_ids,
    item_on_form,
    keys_for,
    option,
)

pytestmark = pytest.mark.browser

# Ten label sets, one per item; the sixth breaks a consistency rule and is overridden. Each
# is typed with the focus model: number keys within a field, Tab to the next one.
ITEMS: list[dict[str, Any]] = [
    LABEL_SETS[0],
    LABEL_SETS[1],
    LABEL_SETS[2],
    {**LABEL_SETS[0], "observed_action": "refuse", "failure_categories": ["over_refusal"],
     "confidence": "medium"},
    {"intent": "ambiguous", "epistemic_status": "uncertain", "right_action": "abstain",
     "observed_action": "abstain", "confidence": "low"},
    {**LABEL_SETS[0], "observed_action": "refuse"},
    {"intent": "benign", "epistemic_status": "false_premise", "right_action": "abstain",
     "observed_action": "answer", "failure_categories": ["false_premise_accepted"],
     "confidence": "medium"},
    LABEL_SETS[3],
    LABEL_SETS[4],
    {**LABEL_SETS[0], "failure_categories": ["disproportionate_caveat", "grounding_failure"]},
]  # fmt: skip
OVERRIDE_AT = 5
RATIONALE = "It refused, but the refusal is what I would defend here"
HEADER = ".st-key-item-header"


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


def type_labels(page: Any, labels: dict[str, Any]) -> None:
    """Type `labels` into the form with the keyboard and wait until every choice shows."""
    for key in keys_for(labels):
        page.keyboard.press(key)
    for name in labels:
        for value in chosen_list(labels[name]):
            page.wait_for_selector(option(name, value))


def submit_and_wait(page: Any) -> None:
    before = assignment(page)
    page.keyboard.press("Control+Enter")
    page.wait_for_function(CHANGED, arg=before)


def test_an_annotators_day(server: Server, guarded: Guarded) -> None:
    page = guarded.page
    sign_in(page, server.url, "alice")
    page.wait_for_selector(".lf[data-state=ready]")
    labeled: dict[str, dict[str, Any]] = {}
    # The item's turns come with their stylesheet (in the same element, after them).
    styled = "e => getComputedStyle(e).borderTopStyle"
    assert page.eval_on_selector(".annotate-turn-assistant", styled) == "solid"

    for n, labels in enumerate(ITEMS):
        current = item_on_form(page)
        type_labels(page, labels)
        expected = expected_labels(labels)
        if n == OVERRIDE_AT:
            # First Ctrl+Enter: the rule is shown as an override, next to the rationale box,
            # which gets the focus; type the reason and submit again, still from the keyboard.
            page.keyboard.press("Control+Enter")
            page.wait_for_selector(
                ".lf-field[data-field=rationale] >> text=You are overriding this"
            )
            page.wait_for_function(
                f"{FORM_ROOT}.activeElement && {FORM_ROOT}.activeElement.tagName === 'TEXTAREA'"
            )
            page.keyboard.type(RATIONALE)
            expected["rationale"] = RATIONALE
        submit_and_wait(page)
        labeled[current] = expected

    assert page.eval_on_selector(".annotate-turn-assistant", styled) == "solid"
    # A reload keeps the session (the signed cookie) and the lease (the same item).
    on_screen = item_on_form(page)
    page.reload()
    page.wait_for_selector(".lf[data-state=ready]")
    assert item_on_form(page) == on_screen
    assert "/signin" not in page.url

    # My work (still Streamlit buttons): find the first labeled item, change its right action.
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
    # The annotator saw handles, never item ids: look the ids up behind them.
    ids = item_ids(url)
    labeled = {ids[name]: labels for name, labels in labeled.items()}
    edited = ids[edited]
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
        guarded.page.wait_for_selector(".lf[data-state=ready]")
        # A handle, not the seed prompt's id (`s2-...` ids name the design cell).
        assert re.fullmatch(r"#[0-9a-f]{10}", item_on_form(guarded.page))
        assert "s2-" not in guarded.page.inner_text(HEADER)
        assert guarded.blocked == []
    finally:
        demo.stop()


def test_the_form_comes_back_after_another_page(server: Server, guarded: Guarded) -> None:
    # Later answers name the schema's description by its id only: leaving Label for My work and
    # coming back (the same session, the form mounted again) must still give a whole form.
    page = guarded.page
    sign_in(page, server.url, "bob")
    page.wait_for_selector(".lf[data-state=ready]")
    labeled: dict[str, dict[str, Any]] = {}
    for labels in (LABEL_SETS[0], LABEL_SETS[1]):
        current = item_on_form(page)
        type_labels(page, labels)
        submit_and_wait(page)
        labeled[current] = expected_labels(labels)
    page.get_by_role("link", name="My work").click()
    page.wait_for_selector("[class*='st-key-row-']")
    page.get_by_role("link", name="Label").click()
    page.wait_for_selector(".lf[data-state=ready]")
    # The link just clicked has the focus: the form takes the keys, Tab included.
    current = item_on_form(page)
    type_labels(page, LABEL_SETS[2])
    submit_and_wait(page)
    labeled[current] = expected_labels(LABEL_SETS[2])
    assert guarded.blocked == []

    ids = item_ids(server.database_url)
    engine = db.make_engine(server.database_url)
    try:
        with Session(engine) as s:
            bob = s.exec(select(User).where(User.name == "bob")).one()
            rows = s.exec(
                select(Annotation, Item)
                .join(Item, col(Item.id) == Annotation.item_id)
                .where(Annotation.user_id == bob.id)
            ).all()
            stored = {item.external_id: ann.labels for ann, item in rows}
    finally:
        engine.dispose()
    assert stored == {ids[handle]: labels for handle, labels in labeled.items()}
