"""Label: the next item of a campaign, labeled with the keyboard; submit, skip or flag it.

The form lives in the browser (labelform.py): choosing costs the server nothing, and the
submit is one message, handled by submission.handle_message. The item and its form are a
fragment, so the answer to a submit is the next item only, not the whole page.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import streamlit as st
from sqlmodel import Session

from annotate import labeling, storage
from annotate.app import labelform, qualification, submission
from annotate.app import render as view
from annotate.app.context import (
    AppContext,
    check_session,
    cookie_still_matches,
    fragment,
    show_error,
)
from annotate.app.submission import Feedback
from annotate.errors import AnnotateError, StorageUnavailable
from annotate.schema import LabelSchema
from annotate.storage import visibility
from annotate.storage.models import Campaign, utcnow

EXHAUSTED_RECHECK_S = 60.0
LOG = logging.getLogger("annotate.app")


def render(ctx: AppContext) -> None:
    """The labeling page."""
    campaign = pick_campaign(ctx)
    if campaign is None:
        return
    with ctx.session() as s:
        schema = storage.campaign_schema(session=s, campaign=campaign)
    with st.sidebar:
        if campaign.guidelines.strip():
            with st.expander("Guidelines", icon=":material/menu_book:"):
                st.markdown(campaign.guidelines)
        with st.expander("Keys", expanded=True, icon=":material/keyboard:"):
            st.markdown(labelform.key_legend(labelform.form_spec(schema)))
    workspace(ctx, campaign, schema)


@dataclass
class Desk:
    """What the page keeps between runs: the item on screen and the form's answer counter."""

    claim: labeling.Claim | None = None
    seq: int = 0
    feedback: Feedback | None = None
    # The lead's labels for the qualification item just submitted (qualification only).
    lesson: labeling.Feedback | None = None
    # What the viewer may see of the item on screen, and the assignment it was read for.
    shown: visibility.ItemView | None = None
    shown_for: int | None = None
    fresh: bool = False  # `shown` was read in this run (by the submit's transaction)


def _desk(ctx: AppContext, campaign: Campaign) -> Desk:
    desks: dict[tuple[int, int], Desk] = st.session_state.setdefault("annotate.desk", {})
    return desks.setdefault((ctx.user.id or 0, campaign.id or 0), Desk())


DEFERRED = "annotate.label.session_deferred"


def _submit_checks_session(ctx: AppContext) -> bool:
    """Whether this fragment run may leave the session check to its submit: it carries a
    message of the form, and the cookie (checked without the database) is the one `ctx.user`
    signed in with. The submit's transaction reads the user back first (role, active flag,
    session generation) and saves nothing when they changed; a run whose submit did not
    succeed makes the whole check afterwards. One transaction per label instead of two."""
    deferred = labelform.INBOX in st.session_state and cookie_still_matches(ctx)
    st.session_state[DEFERRED] = deferred
    return deferred


