"""Driving the browser label form as a person does: Tab between fields, number keys within.

The form (annotate/app/assets/labelform.js) sits in a shadow root. Playwright's CSS selectors
reach into it; JavaScript predicates go through FORM_ROOT.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, select

from annotate.schema import LabelSchema, load_schema
from annotate.storage import db, visibility
from annotate.storage.models import Campaign, Item
from tests.browser.conftest import ROOT

SCHEMA = load_schema(ROOT / "schemas" / "refusal-v1.yaml")
FORM_ROOT = "document.querySelector('[data-testid=stBidiComponentIsolated]')?.shadowRoot"
FORM = ".lf"
CHOSEN = "button.lf-opt[aria-pressed=true]"
# Consistent label sets (no rule broken), taken in turn by the load driver.
LABEL_SETS: tuple[dict[str, Any], ...] = (
    {"intent": "benign", "epistemic_status": "answerable", "right_action": "answer",
     "observed_action": "answer", "confidence": "high"},
    {"intent": "benign", "epistemic_status": "answerable", "right_action": "answer_with_caveat",
     "observed_action": "answer_with_caveat", "confidence": "medium"},
    {"intent": "harmful", "epistemic_status": "answerable", "right_action": "refuse",
     "observed_action": "refuse", "confidence": "high"},
    {"intent": "benign", "epistemic_status": "answerable", "right_action": "answer_safe_part",
     "observed_action": "answer_safe_part", "confidence": "medium"},
    {"intent": "benign", "epistemic_status": "answerable", "right_action": "clarify",
     "observed_action": "clarify", "confidence": "medium"},
)  # fmt: skip
# The form's item changed (a new assignment number), or nothing is left to label.
CHANGED = (
    "(old) => { const r = " + FORM_ROOT + "; const f = r && r.querySelector('.lf');"
    " return (f && f.dataset.assignment !== old && f.dataset.state === 'ready')"
    " || document.body.innerText.includes('Nothing left'); }"
)


def chosen_list(value: Any) -> list[str]:
    """A label value as the list of options it chooses."""
    if isinstance(value, list):
        return list(value)
    return [value] if value else []


def option_key(schema: LabelSchema, name: str, value: str) -> str:
    """The key that chooses `value` of field `name`: its number (1-9, 0 for the tenth) once
    the field is marked, past the tenth option the option's letter from the schema."""
    spec = schema.field(name)
    at = spec.values.index(value)
    if at < 10:
        return str((at + 1) % 10)
    letter = spec.options[at].key
    if letter is None:
        raise ValueError(f"option {at + 1} of `{name}` has no number and no letter key")
    return letter.lower()


def keys_for(labels: Mapping[str, Any], schema: LabelSchema = SCHEMA) -> list[str]:
    """The keys that fill an empty form with the choices in `labels`: for each field the form
    shows for them (schema order; a field hidden by its `show_when` gets no Tab stop), the key
    of every chosen option, then Tab to the next field."""
    keys: list[str] = []
    for f in schema.shown_fields(labels):
        if f.kind != "text":
            keys += [option_key(schema, f.name, v) for v in chosen_list(labels.get(f.name))]
        keys.append("Tab")
    while keys and keys[-1] == "Tab":
        keys.pop()
    return keys


def tab_stops(labels: Mapping[str, Any], schema: LabelSchema = SCHEMA) -> list[str]:
    """The fields Tab goes through while `labels` are chosen in order: the shown ones."""
    return [f.name for f in schema.shown_fields(labels)]


def expected_labels(labels: Mapping[str, Any], schema: LabelSchema = SCHEMA) -> dict[str, Any]:
    """What the database holds after submitting `labels` from the form (unchosen fields empty,
    fields hidden by their `show_when` null)."""
    shown = set(tab_stops(labels, schema))
    out: dict[str, Any] = {}
    for f in schema.fields:
        value = labels.get(f.name)
        if f.name not in shown:
            out[f.name] = None
        elif f.kind == "multi":
            out[f.name] = [v for v in f.values if v in chosen_list(value)]
        else:
            out[f.name] = value or None
    return out


def chosen(page: Any) -> set[str]:
    """The options the form shows as chosen, as `field=value`."""
    found: list[str] = page.eval_on_selector_all(
        CHOSEN, "els => els.map(e => e.dataset.field + '=' + e.dataset.value)"
    )
    return set(found)


def option(name: str, value: str, pressed: bool = True) -> str:
    """Selector of option `value` of field `name`, shown as chosen (or not)."""
    state = "true" if pressed else "false"
    return f"button.lf-opt[data-field={name}][data-value={value}][aria-pressed={state}]"


def assignment(page: Any) -> str:
    """The assignment number of the item the form is for."""
    return str(page.get_attribute(FORM, "data-assignment"))


def item_on_form(page: Any) -> str:
    """The item the form is for, as its viewer may name it: a `#` handle for annotators
    (see `item_ids` for the item ids behind them), the item id for leads."""
    return str(page.get_attribute(FORM, "data-item"))


def item_ids(database_url: str) -> dict[str, str]:
    """Every item's handle (what annotators see) -> its id, to check labels in the database."""
    engine = db.make_engine(database_url)
    try:
        with Session(engine) as s:
            rows = s.exec(select(Item, Campaign).join(Campaign)).all()
            return {
                visibility.item_handle(campaign=c, item_id=i.id or 0): i.external_id
                for i, c in rows
            }
    finally:
        engine.dispose()


def focused(page: Any) -> str:
    """The field the form marks as focused."""
    return str(page.get_attribute(".lf-field.lf-focused", "data-field"))
