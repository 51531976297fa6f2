"""The label form as a browser component (st.components.v2): the schema in, one message out.

The whole form is drawn and driven in the browser by assets/labelform.js from a description
of the schema (`form_spec`): fields, options with their guideline, consistency rules, which
fields show when. Keys: Tab and Shift+Tab move between fields, 1-9 (and 0 for a tenth option)
choose within the marked field, an option's letter from the schema chooses it from anywhere,
`/` writes the rationale and Esc leaves it, Ctrl+Enter submits; skip and flag have a letter
each. Nothing goes to the server until the submit (or the skip): one trigger, `message`,
which `on_message` puts in the page's inbox for submission.handle_message.

What an answer carries is kept small: the JS and CSS are files of the component's asset
directory (assets/), which the browser fetches once, and the schema's description is sent
once per session (`spec_for_browser`), later answers naming it by its id; a browser that does
not hold that description asks for it again (a message of kind `form`, `wants_form`).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.components.v2.get_bidi_component_manager import get_bidi_component_manager
from streamlit.components.v2.manifest_scanner import ComponentConfig, ComponentManifest

from annotate import labeling
from annotate.app.submission import SKIP_REASONS, SUBMIT_KEY
from annotate.schema import LabelSchema

PACKAGE, COMPONENT = "annotate", "labelform"
NAME = f"{PACKAGE}.{COMPONENT}"
KEY = "labelform"
INBOX = "annotate.label.inbox"
HELD = "annotate.label.form_held"  # the id of the form description this session's browser has
TEXT_KEY = "/"
_ACTION_KEYS = {"skip": "s", "flag": "a"}
_SPARE = "zxqjkvwyubgpfmhdlnoteicr"
ASSETS = Path(__file__).with_name("assets")


def _declare_assets() -> None:
    """Tell the running Streamlit where the component's files are, as a `pyproject.toml`
    manifest (`[tool.streamlit.component]`) would: an installed wheel carries no
    pyproject.toml, and each AppTest runs its own registry."""
    manager = get_bidi_component_manager()
    if manager.get_component_asset_root(NAME) is None:
        manifest = ComponentManifest(
            name=PACKAGE,
            version="0",
            components=[ComponentConfig(name=COMPONENT, asset_dir=ASSETS.name)],
        )
        manager.register_from_manifest(manifest, ASSETS.parent)


@lru_cache(maxsize=1)
def _component() -> Any:
    # File-backed: the browser fetches labelform.js (which imports labels.js, the label logic
    # shared with the server's rules) and the stylesheet once; answers carry their URLs only.
    return st.components.v2.component(NAME, html="", css="labelform.css", js="labelform.js")


def _show_when(spec: Any) -> dict[str, Any] | None:
    # Schemas that say when a field shows (refusal-v2) hold conditions in the same language as
    # rules: field -> values, {none_of: [...]} or {empty: bool}; labels.js reads them as JSON.
    if hasattr(spec, "model_dump"):
        cond = spec.model_dump(mode="json").get("show_when")
    else:
        cond = getattr(spec, "show_when", None)
    return json.loads(json.dumps(cond)) if cond else None


# Keyed by object identity (the store hands out one cached schema object per stored schema);
# the schema is kept alongside so that its id cannot be reused while the entry lives.
_SPECS: dict[int, tuple[LabelSchema, dict[str, Any]]] = {}


def form_spec(schema: LabelSchema) -> dict[str, Any]:
    """What the browser form needs to know about `schema` (JSON-ready, cached per schema)."""
    cached = _SPECS.get(id(schema))
    if cached is None or cached[0] is not schema:
        if len(_SPECS) > 64:
            _SPECS.clear()
        cached = (schema, _build_spec(schema))
        _SPECS[id(schema)] = cached
    return cached[1]


def _letter(key: str | None) -> str | None:
    # Digits choose within the marked field, so only letters (and the like) stay shortcuts.
    if key is None or len(key) != 1 or key.isdigit() or key.isspace() or key == TEXT_KEY:
        return None
    return key.lower()


def _build_spec(schema: LabelSchema) -> dict[str, Any]:
    shortcuts: dict[str, list[str]] = {}
    fields = []
    for f in schema.fields:
        options = []
        for o in f.options:
            letter = _letter(o.key)
            if letter is not None and letter in shortcuts:
                letter = None
            if letter is not None:
                shortcuts[letter] = [f.name, o.value]
            options.append(
                {"value": o.value, "title": o.title, "guideline": o.guideline, "key": letter}
            )
        fields.append(
            {
                "name": f.name,
                "label": f.label,
                "kind": f.kind,
                "required": f.required,
                "ordered": f.ordered,
                "help": f.help,
                "show_when": _show_when(f),
                "options": options,
            }
        )
    keys = {"text": TEXT_KEY}
    for action, preferred in _ACTION_KEYS.items():
        taken = set(shortcuts) | set(keys.values())
        keys[action] = next(k for k in preferred + _SPARE if k not in taken)
    return {
        "id": f"{schema.id}:{schema.fingerprint()[:12]}",
        "fields": fields,
        "rules": [r.model_dump(mode="json") for r in schema.rules],
        "rationale": labeling.rationale_field(schema),
        "keys": keys,
        "shortcuts": shortcuts,
        "skip_reasons": list(SKIP_REASONS),
    }


def _either(words: list[str], last: str = "or") -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


def condition_text(spec: dict[str, Any], show_when: dict[str, Any]) -> str:
    """A field's `show_when` in words, with the display names of fields and options."""
    by_name = {f["name"]: f for f in spec["fields"]}
    parts = []
    for name, cond in show_when.items():
        other = by_name.get(name, {"label": name, "options": [], "kind": "single"})
        titles = {o["value"]: o["title"] for o in other["options"]}
        verb = "includes" if other["kind"] == "multi" else "is"
        if isinstance(cond, list):
            what = f"{verb} {_either([titles.get(v, v) for v in cond])}"
        elif cond.get("empty") is not None:
            what = "is left empty" if cond["empty"] else "is given"
        else:
            what = f"{verb} not {_either([titles.get(v, v) for v in cond.get('none_of', [])])}"
        parts.append(f"{other['label']} {what}")
    return " and ".join(parts)