@fragment(deferred=_submit_checks_session)
def workspace(ctx: AppContext, campaign: Campaign, schema: LabelSchema) -> None:
    """The item and its form; a submit reruns only this, which answers with the next item."""
    # A fixed slot for notices, so that the form below keeps its place (and stays mounted).
    slot = st.empty()
    desk = _desk(ctx, campaign)
    raw = st.session_state.pop(labelform.INBOX, None)
    deferred = st.session_state.pop(DEFERRED, False)
    if labelform.wants_form(raw):
        raw = None
        if deferred:
            check_session(ctx)  # no submit to check the sign-in
    outcome = None
    before = desk.claim
    if raw is not None:
        # The sign-in was checked for this run already (context.fragment; main() on a full
        # run), or is checked by the submit's own transaction (`_submit_checks_session`).
        claimed_at = desk.claim.assignment.claimed_at if desk.claim is not None else None
        shown = (desk.shown_for, desk.shown.name) if desk.shown and desk.shown_for else None
        outcome = submission.handle_message(
            engine=ctx.engine,
            user=ctx.user,
            schema=schema,
            raw=raw,
            claimed_at=claimed_at,
            shown=shown,
            then=None if _exhausted_recently(campaign) else _next_claim(ctx, campaign),
        )
        if deferred and outcome.after is None:
            # The submit did not get through (refused, stale user, nothing to claim next):
            # the check it stood in for, before anything is shown.
            check_session(ctx)
        desk.seq += 1
        desk.feedback = outcome.feedback
        if outcome.toast:
            st.toast(outcome.toast)
        if outcome.notice:
            slot.warning(view.inert(outcome.notice), icon=":material/info:")
    qual = qualification.state(ctx, campaign)
    if outcome is not None and outcome.advance:
        desk.lesson = None
        if outcome.finished == "done" and before is not None and qual is not None:
            desk.lesson = qualification.fetch(ctx, campaign, before.item.id or 0)
    if desk.lesson is not None:
        qualification.show(schema, desk.lesson)
    if outcome is not None and not outcome.advance and desk.claim is not None:
        claim: labeling.Claim | None = desk.claim  # refused: the same item, no query
    elif outcome is not None and outcome.after is not None:
        # Claimed, and read as the viewer may see it, in the submit's own transaction.
        claim, seen = outcome.after
        desk.claim, desk.shown, desk.shown_for = claim, seen, claim.assignment.id
        desk.fresh = True
        _exhausted().pop(campaign.id or 0, None)
    else:
        claim = desk.claim = _claim(ctx, campaign, after=outcome is not None, qual=qual)
    if claim is None:
        return
    qualification.banner(qual)
    _progress_line(
        ctx, campaign, claim.assignment.id or 0, outcome.finished if outcome is not None else None
    )
    # Only what the signed-in person may see of the item reaches the page (storage.visibility):
    # annotators get the text, an opaque handle and the keys the campaign allows, read afresh
    # (the menu's campaigns are kept a while, a fragment's arguments longer).
    shown = _view(ctx, campaign, claim, desk)
    left, right = st.columns([3, 2], gap="large")
    with left:
        with st.container(key="item-header"):
            st.caption(header(shown))
        # One element for the whole conversation and its stylesheet (not a chat block per turn,
        # nor the style apart): fewer messages per answer, and fewer for the browser to lay
        # out before the next item shows. The style follows the item (test_labeling_flow
        # checks in Chromium that it applies).
        st.html(item_html(shown) + ITEM_STYLE)
        more = {k: v for k, v in shown.details.items() if k not in visibility.ATTRIBUTES}
        if more:
            with st.expander("More about this item"):
                st.json(more, expanded=True)
    with right:
        labelform.mount(form_data(schema, claim, desk, shown))


def _view(
    ctx: AppContext, campaign: Campaign, claim: labeling.Claim, desk: Desk
) -> visibility.ItemView:
    """The item as the viewer may see it, with the campaign's visible keys read afresh; while
    the database is down, the view already on screen for this assignment (a refused submit
    keeps the item, its form and the choices in it). A view read in this run's submit (the
    campaign read afresh there) is used as it is."""
    if desk.shown is not None and desk.shown_for == claim.assignment.id and desk.fresh:
        desk.fresh = False
        return desk.shown
    try:
        with ctx.session() as s:
            fresh = s.get(Campaign, campaign.id) or campaign
            shown = visibility.view_item(item=claim.item, campaign=fresh, viewer=ctx.user)
    except StorageUnavailable:
        if desk.shown is not None and desk.shown_for == claim.assignment.id:
            return desk.shown
        raise
    desk.shown, desk.shown_for = shown, claim.assignment.id
    return shown


# The stylesheet of rendered text (render.STYLE) and of the item's turns, sent with the item.
ITEM_STYLE = (
    view.STYLE
    + """<style>
.annotate-turn { border-radius: 0.5rem; padding: 0.6rem 0.9rem 0.2rem 0.9rem;
  margin-bottom: 0.8rem; }
.annotate-turn-user, .annotate-turn-system { background: rgba(128,128,128,0.08); }
.annotate-turn-assistant { border: 1px solid rgba(128,128,128,0.3); }
.annotate-who { font-size: 0.8rem; opacity: 0.7; margin-bottom: 0.3rem; }
</style>"""
)
TURN_TITLES = {"user": "User", "assistant": "Assistant", "system": "System"}


def item_html(shown: visibility.ItemView, response_label: str = "Response to label") -> str:
    """The item as HTML: each turn of the conversation (or the prompt), then the response to
    label, each in a box titled by its role; the text made safe by render.safe_html."""
    turns: list[tuple[str, str, str]] = []
    conversation: list[dict[str, Any]] = shown.conversation or []
    for turn in conversation:
        role = view.ROLES.get(str(turn.get("role")), "user")
        turns.append((role, TURN_TITLES[role], str(turn.get("content", ""))))
    if not conversation and shown.prompt is not None:
        turns.append(("user", TURN_TITLES["user"], shown.prompt))
    turns.append(("assistant", response_label, shown.response))
    return "".join(
        f'<div class="annotate-turn annotate-turn-{role}">'
        f'<div class="annotate-who">{html.escape(title)}</div>{view.safe_html(text)}</div>'
        for role, title, text in turns
    )


