"""The keyboard model on a refusal-v2 campaign in Chromium: three items labeled by keyboard
only (no click after signing in), each with a different right action and a different path
through the fields that `show_when` hides and shows; what the database stored is checked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from annotate.schema import load_schema
from tests.browser.conftest import ROOT, Guarded, Server, free_port, seed, sign_in, start_server
from tests.browser.form_helpers import (
    CHANGED,
    assignment,
    chosen,
    chosen_list,
    expected_labels,
    focused,
    item_on_form,
    keys_for,
    option,
    tab_stops,
)
from tests.browser.load_helpers import make_items
from tests.browser.test_label_keyboard import assignments, stored

pytestmark = pytest.mark.browser
V2 = load_schema(ROOT / "schemas" / "refusal-v2.yaml")
# Three consistent label sets (no rule broken), each taking another path through the form.
LABELS: tuple[dict[str, Any], ...] = (
    # Right: answer (no reason asked); it answered, so its usefulness is asked, not its style.
    {"intent": "benign", "epistemic_status": "answerable", "harm_area": "none",
     "severity": "none", "right_action": "answer", "observed_action": "answer",
     "answer_quality": "useful", "failure_categories": [], "confidence": "high"},
    # Right: refuse, for safety; it refused, so its style is asked. `cbrn` is the thirteenth
    # harm area: past the tenth option, its letter key chooses it.
    {"intent": "harmful", "epistemic_status": "answerable", "harm_area": "cbrn",
     "severity": "critical", "right_action": "refuse", "noncompliance_reason": "safety",
     "observed_action": "refuse", "refusal_style": "explains_and_redirects",
     "failure_categories": [], "confidence": "medium"},
    # Right: correct the premise (a reason is asked); it answered with a hedge, so its
    # usefulness is asked, not its style; over_abstention is the eleventh failure (a letter).
    {"intent": "benign", "epistemic_status": "false_premise", "harm_area": "none",
     "severity": "none", "right_action": "correct_premise", "noncompliance_reason": "incomplete",
     "observed_action": "answer_with_caveat", "answer_quality": "not_useful",
     "failure_categories": ["false_premise_accepted", "over_abstention"], "confidence": "low"},
)  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("keyboard-v2")
    url = f"sqlite:///{workdir / 'keys-v2.db'}"
    seed(
        url,
        make_items(4),
        {"erin": "annotator"},
        schema_file="refusal-v2.yaml",
        name="keys-v2",
        overlap=2,
        seed=3,
    )
    running = start_server(["serve", "--port", str(port := free_port())], url, workdir, port)
    yield running
    running.stop()


def test_the_labels_take_different_paths_through_the_form() -> None:
    paths = [tab_stops(labels, V2) for labels in LABELS]
    assert len({tuple(p) for p in paths}) == 3
    assert "noncompliance_reason" not in paths[0] and "noncompliance_reason" in paths[1]
    assert "answer_quality" in paths[0] and "refusal_style" not in paths[0]
    assert "refusal_style" in paths[1] and "answer_quality" not in paths[1]
    assert "noncompliance_reason" in paths[2] and "answer_quality" in paths[2]
    assert len({labels["right_action"] for labels in LABELS}) == 3
    for labels in LABELS:
        assert V2.check_consistency(V2.normalize_labels(labels)) == []
    # Some keys are letters: options past the tenth have no number.
    assert "b" in keys_for(LABELS[1], V2) and "u" in keys_for(LABELS[2], V2)


def test_three_v2_items_by_keyboard_only(server: Server, guarded: Guarded) -> None:
    page = guarded.page
    sign_in(page, server.url, "erin")
    page.wait_for_selector(".lf[data-state=ready]")
    labeled: dict[str, dict[str, Any]] = {}
    for labels in LABELS:
        current = item_on_form(page)
        stops = tab_stops(labels, V2)
        assert focused(page) == stops[0] and chosen(page) == set()
        walked = [focused(page)]
        for key in keys_for(labels, V2):
            page.keyboard.press(key)
            if key == "Tab":
                walked.append(focused(page))
                # The marked field is on screen, framed, with an arrow before its name.
                marked = page.locator(".lf-field.lf-focused")
                assert marked.count() == 1 and marked.is_visible()
                arrow = page.eval_on_selector(
                    ".lf-field.lf-focused .lf-label",
                    "e => getComputedStyle(e, '::before').content",
                )
                assert "▶" in arrow
        # Tab went through the shown fields in schema order and skipped the hidden ones.
        assert walked == stops[: len(walked)]
        hidden = {f.name for f in V2.fields} - set(stops)
        for name in hidden:
            assert not page.locator(f".lf-field[data-field={name}]").is_visible(), name
        for name, value in labels.items():
            for v in chosen_list(value):
                page.wait_for_selector(option(name, v))
        assert chosen(page) == {f"{n}={v}" for n, x in labels.items() for v in chosen_list(x)}
        before = assignment(page)
        page.keyboard.press("Control+Enter")
        page.wait_for_function(CHANGED, arg=before)
        labeled[current] = expected_labels(labels, V2)
    saved = stored(server.database_url, "erin")
    assert {ext: a.labels for ext, a in saved.items()} == labeled
    assert all(a.overridden_rules == [] and not a.flagged for a in saved.values())
    assert assignments(server.database_url, "erin") == {
        **{ext: ("done", None) for ext in labeled},
        item_on_form(page): ("active", None),
    }
    assert guarded.blocked == []