def key_legend(spec: dict[str, Any]) -> str:
    """Markdown listing every key of the form, and the fields Tab goes through, for the sidebar.

    A field that `show_when` hides at times is marked "(only when ...)": Tab skips it while
    it is hidden, and its number and letter keys do nothing then.
    """
    keys = spec["keys"]
    rows = [
        "- **Tab** / **Shift+Tab** next / previous field (the marked one)",
        "- **1**-**9** choose in the marked field (**0**: the tenth option); again to unchoose",
        f"- **{keys['text']}** write the {spec['rationale'] or 'text'} · **Esc** leave it",
        f"- **{SUBMIT_KEY}** submit · **{keys['skip']}** skip · **{keys['flag']}** flag for the "
        "lead",
    ]

    def when(f: dict[str, Any]) -> str:
        cond = f.get("show_when")
        return f" (only when {condition_text(spec, cond)})" if cond else ""

    rows.append(
        "- Fields, in Tab order: "
        + " · ".join(f"**{f['label']}**{when(f)}" for f in spec["fields"])
    )
    for f in spec["fields"]:
        pairs = " · ".join(f"**{o['key']}** {o['title']}" for o in f["options"] if o["key"])
        if pairs:
            rows.append(f"- {f['label']}{when(f)}: {pairs}")
    return "\n".join(rows)


def on_message() -> None:
    """The form's trigger: keep its message for the page run it starts."""
    state = st.session_state.get(KEY)
    message = state.get("message") if state is not None else None
    if message is not None:
        st.session_state[INBOX] = message


def wants_form(raw: Any) -> bool:
    """Whether the form's message asks for the schema's description again (its browser does
    not hold the one named); the next answer then carries it in full."""
    if isinstance(raw, dict) and raw.get("kind") == "form":
        st.session_state.pop(HELD, None)
        return True
    return False


def spec_for_browser(schema: LabelSchema) -> dict[str, Any]:
    """The form description to send: in full the first time in this session, then its id."""
    spec = form_spec(schema)
    if st.session_state.get(HELD) == spec["id"]:
        return {"id": spec["id"]}
    st.session_state[HELD] = spec["id"]
    return spec


def mount(data: dict[str, Any]) -> None:
    """The form, with a stable key: the same instance stays mounted from item to item."""
    _declare_assets()  # also for a registry of its own (each AppTest)
    _component()(key=KEY, data=data, on_message_change=on_message)
