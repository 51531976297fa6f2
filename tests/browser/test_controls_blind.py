"""In Chromium: a control item is served like any other. The page (DOM and shadow DOM) and the
form data the browser receives have the same structure for a control and for a normal item,
and the word "control" appears in neither; the answers are then stored as control answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from annotate.accounts.auth import system_actor
from annotate.intake.items import ItemRecord
from annotate.review import adjudication
from annotate.review.controls import mark_controls, set_control_settings
from annotate.schema import load_schema
from annotate.storage import db
from annotate.storage.models import Annotation, Campaign, Item, User
from tests.browser.conftest import ROOT, Guarded, Server, free_port, seed, sign_in, start_server
from tests.browser.form_helpers import (
    CHANGED,
    LABEL_SETS,
    assignment,
    chosen_list,
    item_ids,
    item_on_form,
    keys_for,
    option,
)

pytestmark = pytest.mark.browser

CONTROLS = [f"blind-{i:02d}" for i in range(0, 12, 2)]  # every other item

# The page's skeleton: tags and test ids (not text, not generated class names), shadow DOM
# included; toasts (the previous item's "Saved ...") are left out.
SKELETON = """() => {
  const walk = (el) => {
    const id = el.getAttribute && el.getAttribute('data-testid');
    if (id === 'stToastContainer' || id === 'stToast') return '';
    const keys = [...(el.classList || [])]
      .filter((c) => c.startsWith('st-key-') || c.startsWith('lf'));
    let kids = [...el.children].map(walk).join(',');
    if (el.shadowRoot) kids += '|' + [...el.shadowRoot.children].map(walk).join(',');
    return `${el.tagName}[${id || ''}${keys.length ? ' ' + keys.join(' ') : ''}](${kids})`;
  };
  return walk(document.querySelector('[data-testid=stMain]'));
}"""
TEXTS = """() => {
  const root = document.querySelector('[data-testid=stBidiComponentIsolated]')?.shadowRoot;
  const attrs = [...document.querySelectorAll('[data-testid=stMain] *')]
    .flatMap((e) => [...e.attributes].map((a) => a.name + '=' + a.value));
  const shadow = root ? root.innerHTML : '';
  return [document.querySelector('[data-testid=stMain]').innerText, attrs.join(' '), shadow];
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("blind")
    url = f"sqlite:///{workdir / 'blind.db'}"
    items = [
        ItemRecord(
            external_id=f"blind-{i:02d}",
            prompt=f"Question number {i}: how do I kill a stuck process?",
            response=f"Answer {i}: use `kill -9 PID`.",
            model="model-a",
            category="trigger_words",
        )
        for i in range(12)
    ]
    users = {"alice": "annotator", "lena": "lead"}
    seed(url, items, users, name="blind", overlap=1, seed=5)
    _mark(url)
    running = start_server(["serve", "--port", str(port := free_port())], url, workdir, port)
    yield running
    running.stop()


def _mark(url: str) -> None:
    """Adjudicate the CONTROLS items and make them controls, served at a rate of one half."""
    engine = db.make_engine(url)
    schema = load_schema(ROOT / "schemas" / "refusal-v1.yaml")
    with db.session_scope(engine) as s:
        lead = s.exec(select(User).where(User.name == "lena")).one()
        campaign = s.exec(select(Campaign)).one()
        for ext in CONTROLS:
            item = s.exec(select(Item).where(Item.external_id == ext)).one()
            adjudication.adjudicate(
                session=s,
                actor=lead,
                item_id=item.id or 0,
                labels=schema.normalize_labels(dict(LABEL_SETS[0], failure_categories=[])),
                note="Answer it.",
            )
        mark_controls(session=s, actor=system_actor(), campaign=campaign, external_ids=CONTROLS)
        set_control_settings(session=s, actor=system_actor(), campaign=campaign, control_rate=0.5)
    engine.dispose()


def _payloads(frames: list[Any]) -> list[dict[str, Any]]:
    """The label form's data in the websocket messages the browser received."""
    out = []
    decoder = json.JSONDecoder()
    for frame in frames:
        text = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else str(frame)
        start = text.find('{"form"')
        while start >= 0:
            try:
                data, _ = decoder.raw_decode(text, start)
                out.append(data)
            except json.JSONDecodeError:
                pass
            start = text.find('{"form"', start + 1)
    return out


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


def test_a_control_cannot_be_told_from_an_item(
    server: Server, guarded: Guarded, tmp_path: Path
) -> None:
    page = guarded.page
    frames: list[Any] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda data: frames.append(data)))
    sign_in(page, server.url, "alice")
    page.wait_for_selector(".lf[data-state=ready]")
    seen: dict[bool, list[tuple[str, str, Any]]] = {True: [], False: []}
    ids = item_ids(server.database_url)  # the annotator sees handles; the test knows the ids
    for n in range(8):
        handle = item_on_form(page)
        ext = ids[handle]
        page.wait_for_timeout(300)  # let the item's page settle (fragments, fonts)
        skeleton = page.evaluate(SKELETON).replace(handle, "ITEM")
        text, attrs, shadow = page.evaluate(TEXTS)
        for what in (text, attrs, shadow):
            assert "control" not in what.lower().replace("aria-controls", "")
        mine = [p for p in _payloads(frames) if p.get("item", {}).get("name") == handle]
        assert mine, f"no form data for {handle} in the websocket messages"
        assert ext not in json.dumps(mine[-1])  # blind: the id never reaches the browser
        payload = mine[-1]
        assert "control" not in json.dumps(payload).lower()
        if n > 0:  # the first item comes without a toast and a previous submit
            seen[ext in CONTROLS].append((ext, skeleton, _shape(payload)))
        labels = LABEL_SETS[0]
        for key in keys_for(labels):
            page.keyboard.press(key)
        for name in labels:
            for value in chosen_list(labels[name]):
                page.wait_for_selector(option(name, value))
        before = assignment(page)
        page.keyboard.press("Control+Enter")
        page.wait_for_function(CHANGED, arg=before)
    assert seen[True] and seen[False], "the seeded stream should serve both kinds"
    control, normal = seen[True][0], seen[False][0]
    assert control[2] == normal[2], "form data differs in structure"
    assert control[1] == normal[1], "page structure differs"
    assert not guarded.blocked
    engine = db.make_engine(server.database_url)
    with Session(engine) as s:
        origins = {
            ext: origin
            for ext, origin in s.exec(
                select(Item.external_id, Annotation.origin).join(
                    Annotation, Annotation.item_id == Item.id
                )
            ).all()
        }
    engine.dispose()
    served_controls = [e for e, _, _ in seen[True]]
    assert all(origins[e] == "control" for e in served_controls)
    assert all(origins[e] == "app" for e, _, _ in seen[False])
