"""Adjudicate one item: everyone's labels side by side, then the final labels and the band.

Leads only (`annotate.review` checks the role; names are shown because only leads get
here). The final labels start from the annotators' majority per field (or the current
adjudication when re-adjudicating); the band starts from `bands.suggest_band`: the schema's
credits around the chosen right action, widened for actions a good share of annotators chose.
Overriding the majority right action, or final labels that break a consistency rule, needs a
note. Fields follow the schema's `show_when` as on the label form: a field that does not
apply to the labels chosen is not shown, not required and null in the final labels. Under
refusal-v2 the lead may also say why the annotators disagreed (`disagreement_cause`, a
select; optional, as the schema says). A field no annotator gave starts unset and stays null
in the gold record unless the lead sets it ("None apply" is the empty selection, a label).
Saving with a required field unset (nobody gave it, or the annotators tied) names every such
field above the final labels, scrolled to the top of the window, and moves the focus to the
first. Saving appends an
adjudication (a re-adjudication points at the one it replaces) and, unless turned off, moves
to the next item of the queue.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from annotate import labeling, review, storage
from annotate.app import lead, said, widgets
from annotate.app import render as view
from annotate.app.context import AppContext, show_error
from annotate.app.pages import review as review_page
from annotate.errors import AnnotateError
from annotate.review import controls
from annotate.review.adjudication import CAUSE, ItemDetail
from annotate.schema import LabelField, LabelSchema
from annotate.stats import bands
from annotate.storage.models import Campaign

FLASH_KEY = "annotate.adjudicate.flash"
PROBLEM_KEY = "adj-problem"


def render(ctx: AppContext) -> None:
    """The adjudication page for the item in the URL (`?campaign=...&item=...`)."""
    st.title("Adjudicate")
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash:
        st.success(flash)
    campaign_name, external_id = lead.target()
    campaign = _campaign(ctx, campaign_name)
    if campaign is None:
        return
    if not external_id:
        _no_item(ctx, campaign)
        return
    try:
        with ctx.session() as s:
            item_id = review.find_item(
                session=s, actor=ctx.user, campaign=campaign, external_id=external_id
            )
            detail = review.item_detail(session=s, actor=ctx.user, item_id=item_id)
            schema = storage.campaign_schema(session=s, campaign=campaign)
    except AnnotateError as exc:
        show_error(exc)
        _no_item(ctx, campaign)
        return
    _header(detail)
    if detail.current is not None:
        _control_toggle(ctx, campaign, detail)
    left, right = st.columns([3, 2], gap="large")
    with left:
        # The model name comes from the imported file: shown as text, never as markdown.
        model = view.plain(detail.model) if detail.model else "model unknown"
        view.show_item(detail, response_label=f"Response ({model})")
        if detail.meta:
            # Leads see everything annotators may not (imported labels, notes, ...).
            with st.expander("More about this item"):
                st.json(detail.meta, expanded=True)
        st.markdown("#### What the annotators said")
        said.side_by_side(schema, detail)
        said.history(detail)
    with right:
        _form(ctx, campaign, schema, detail)


def _campaign(ctx: AppContext, name: str | None) -> Campaign | None:
    if name:
        try:
            with ctx.session() as s:
                return storage.get_campaign(session=s, name=name)
        except AnnotateError as exc:
            show_error(exc)
    return lead.pick_campaign(ctx, key="adj-campaign")


def _no_item(ctx: AppContext, campaign: Campaign) -> None:
    st.info("Choose an item on the Review page, or start with the most disagreed one.")
    if st.button("Open the most disagreed item", key="adj-first", type="primary"):
        _go_next(ctx, campaign, current=None, done=None)


def _header(detail: ItemDetail) -> None:
    facts = [
        f"item {view.plain(detail.external_id)}",
        f"campaign {view.plain(detail.campaign)}",
    ]
    for label, value in (
        ("category", detail.category),
        ("model", detail.model),
        ("group", detail.group_id),
        ("source", detail.source),
    ):
        if value:
            facts.append(f"{label} {view.plain(value)}")
    st.caption(" · ".join(facts))
    humans = sum(1 for a in detail.annotations if not a.is_machine)
    majority = view.plain(detail.majority) if detail.majority else "none (no action has > half)"
    status = "not adjudicated yet"
    if detail.current is not None:
        status = (
            f"adjudicated by {view.plain(detail.current.lead)} on "
            f"{detail.current.created_at:%Y-%m-%d %H:%M} UTC ({detail.current.method})"
        )
    st.markdown(
        f"**{humans}** human labels · disagreement **{detail.disagreement:.2f}** · "
        f"majority right action: **{majority}** · {status}"
    )


def _control_toggle(ctx: AppContext, campaign: Campaign, detail: ItemDetail) -> None:
    """ "Use as control item" for an adjudicated item; acts only when the lead flips it."""
    key = f"adj-control-{detail.item_id}"

    def flip() -> None:
        want = bool(st.session_state.get(key))
        try:
            with ctx.session(immediate=True) as s:
                change = controls.mark_controls if want else controls.unmark_controls
                change(
                    session=s, actor=ctx.user, campaign=campaign, external_ids=[detail.external_id]
                )
        except AnnotateError as exc:
            st.session_state[key] = not want  # nothing changed: the toggle says so
            show_error(exc)
            return
        st.session_state[FLASH_KEY] = (
            "Item is a control now: served to annotators to check them, never in agreement or gold."
            if want
            else "Item is no longer a control."
        )

    with ctx.session() as s:
        marked = controls.is_control_item(session=s, actor=ctx.user, item_id=detail.item_id)
    if key not in st.session_state:
        st.session_state[key] = marked
    st.toggle(
        "Use as control item",
        key=key,
        on_change=flip,
        help="Controls are mixed into annotators' streams at the campaign's control rate and "
        "score them against your labels; they leave agreement, the review queue and releases.",
    )


# -- the decision ----------------------------------------------------------------------------


def _form(ctx: AppContext, campaign: Campaign, schema: LabelSchema, detail: ItemDetail) -> None:
    scope = f"adj-{detail.item_id}-{detail.current.id if detail.current else 0}"
    initial = {f.name: detail.suggested_labels.get(f.name) for f in schema.choice_fields}
    state = widgets.form_state(scope, initial=initial)
    st.markdown("#### Final labels")
    # Filled when a save is refused: above the fields, so that it and they show together.
    problem = st.container(key=PROBLEM_KEY)
    _model_opinion(ctx, campaign, schema, detail, state, scope)
    widgets.option_buttons(schema, scope, widgets.key_map(schema), state)
    chosen = {f.name: state.values.get(f.name) for f in schema.choice_fields}
    # As on the label form: a field whose `show_when` does not hold is not drawn, never
    # required, and null in the final labels, whatever was pre-filled.
    shown = {f.name for f in schema.shown_fields(chosen)}
    _unset_fields(schema, scope, state, shown)
    labels: dict[str, Any] = {k: v if k in shown else None for k, v in chosen.items()}
    broken = schema.check_consistency(labels)
    for warning in broken:
        st.warning(warning.message, icon=":material/rule:")
    if broken:
        st.caption(
            "These labels break the schema's consistency rules: saving them needs a note "
            "saying why, and records the rules as overridden."
        )
    right = labels.get(schema.right_action_field)
    band: dict[str, float] | None = None
    if right:
        band = _band_editor(schema, detail, scope, right)
    overrides = bool(detail.majority and right and right != detail.majority)
    if overrides:
        st.warning(
            f"`{right}` overrides the annotators' majority `{detail.majority}`: the note is "
            "required.",
            icon=":material/edit_note:",
        )
    note = st.text_area(
        "Note" + (" (required)" if overrides or broken else ""),
        key=f"adj-note-{scope}",
        height=80,
        help="Why this decision; shown with the item in the gold release.",
    )
    gap = st.checkbox(
        "Guideline gap: the guidelines do not settle this item",
        key=f"adj-gap-{scope}",
        value=bool(detail.current and detail.current.guideline_gap),
    )
    cause = _cause_select(schema, scope, detail)
    advance = st.toggle("Then open the next item", value=True, key="adj-advance")
    with st.container(horizontal=True):
        save = st.button(
            "Save adjudication",
            key="adj-save",
            type="primary",
            shortcut=widgets.SUBMIT,
            icon=":material/gavel:",
        )
        skip = st.button("Skip to next", key="adj-skip")
    if save:
        missing = labeling.missing_fields(schema, labels)
        if missing:
            _refuse_incomplete(problem, missing, detail)
            return
        saved = _save(ctx, detail, labels, band, note, gap, cause, problem)
        if saved:
            # Widget labels and alerts render markdown: ids are shown, never interpreted.
            st.session_state[FLASH_KEY] = f"Adjudicated {view.plain(detail.external_id)}"
            if advance:
                _go_next(ctx, campaign, current=detail.external_id, done=detail.item_id)
            st.rerun()
    if skip:
        _go_next(ctx, campaign, current=detail.external_id, done=None)


def _model_opinion(
    ctx: AppContext,
    campaign: Campaign,
    schema: LabelSchema,
    detail: ItemDetail,
    state: widgets.FormState,
    scope: str,
) -> None:
    """The annotator model's right action and posterior beside the majority's, with a button
    that takes it (only where items carry three or more labels: otherwise there is no model)."""
    table, key = lead.label_table(ctx, campaign, adjudications=False)
    served = review_page.suggestions(ctx, table, key)
    if not served.ready:
        if served.error is None:
            st.caption("Annotator model: being computed; it shows on a later load.")
        return
    suggestions = served.value
    if detail.item_id not in suggestions.index:
        return
    row = suggestions.loc[detail.item_id]
    label, posterior = str(row["model_label"]), float(row["posterior"])
    majority = view.plain(detail.majority) if detail.majority else "none"
    field = schema.right_action_field
    with st.container(horizontal=True, vertical_alignment="center", key="adj-model"):
        st.caption(
            f"Annotator model (Dawid-Skene): {view.plain(label)}, posterior {posterior:.2f} · "
            f"majority: {majority}"
        )
        if state.values.get(field) != label and st.button(
            f"Use {view.plain(label)}", key=f"adj-use-model-{scope}"
        ):
            state.values[field] = label
            st.rerun()


def _band_editor(
    schema: LabelSchema, detail: ItemDetail, scope: str, right: str
) -> dict[str, float]:
    """Credits per action, pre-filled for the chosen right action; the lead edits them."""
    suggested = detail.suggested_labels.get(schema.right_action_field)
    if right == suggested and detail.suggested_band:
        start = detail.suggested_band
    else:
        start = bands.suggest_band(schema, right, detail.votes.get(schema.right_action_field, {}))
    st.markdown(
        "#### Tolerance band",
        help="Credit a model earns for each action on this item: 1 for the right action, "
        "partial credit for acceptable neighbours, 0 (left out) for the rest. Pre-filled from "
        "the schema's credits and from how the annotators split.",
    )
    band: dict[str, float] = {}
    actions = schema.action_labels
    cols = st.columns(4)
    for i, action in enumerate(actions):
        with cols[i % 4]:
            value = st.number_input(
                action.replace("_", " "),
                min_value=0.0,
                max_value=1.0,
                step=0.05,
                format="%.2f",
                value=1.0 if action == right else float(start.get(action, 0.0)),
                disabled=action == right,
                key=f"adj-band-{scope}-{right}-{action}",
            )
        if value > 0:
            band[action] = 1.0 if action == right else float(value)
    return band


def _save(
    ctx: AppContext,
    detail: ItemDetail,
    labels: dict[str, Any],
    band: dict[str, float] | None,
    note: str,
    gap: bool,
    cause: str | None,
    problem: Any,
) -> bool:
    try:
        with ctx.session(immediate=True) as s:
            review.adjudicate(
                session=s,
                actor=ctx.user,
                item_id=detail.item_id,
                labels=labels,
                band=band,
                note=note,
                guideline_gap=gap,
                disagreement_cause=cause,
            )
    except AnnotateError as exc:
        with problem:
            show_error(exc)
        _scroll_to_problem(None)
        return False
    return True


def _cause_select(schema: LabelSchema, scope: str, detail: ItemDetail) -> str | None:
    """Why the annotators disagreed (the schema's `disagreement_cause`, refusal-v2 on), from
    the stored adjudication when re-adjudicating; None when the schema has no such field or
    the lead leaves it unset."""
    spec = next((f for f in schema.adjudication_fields if f.name == CAUSE), None)
    if spec is None:
        return None
    values = spec.values
    current = detail.current.disagreement_cause if detail.current else None
    guideline = {o.value: o.guideline for o in spec.options}
    title = {o.value: o.title for o in spec.options}
    listing = "\n".join(f"- **{title[v]}**: {guideline[v]}" for v in values)
    choice = st.selectbox(
        spec.label + ("" if spec.required else " (optional)"),
        options=values,
        index=values.index(current) if current in values else None,
        format_func=lambda v: title.get(v, v),
        placeholder="Not recorded",
        key=f"adj-cause-{scope}",
        help=f"{spec.help}\n\n{listing}" if spec.help else listing,
    )
    if choice:
        st.caption(view.inert(guideline.get(choice, "")))
    return str(choice) if choice else None


def _unset_fields(
    schema: LabelSchema, scope: str, state: widgets.FormState, shown: set[str]
) -> None:
    """For each shown multi-choice field left unset: say so, and offer the empty selection."""
    for spec in schema.choice_fields:
        if (
            spec.kind != "multi"
            or spec.name not in shown
            or state.values.get(spec.name) is not None
        ):
            continue
        cols = st.columns([3, 1], vertical_alignment="center")
        cols[0].caption(
            f"{spec.label}: unset (no annotator gave it). Saved unset it is null in the gold "
            "record; tick what applies, or choose None apply."
        )
        cols[1].button(
            "None apply",
            key=f"adj-none-{spec.name}",
            on_click=_set_empty,
            args=(scope, spec.name),
            help="Nothing of this field applies: the empty selection, a label.",
        )


def _set_empty(scope: str, name: str) -> None:
    widgets.form_state(scope).values[name] = []


def _refuse_incomplete(problem: Any, missing: list[LabelField], detail: ItemDetail) -> None:
    """Name every missing field (with the annotators' tie, if any) and focus the first."""
    parts = []
    for spec in missing:
        votes = detail.votes.get(spec.name) or {}
        top = max(votes.values(), default=0)
        tied = [v for v, n in votes.items() if n == top] if top else []
        why = f" (annotators tied: {', '.join(tied)})" if len(tied) > 1 else ""
        parts.append(f"{spec.label}{why}")
    with problem:
        # Display names come from the schema file: shown as text, never as markdown.
        st.error(
            view.inert("Not saved: choose the final " + ", ".join(parts) + "."),
            icon=":material/error:",
        )
    first = missing[0]
    _scroll_to_problem(f"opt-{first.name}-{first.options[0].value}")


def _scroll_to_problem(button_key: str | None) -> None:
    """Bring the problem box to the top of the window; focus the option button `button_key`.

    Our own constant script (keys come from the schema's identifiers, `[a-z0-9_]` only).
    """
    focus = (
        f"var b=document.querySelector('.st-key-{button_key} button');"
        "if(b){b.focus({preventScroll:true});}"
        if button_key
        else ""
    )
    st.html(
        "<script>setTimeout(function(){"
        f"var p=document.querySelector('.st-key-{PROBLEM_KEY}');"
        "if(p){p.scrollIntoView({block:'start'});}"
        f"{focus}}}, 80);</script>",
        unsafe_allow_javascript=True,
    )


def _go_next(ctx: AppContext, campaign: Campaign, *, current: str | None, done: int | None) -> None:
    """Open the most disagreed item that is not adjudicated yet (other than `current`)."""
    frame = review_page.whole_queue(ctx, campaign, include_adjudicated=False)
    if done is not None:
        frame = frame[frame["item_id"] != done]
    if current is not None:
        frame = frame[frame["external_id"] != current]
    if frame.empty:
        st.session_state[FLASH_KEY] = "The queue is empty: every complete item is adjudicated."
        st.query_params.pop(lead.ITEM_PARAM, None)
        st.session_state.pop(lead.TARGET_KEY, None)
        st.rerun()
    nxt = str(frame.iloc[0]["external_id"])
    st.query_params[lead.CAMPAIGN_PARAM] = campaign.name
    st.query_params[lead.ITEM_PARAM] = nxt
    st.session_state[lead.TARGET_KEY] = {lead.CAMPAIGN_PARAM: campaign.name, lead.ITEM_PARAM: nxt}
    st.rerun()
