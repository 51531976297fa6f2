"""Label: the next item of a campaign, labeled with the keyboard; submit, skip or flag it.

Keys come from the schema (see widgets.key_map); Ctrl+Enter submits, also from inside the
rationale box. The form is a fragment: choosing an option reruns the form, not the page.
"""

from __future__ import annotations

import logging
import time

import streamlit as st

from annotate import labeling, storage
from annotate.app import render as view
from annotate.app import widgets
from annotate.app.context import AppContext, fragment, show_error
from annotate.errors import AnnotateError, Conflict, StorageUnavailable, ValidationProblem
from annotate.schema import LabelSchema
from annotate.storage.models import Campaign

EXHAUSTED_RECHECK_S = 60.0
NOTICE_KEY = "annotate.label.notice"
LOG = logging.getLogger("annotate.app")


def render(ctx: AppContext) -> None:
    """The labeling page."""
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        st.warning(notice, icon=":material/info:")
    campaign = pick_campaign(ctx)
    if campaign is None:
        return
    claim = _claim(ctx, campaign)
    if claim is None:
        return
    with ctx.session() as s:
        schema = storage.campaign_schema(session=s, campaign=campaign)
    keys = widgets.key_map(schema)
    _progress_line(ctx, campaign, claim.assignment.id or 0)
    with st.sidebar:
        if campaign.guidelines.strip():
            with st.expander("Guidelines", icon=":material/menu_book:"):
                st.markdown(campaign.guidelines)
        with st.expander("Keys", expanded=True, icon=":material/keyboard:"):
            st.markdown(widgets.key_legend(schema, keys))
    left, right = st.columns([3, 2], gap="large")
    with left:
        item = claim.item
        meta = [f"item {view.plain(item.external_id)}"]
        meta += [
            f"{name} {view.plain(value)}"
            for name, value in (
                ("model", item.model),
                ("category", item.category),
                ("group", item.group_id),
                ("source", item.source),
            )
            if value
        ]
        with st.container(key="item-header"):
            st.caption(" · ".join(meta))
        view.show_item(item, response_label="Response to label")
        if item.meta:
            with st.expander("More about this item"):
                st.json(item.meta, expanded=True)
    with right:
        label_form(
            ctx,
            assignment_id=claim.assignment.id or 0,
            started=claim.assignment.claimed_at.timestamp(),
            external_id=claim.item.external_id,
            schema=schema,
        )


CAMPAIGNS_TTL_S = 30.0


def open_campaigns(ctx: AppContext) -> list[Campaign]:
    """The campaigns the user may label, re-read at most every CAMPAIGNS_TTL_S seconds.

    Only what the menu shows is cached: claims and submits check membership themselves.
    """
    cache = st.session_state.setdefault("annotate.campaigns", {})
    if cache.get("user") != ctx.user.id or time.time() - cache.get("at", 0.0) > CAMPAIGNS_TTL_S:
        with ctx.session() as s:
            cache["value"] = [
                c
                for c in storage.list_campaigns(session=s, actor=ctx.user)
                if storage.can_label(session=s, user=ctx.user, campaign=c)
            ]
        cache.update(user=ctx.user.id, at=time.time())
    return list(cache["value"])


def pick_campaign(ctx: AppContext) -> Campaign | None:
    """The campaign to label: from the URL (`?campaign=`), else the first one open to the user."""
    campaigns = open_campaigns(ctx)
    if not campaigns:
        st.info("You are not on any campaign yet. An admin adds campaigns and members.")
        return None
    names = [c.name for c in campaigns]
    wanted = st.query_params.get("campaign")
    current = wanted if wanted in names else names[0]
    if len(names) > 1:
        current = st.selectbox("Campaign", names, index=names.index(current), key="campaign")
    if st.query_params.get("campaign") != current:
        st.query_params["campaign"] = current
    return campaigns[names.index(current)]


