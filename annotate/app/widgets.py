"""The label form, built from the schema: one button per option, each with its keyboard key.

Streamlit 1.67's `st.pills` and `st.segmented_control` take no keyboard shortcut, and its
`shortcut=` exists only on buttons, so every option is a button (primary when selected) whose
shortcut is the key the schema gives it. Streamlit reserves `c` and `r` (rerun, clear cache)
and refuses them even with modifiers; an option whose schema key it refuses gets a spare key,
shown on the button and in the key legend.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from annotate.schema import LabelField, LabelSchema, RuleWarning

STREAMLIT_RESERVED = frozenset({"c", "r"})
BLUR = ":blur:"
SUBMIT = "Ctrl+Enter"
BACK = "Esc"
_ACTION_KEYS = {"skip": ("s", "z", "0"), "flag": ("a", "z", "0")}
_SPARE = "z0as" + "bdefghijklmnopqtuvwxy123456789"
_FKEY = re.compile(r"^[Ff]([1-9]|10|12)$")
SKIP_REASONS = (
    ("1", "Outside my expertise"),
    ("2", "The item is broken or unreadable"),
    ("3", "I cannot judge it fairly"),
    ("4", "Other (say why below)"),
)


def usable(key: str | None) -> bool:
    """Whether Streamlit accepts `key` as a button shortcut on its own."""
    if key is None:
        return False
    if len(key) == 1:
        return key.isalnum() and key.lower() not in STREAMLIT_RESERVED
    return bool(_FKEY.match(key))


@dataclass(frozen=True)
class KeyMap:
    """Which key does what on the label form."""

    options: Mapping[tuple[str, str], str]
    actions: Mapping[str, str]
    remapped: tuple[tuple[str, str, str], ...] = ()  # (schema key, key used, field.option)


# Keyed by object identity (the store hands out one cached schema object per stored schema);
# the schema is kept alongside so its id cannot be reused while the entry lives.
_KEY_MAPS: dict[int, tuple[LabelSchema, KeyMap]] = {}


def key_map(schema: LabelSchema) -> KeyMap:
    """Keys for every option (the schema's where Streamlit allows), skip, flag and submit."""
    cached = _KEY_MAPS.get(id(schema))
    if cached is None or cached[0] is not schema:
        if len(_KEY_MAPS) > 64:
            _KEY_MAPS.clear()
        cached = (schema, _build_key_map(schema))
        _KEY_MAPS[id(schema)] = cached
    return cached[1]


def _build_key_map(schema: LabelSchema) -> KeyMap:
    used = {o.key.lower() for f in schema.fields for o in f.options if usable(o.key) and o.key}
    actions = {"submit": SUBMIT, "back": BACK}
    for action, preferred in _ACTION_KEYS.items():
        choice = next(k for k in preferred + tuple(_SPARE) if k not in used)
        actions[action] = choice
        used.add(choice)
    options: dict[tuple[str, str], str] = {}
    remapped: list[tuple[str, str, str]] = []
    for f in schema.choice_fields:
        for o in f.options:
            if usable(o.key) and o.key:
                options[(f.name, o.value)] = o.key
                continue
            spare = next((k for k in _SPARE if k not in used), None)
            if spare is None:
                continue  # more options than keys: this one is clicked, not typed
            used.add(spare)
            options[(f.name, o.value)] = spare
            if o.key:
                remapped.append((o.key, spare, f"{f.name}.{o.value}"))
    return KeyMap(options=options, actions=actions, remapped=tuple(remapped))


# -- form state ------------------------------------------------------------------------------


@dataclass
class FormState:
    """What the annotator has chosen so far on one item (kept in session state)."""

    values: dict[str, Any] = field(default_factory=dict)
    flagged: bool = False
    skipping: bool = False
    skip_reason: str | None = None
    confirmed: tuple[str, ...] = ()
    started: float = field(default_factory=time.time)
    focus: str | None = None
    focus_nonce: int = 0

    def request_focus(self, key: str) -> None:
        """Put the keyboard focus in the text box with widget key `key` after this run."""
        self.focus = key
        self.focus_nonce += 1


def awaits_override(
    state: FormState, warnings: Sequence[RuleWarning], scope: str, rationale: str | None
) -> bool:
    """Whether this press only confirms broken rules: on the first press with unconfirmed
    warnings they are recorded as an override to confirm and the rationale box gets the focus."""
    broken = tuple(w.rule for w in warnings)
    if not broken or set(state.confirmed) >= set(broken):
        return False
    state.confirmed = broken
    if rationale is not None:
        state.request_focus(text_key(scope, rationale))
    return True


def form_state(
    scope: str,
    initial: Mapping[str, Any] | None = None,
    *,
    started: float | None = None,
    flagged: bool = False,
) -> FormState:
    """The form state of `scope` (an assignment or annotation), created on first use.

    `started` (seconds since the epoch) is when the time on the item began: the claim, so
    that a reload does not reset the clock.
    """
    states: dict[str, FormState] = st.session_state.setdefault("annotate.forms", {})
    if scope not in states:
        # Only the current item's form is worth keeping.
        states.clear()
        states[scope] = FormState(
            values=dict(initial or {}),
            flagged=flagged,
            started=started if started is not None else time.time(),
            # A new item: take the focus out of any text box, where the last Ctrl+Enter may
            # have left it (React can reuse the element), so that option keys work at once.
            focus=BLUR,
        )
    return states[scope]


def _toggle(scope: str, spec: LabelField, value: str) -> None:
    state = form_state(scope)
    if spec.kind == "multi":
        chosen = list(state.values.get(spec.name) or [])
        chosen = [v for v in chosen if v != value] if value in chosen else [*chosen, value]
        state.values[spec.name] = [v for v in spec.values if v in chosen]
    else:
        state.values[spec.name] = None if state.values.get(spec.name) == value else value
    state.confirmed = ()


def forget(scope: str) -> None:
    """Drop a finished form: its state and the text typed into it (drafts of `scope`)."""
    st.session_state.pop("annotate.forms", None)
    for key in [k for k in st.session_state if str(k).endswith(f"-{scope}")]:
        del st.session_state[key]


def text_key(scope: str, name: str) -> str:
    """Widget key of text field `name` in `scope` (new item, new empty box)."""
    return f"text-{name}-{scope}"


def collect(schema: LabelSchema, scope: str, state: FormState) -> dict[str, Any]:
    """The labels as the form holds them: choices plus the text boxes."""
    labels = {f.name: state.values.get(f.name) for f in schema.choice_fields}
    for f in schema.fields:
        if f.kind == "text":
            labels[f.name] = st.session_state.get(text_key(scope, f.name)) or None
    return labels


# -- rendering -------------------------------------------------------------------------------


def option_buttons(schema: LabelSchema, scope: str, keys: KeyMap, state: FormState) -> None:
    """One row of buttons per shown choice field; the chosen ones are primary.

    A field whose `show_when` does not hold for the choices so far is not drawn (its value,
    if any, is dropped when the labels are normalised).
    """
    shown = {f.name for f in schema.shown_fields(state.values)}
    for spec in schema.choice_fields:
        if spec.name not in shown:
            continue
        title = f"**{spec.label}**" + (" · pick any" if spec.kind == "multi" else "")
        st.markdown(title, help=spec.help or None)
        chosen = state.values.get(spec.name)
        with st.container(horizontal=True, gap="small"):
            for option in spec.options:
                selected = (
                    option.value in (chosen or [])
                    if spec.kind == "multi"
                    else chosen == option.value
                )
                st.button(
                    option.title,
                    key=f"opt-{spec.name}-{option.value}",
                    type="primary" if selected else "secondary",
                    help=option.guideline,
                    shortcut=keys.options.get((spec.name, option.value)),
                    on_click=_toggle,
                    args=(scope, spec, option.value),
                )


def text_fields(schema: LabelSchema, scope: str, initial: Mapping[str, Any]) -> None:
    """The schema's free-text fields (rationale); Ctrl+Enter inside them submits."""
    for spec in schema.fields:
        if spec.kind != "text":
            continue
        key = text_key(scope, spec.name)
        if key not in st.session_state:
            st.session_state[key] = initial.get(spec.name) or ""
        st.text_area(spec.label, key=key, help=spec.help or None, height=80)


def show_warnings(warnings: list[RuleWarning], state: FormState) -> None:
    """Consistency warnings; once confirmed they read as an override awaiting its rationale."""
    if not warnings:
        return
    lines = "\n".join(f"- {w.message}" for w in warnings)
    if set(state.confirmed) >= {w.rule for w in warnings}:
        st.warning(
            f"{lines}\n\nYou are overriding this. Say why in the rationale, then press "
            f"**{SUBMIT}** again.",
            icon=":material/rule:",
        )
    else:
        st.warning(lines, icon=":material/rule:")


def focus_script(state: FormState) -> None:
    """Move the keyboard focus into the requested text box (our own constant script).

    Streamlit has no autofocus; without this a keyboard user would tab through every option
    button to reach the rationale. The script is emitted only when a focus was requested and
    carries a counter so that a repeated request runs it again.
    """
    if state.focus is None:
        return
    if state.focus == BLUR:
        action = (
            "var a=document.activeElement;"
            "if(a&&(a.tagName==='TEXTAREA'||a.tagName==='INPUT')){a.blur();}"
        )
    else:
        selector = f".st-key-{state.focus} textarea, .st-key-{state.focus} input"
        action = f"var e=document.querySelector({selector!r});if(e){{e.focus();}}"
    st.html(
        f"<script>/* {id(state)} {state.focus_nonce} */"
        f"setTimeout(function(){{{action}}}, 60);</script>",
        unsafe_allow_javascript=True,
    )
    state.focus = None


def key_legend(schema: LabelSchema, keys: KeyMap) -> str:
    """Markdown listing every key, for the sidebar."""
    rows = [
        f"- **{SUBMIT}** submit · **{keys.actions['skip']}** skip · "
        f"**{keys.actions['flag']}** flag for the lead"
    ]
    for spec in schema.choice_fields:
        pairs = " · ".join(
            f"**{keys.options[(spec.name, o.value)]}** {o.title}"
            for o in spec.options
            if (spec.name, o.value) in keys.options
        )
        rows.append(f"- {spec.label}: {pairs}")
    for original, used, what in keys.remapped:
        rows.append(
            f"- `{original}` ({what}) is one of Streamlit's own keys, so **{used}** is used"
        )
    return "\n".join(rows)
