"""My work: page through your own past labels and change one; every version is kept.

Only the signed-in annotator's labels appear here (the core refuses anyone else's): labeling
is blind, so there are no other annotators' labels and no agreement figures on this page.
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from annotate import labeling, storage
from annotate.app import render as view
from annotate.app import widgets
from annotate.app.context import AppContext, show_error
from annotate.app.pages.label import header, pick_campaign
from annotate.errors import AnnotateError
from annotate.schema import LabelSchema, RuleWarning
from annotate.storage import visibility
from annotate.storage.models import Annotation, Campaign, Item

PAGE_SIZE = 20
EDIT_KEY = "annotate.my_work.edit"
SAVED_KEY = "annotate.my_work.saved"


def render(ctx: AppContext) -> None:
    """The My work page: a list of your labels, or the editor for one of them."""
    campaign = pick_campaign(ctx)
    if campaign is None:
        return
    saved = st.session_state.pop(SAVED_KEY, None)
    if saved:
        st.success(saved, icon=":material/check:")
    editing = st.session_state.get(EDIT_KEY)
    if editing is not None:
        _editor(ctx, int(editing))
        return
    search = st.text_input(
        "Find", key="mw-search", placeholder="words from the prompt, or an item's #handle"
    )
    page = int(st.session_state.get("mw-page", 0))
    with ctx.session() as s:
        rows, total = storage.list_own_annotations(
            session=s,
            user=ctx.user,
            campaign=campaign,
            offset=page * PAGE_SIZE,
            limit=PAGE_SIZE,
            search=search,
        )
        schema = storage.campaign_schema(session=s, campaign=campaign)
    if total == 0:
        st.info("No labels here yet." if not search else "Nothing matches.")
        return
    pages = (total + PAGE_SIZE - 1) // PAGE_SIZE
    page = min(page, pages - 1)
    st.caption(f"{total} labeled items · page {page + 1} of {pages} · newest change first")
    for annotation, item in rows:
        name = visibility.item_name(item=item, campaign=campaign, viewer=ctx.user)
        _row(schema, annotation, item, name)
    with st.container(horizontal=True, gap="small"):
        if st.button("Newer", key="mw-prev", disabled=page == 0, shortcut="Left"):
            st.session_state["mw-page"] = page - 1
            st.rerun()
        if st.button("Older", key="mw-next", disabled=page >= pages - 1, shortcut="Right"):
            st.session_state["mw-page"] = page + 1
            st.rerun()


def _summary(schema: LabelSchema, labels: dict[str, object]) -> str:
    parts = []
    for spec in schema.choice_fields:
        value = labels.get(spec.name)
        if spec.kind == "multi":
            text = ", ".join(str(v) for v in value) if isinstance(value, list) and value else "—"
        else:
            text = str(value) if value else "—"
        parts.append(f"{spec.name}: {text}")
    return " · ".join(parts)


def _ago(when: datetime) -> str:
    seconds = (datetime.now(UTC) - when).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def _row(schema: LabelSchema, annotation: Annotation, item: Item, name: str) -> None:
    with st.container(border=True, key=f"row-{annotation.id}"):
        head, action = st.columns([6, 1], vertical_alignment="center")
        with head:
            prompt = (item.prompt or "(conversation)").strip().replace("\n", " ")
            flag = " · flagged for the lead" if annotation.flagged else ""
            st.markdown(
                f"{view.plain(name)} · {_ago(annotation.updated_at)}{flag}  \n"
                f"{view.plain(prompt[:140] + ('…' if len(prompt) > 140 else ''))}"
            )
            st.caption(view.plain(_summary(schema, annotation.labels)))
        with action:
            if st.button("Edit", key=f"edit-{annotation.id}"):
                st.session_state[EDIT_KEY] = annotation.id
                st.rerun()


def _editor(ctx: AppContext, annotation_id: int) -> None:
    try:
        with ctx.session() as s:
            annotation, item = storage.get_own_annotation(
                session=s, user=ctx.user, annotation_id=annotation_id
            )
            campaign = s.get(Campaign, annotation.campaign_id)
            assert campaign is not None
            schema = storage.campaign_schema(session=s, campaign=campaign)
            history = storage.own_history(session=s, user=ctx.user, annotation_id=annotation_id)
    except AnnotateError as exc:
        show_error(exc)
        st.session_state.pop(EDIT_KEY, None)
        return
    if st.button(
        "Back to the list", key="mw-back", shortcut=widgets.BACK, icon=":material/arrow_back:"
    ):
        st.session_state.pop(EDIT_KEY, None)
        widgets.forget(f"e{annotation_id}")
        st.rerun()
    # Only what the annotator may see of the item (storage.visibility), as on the Label page.
    shown = visibility.view_item(item=item, campaign=campaign, viewer=ctx.user)
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.caption(header(shown))
        view.show_item(shown, response_label="Response")
    with right:
        _edit_form(ctx, annotation, schema, shown.name)
        with st.expander(f"History ({len(history)} versions)"):
            for version in reversed(history):
                st.caption(
                    f"{version.changed_at:%Y-%m-%d %H:%M:%S} UTC · {version.action}  \n"
                    f"{view.plain(_summary(schema, version.labels))}"
                )


def _edit_form(
    ctx: AppContext, annotation: Annotation, schema: LabelSchema, item_name: str
) -> None:
    scope = f"e{annotation.id}"
    choices = {f.name: annotation.labels.get(f.name) for f in schema.choice_fields}
    state = widgets.form_state(scope, initial=choices, flagged=annotation.flagged)
    keys = widgets.key_map(schema)
    widgets.option_buttons(schema, scope, keys, state)
    widgets.text_fields(schema, scope, annotation.labels)
    note_key = f"flagnote-{scope}"
    if note_key not in st.session_state:
        st.session_state[note_key] = annotation.flag_note or ""
    flagged = st.toggle("Flagged for the lead", value=state.flagged, key=f"flag-{scope}")
    state.flagged = flagged
    if flagged:
        st.text_area("Note for the lead", key=note_key, height=68)
    labels = widgets.collect(schema, scope, state)
    warnings = schema.check_consistency(labels)
    if not state.confirmed and annotation.overridden_rules:
        # Overrides confirmed earlier stay confirmed while the same rules are broken.
        state.confirmed = tuple(annotation.overridden_rules)
    feedback = st.container()
    if st.button("Save changes", key="mw-save", type="primary", shortcut=widgets.SUBMIT):
        with feedback:
            _save(
                ctx,
                annotation,
                schema,
                scope,
                state,
                labels,
                warnings,
                flagged,
                note_key,
                item_name,
            )
    with feedback:
        widgets.show_warnings(warnings, state)
    widgets.focus_script(state)


def _save(
    ctx: AppContext,
    annotation: Annotation,
    schema: LabelSchema,
    scope: str,
    state: widgets.FormState,
    labels: dict[str, object],
    warnings: list[RuleWarning],
    flagged: bool,
    note_key: str,
    item_name: str,
) -> None:
    rationale = labeling.rationale_field(schema)
    if widgets.awaits_override(state, warnings, scope, rationale):
        return
    try:
        with ctx.session(immediate=True) as s:
            labeling.edit(
                session=s,
                user=ctx.user,
                annotation_id=annotation.id or 0,
                labels=labels,
                overridden_rules=state.confirmed,
                flagged=flagged,
                flag_note=st.session_state.get(note_key),
            )
    except AnnotateError as exc:
        show_error(exc)
        if rationale is not None and "rationale" in str(exc):
            state.request_focus(widgets.text_key(scope, rationale))
        return
    widgets.forget(scope)
    st.session_state.pop(EDIT_KEY, None)
    st.session_state[SAVED_KEY] = (
        f"Saved your change to {item_name}; the previous version stays in its history"
    )
    st.rerun()