def _claim(ctx: AppContext, campaign: Campaign) -> labeling.Claim | None:
    exhausted: dict[int, float] = st.session_state.setdefault("annotate.exhausted", {})
    try:
        with ctx.session() as s:
            claim = labeling.current_claim(session=s, user=ctx.user, campaign=campaign)
        recent = time.time() - exhausted.get(campaign.id or 0, 0.0) < EXHAUSTED_RECHECK_S
        if claim is None and not recent:
            with ctx.session(immediate=True) as s:
                claim = labeling.claim_next(
                    session=s,
                    user=ctx.user,
                    campaign=campaign,
                    lease_minutes=ctx.settings.lease_minutes,
                )
    except AnnotateError as exc:
        show_error(exc)
        return None
    if claim is not None:
        exhausted.pop(campaign.id or 0, None)
        return claim
    exhausted[campaign.id or 0] = exhausted.get(campaign.id or 0) or time.time()
    st.success(
        f"Nothing left for you in campaign **{campaign.name}**: every item you may label is "
        "done or being labeled by others. Thank you!",
        icon=":material/task_alt:",
    )
    if st.button("Check for new items", key="recheck"):
        exhausted.pop(campaign.id or 0, None)
        st.rerun()
    return None


def _progress_line(ctx: AppContext, campaign: Campaign, assignment_id: int) -> None:
    # Counted once per item, not on every keypress.
    cache = st.session_state.setdefault("annotate.progress", {})
    if cache.get("for") != assignment_id:
        with ctx.session() as s:
            cache["value"] = labeling.progress(session=s, user=ctx.user, campaign=campaign)
        cache["for"] = assignment_id
    p: labeling.Progress = cache["value"]
    pace = (
        f" · median {p.median_seconds:.0f} s per item · {p.last_hour} in the last hour"
        if p.median_seconds is not None
        else ""
    )
    st.caption(
        f"**{campaign.name}** · you: {p.done} done, {p.skipped} skipped, {p.assigned} assigned "
        f"· {p.campaign_items} items in the campaign{pace}"
    )


@fragment
def label_form(
    ctx: AppContext,
    *,
    assignment_id: int,
    started: float,
    external_id: str,
    schema: LabelSchema,
) -> None:
    """Options, rationale, flag, and the submit/skip buttons for one leased item."""
    scope = f"a{assignment_id}"
    state = widgets.form_state(scope, started=started)
    keys = widgets.key_map(schema)
    if state.skipping:
        _skip_panel(ctx, scope, state, assignment_id, external_id)
        widgets.focus_script(state)
        return
    labels = widgets.collect(schema, scope, state)
    with st.container(horizontal=True, gap="small"):
        submitted = st.button(
            "Submit", key="act-submit", type="primary", shortcut=keys.actions["submit"]
        )
        st.button(
            "Skip…",
            key="act-skip",
            shortcut=keys.actions["skip"],
            on_click=_start_skip,
            args=(scope,),
            help="Give the item back, with a reason",
        )
        st.button(
            "Unflag" if state.flagged else "Flag for lead",
            key="act-flag",
            shortcut=keys.actions["flag"],
            on_click=_toggle_flag,
            args=(scope,),
            help="Ask a lead to look at this item; you may leave fields empty",
        )
    # Errors and warnings sit right under the buttons, where the eye is after a keypress.
    feedback = st.container()
    if state.flagged:
        st.text_area(
            "Note for the lead (why you flag this item)", key=f"flagnote-{scope}", height=68
        )
    widgets.option_buttons(schema, scope, keys, state)
    widgets.text_fields(schema, scope, {})
    with feedback:
        if submitted:
            _submit(ctx, schema, scope, state, assignment_id, external_id, labels)
        widgets.show_warnings(schema.check_consistency(labels), state)
    widgets.focus_script(state)


def _start_skip(scope: str) -> None:
    state = widgets.form_state(scope)
    state.skipping = True


def _toggle_flag(scope: str) -> None:
    state = widgets.form_state(scope)
    state.flagged = not state.flagged
    if state.flagged:
        state.request_focus(f"flagnote-{scope}")