def header(shown: visibility.ItemView) -> str:
    """The caption naming the item: its name for this viewer, then the attributes shown."""
    parts = [f"item {view.plain(shown.name)}"]
    parts += [
        f"{key} {view.plain(value)}"
        for key, value in shown.details.items()
        if key in visibility.ATTRIBUTES
    ]
    return " · ".join(parts)


def form_data(
    schema: LabelSchema, claim: labeling.Claim, desk: Desk, shown: visibility.ItemView
) -> dict[str, Any]:
    """What the browser form gets: the schema, the item on screen (by the name its viewer may
    see: a handle for annotators), the last refusal."""
    elapsed = (utcnow() - claim.assignment.claimed_at).total_seconds()
    fb = desk.feedback
    return {
        "form": labelform.spec_for_browser(schema),
        "item": {
            "assignment": claim.assignment.id,
            "name": shown.name,
            "elapsed_s": round(max(0.0, elapsed), 1),
        },
        "feedback": {
            "seq": desk.seq,
            "kind": fb.kind if fb else "",
            "text": fb.text if fb else "",
            "focus": fb.focus if fb else None,
            "rules": list(fb.rules) if fb else [],
        },
    }


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


def _exhausted() -> dict[int, float]:
    # When each campaign was last found to have nothing left for this session's user.
    exhausted: dict[int, float] = st.session_state.setdefault("annotate.exhausted", {})
    return exhausted


def _exhausted_recently(campaign: Campaign) -> bool:
    return time.time() - _exhausted().get(campaign.id or 0, 0.0) < EXHAUSTED_RECHECK_S


def _next_claim(
    ctx: AppContext, campaign: Campaign
) -> Callable[[Session], tuple[labeling.Claim, visibility.ItemView] | None]:
    """The claim of the next item and the view of it, for the submit's own transaction."""

    def claim(session: Session) -> tuple[labeling.Claim, visibility.ItemView] | None:
        got = labeling.claim_next(
            session=session,
            user=ctx.user,
            campaign=campaign,
            lease_minutes=ctx.settings.lease_minutes,
        )
        if got is None:
            return None
        fresh = session.get(Campaign, campaign.id) or campaign
        return got, visibility.view_item(item=got.item, campaign=fresh, viewer=ctx.user)

    return claim


def _claim(
    ctx: AppContext,
    campaign: Campaign,
    *,
    after: bool = False,
    qual: labeling.Qualification | None = None,
) -> labeling.Claim | None:
    # `after` a finished item there is no live lease to read first (claim_next returns one
    # anyway, should another tab have claimed meanwhile).
    exhausted = _exhausted()
    try:
        claim = None
        if not after:
            with ctx.session() as s:
                claim = labeling.current_claim(session=s, user=ctx.user, campaign=campaign)
        recent = _exhausted_recently(campaign)
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
    if qualification.closed(qual):
        return None
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


PROGRESS_REFRESH_S = 300.0


def _progress_line(
    ctx: AppContext, campaign: Campaign, assignment_id: int, finished: str | None = None
) -> None:
    # Counted once per item, not on every keypress; after a submit or a skip from this page
    # the counts move on by one without a query, and are recounted every few minutes (other
    # tabs, the last hour sliding).
    cache = st.session_state.setdefault("annotate.progress", {})
    if cache.get("for") != assignment_id:
        fresh = time.time() - cache.get("at", 0.0) < PROGRESS_REFRESH_S
        old: labeling.Progress | None = cache.get("value")
        if finished and fresh and old is not None and cache.get("campaign") == campaign.id:
            cache["value"] = replace(
                old,
                done=old.done + (finished == "done"),
                skipped=old.skipped + (finished == "skipped"),
                last_hour=old.last_hour + (finished == "done"),
            )
        else:
            with ctx.session() as s:
                cache["value"] = labeling.progress(session=s, user=ctx.user, campaign=campaign)
            cache.update(at=time.time(), campaign=campaign.id)
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