def _submit(
    ctx: AppContext,
    schema: LabelSchema,
    scope: str,
    state: widgets.FormState,
    assignment_id: int,
    external_id: str,
    labels: dict[str, object],
) -> None:
    rationale = labeling.rationale_field(schema)
    try:
        _, warnings = labeling.review_labels(schema, labels, partial=state.flagged)
    except ValidationProblem as exc:
        show_error(exc)
        return
    if widgets.awaits_override(state, warnings, scope, rationale):
        return
    try:
        with ctx.session(immediate=True) as s:
            labeling.submit(
                session=s,
                user=ctx.user,
                assignment_id=assignment_id,
                labels=labels,
                duration_s=max(0.0, time.time() - state.started),
                overridden_rules=state.confirmed,
                flagged=state.flagged,
                flag_note=st.session_state.get(f"flagnote-{scope}"),
            )
    except Conflict as exc:
        # The item is no longer ours to label (labeled by enough others, or already sent from
        # another tab): let go of it and move on, saying why.
        with ctx.session(immediate=True) as s:
            labeling.release(session=s, user=ctx.user, assignment_id=assignment_id)
        widgets.forget(scope)
        st.session_state[NOTICE_KEY] = str(exc)
        st.rerun()
    except StorageUnavailable as exc:
        _cannot_save(exc, "submit")
        return
    except AnnotateError as exc:
        show_error(exc)
        if rationale is not None and "rationale" in str(exc):
            state.request_focus(widgets.text_key(scope, rationale))
        return
    widgets.forget(scope)
    st.toast(f"Saved {external_id}" + (" (flagged for the lead)" if state.flagged else ""))
    st.rerun()


def _cannot_save(exc: StorageUnavailable, action: str) -> None:
    # The form state is untouched, so the choices stay on screen for the retry; the driver's
    # words (host, port, errno) are for the log, not for the annotator.
    LOG.warning("%s failed, database unavailable: %s", action, exc)
    st.error(
        "Can't save right now: the database is not answering. Nothing you chose is lost; "
        f"press **{widgets.SUBMIT}** again in a moment.",
        icon=":material/cloud_off:",
    )


def _skip_panel(
    ctx: AppContext,
    scope: str,
    state: widgets.FormState,
    assignment_id: int,
    external_id: str,
) -> None:
    st.markdown(f"**Skip {view.plain(external_id)}?** Pick a reason.")
    with st.container(horizontal=True, gap="small"):
        for key, reason in widgets.SKIP_REASONS:
            st.button(
                reason,
                key=f"skip-reason-{key}",
                type="primary" if state.skip_reason == reason else "secondary",
                shortcut=key,
                on_click=_pick_reason,
                args=(scope, reason),
            )
    details_key = f"skipnote-{scope}"
    st.text_input("Details (optional, unless Other)", key=details_key)
    with st.container(horizontal=True, gap="small"):
        confirm = st.button(
            "Skip item", key="act-skip-confirm", type="primary", shortcut=widgets.SUBMIT
        )
        st.button(
            "Back", key="act-skip-back", shortcut=widgets.BACK, on_click=_stop_skip, args=(scope,)
        )
    if not confirm:
        return
    details = (st.session_state.get(details_key) or "").strip()
    reason = state.skip_reason or ""
    if reason.startswith("Other"):
        reason = details
    elif details:
        reason = f"{reason}: {details}"
    try:
        with ctx.session(immediate=True) as s:
            labeling.skip(session=s, user=ctx.user, assignment_id=assignment_id, reason=reason)
    except StorageUnavailable as exc:
        _cannot_save(exc, "skip")
        return
    except AnnotateError as exc:
        show_error(exc)
        state.request_focus(details_key)
        return
    widgets.forget(scope)
    st.toast(f"Skipped {external_id}")
    st.rerun()


def _pick_reason(scope: str, reason: str) -> None:
    state = widgets.form_state(scope)
    state.skip_reason = reason
    if reason.startswith("Other"):
        state.request_focus(f"skipnote-{scope}")


def _stop_skip(scope: str) -> None:
    state = widgets.form_state(scope)
    state.skipping = False
    state.skip_reason = None
