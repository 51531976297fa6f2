"""What the label form's one message per item does on the server: check it, then save or skip.

The browser form (labelform.js) sends a submit or a skip for the item on screen; this module
reads that message as untrusted input, checks it with the same core functions as every other
way of labeling (required fields, consistency rules and their confirmed overrides with a
rationale, the flag note, the lease), and says what the page shows next: the next item, or
the same form with the reason it was refused and where to put the cursor. No Streamlit here,
so it is tested as a plain function.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from annotate import labeling
from annotate.errors import AnnotateError, Conflict, StorageUnavailable, ValidationProblem
from annotate.schema import LabelSchema
from annotate.storage import visibility
from annotate.storage.models import Campaign, Item, User, utcnow

LOG = logging.getLogger("annotate.app")
SUBMIT_KEY = "Ctrl+Enter"
SKIP_REASONS = (
    "Outside my expertise",
    "The item is broken or unreadable",
    "I cannot judge it fairly",
    "Other (say why below)",
)
CANT_SAVE = (
    "Can't save right now: the database is not answering. Nothing you chose is lost; "
    f"press {SUBMIT_KEY} again in a moment."
)
MAX_TEXT = 20_000
_QUOTED = re.compile(r"`([a-z][a-z0-9_]*)`")


@dataclass(frozen=True)
class Message:
    """A submit or a skip, as the form sent it (shape checked, content not yet)."""

    kind: str
    assignment_id: int
    labels: dict[str, Any] = field(default_factory=dict)
    duration_s: float | None = None
    overridden: tuple[str, ...] = ()
    flagged: bool = False
    flag_note: str | None = None
    reason: str = ""
    details: str = ""


@dataclass(frozen=True)
class Feedback:
    """Why the form was refused, and where the cursor goes: a field name, the rationale,
    `_flag_note`, `_skip` or `_skip_details`; `rules` are broken rules awaiting an override."""

    kind: str  # "error" or "override"
    text: str
    focus: str | None = None
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """What the page does after a message: the next item (`advance`) or the same form."""

    advance: bool
    finished: str | None = None  # "done" or "skipped": what became of the item
    toast: str | None = None
    notice: str | None = None
    feedback: Feedback | None = None
    # What `then` returned, run in the same transaction after the save or the skip (the next
    # claim); None when it was not run or failed (the caller then does it itself).
    after: Any = None


def parse_message(raw: Any) -> Message:
    """The message the form sent, shape-checked; ValidationProblem names what is wrong."""
    if not isinstance(raw, Mapping):
        raise ValidationProblem("The form sent something that is not a message")
    kind = raw.get("kind")
    if kind not in ("submit", "skip"):
        raise ValidationProblem(f"The form sent an unknown action `{kind}`")
    assignment = raw.get("assignment")
    if not isinstance(assignment, int) or isinstance(assignment, bool):
        raise ValidationProblem("The form sent no item to save")
    labels = raw.get("labels") or {}
    if not isinstance(labels, Mapping) or not all(isinstance(k, str) for k in labels):
        raise ValidationProblem("The form sent labels that are not a mapping of fields")
    overridden = raw.get("overridden") or []
    if not isinstance(overridden, list) or not all(isinstance(r, str) for r in overridden):
        raise ValidationProblem("The form sent overridden rules that are not a list of ids")
    duration = raw.get("duration_s")
    ok = isinstance(duration, int | float) and not isinstance(duration, bool)
    return Message(
        kind=str(kind),
        assignment_id=assignment,
        labels=dict(labels),
        duration_s=float(duration) if ok and math.isfinite(duration) else None,
        overridden=tuple(overridden[:100]),
        flagged=raw.get("flagged") is True,
        flag_note=_text(raw.get("flag_note"), "flag note"),
        reason=_text(raw.get("reason"), "skip reason") or "",
        details=_text(raw.get("details"), "skip details") or "",
    )


def _text(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationProblem(f"The form sent a {what} that is not text")
    if len(value) > MAX_TEXT:
        raise ValidationProblem(
            f"The {what} is {len(value):,} characters; keep it under {MAX_TEXT:,}"
        )
    return value


def handle_message(
    *,
    engine: Engine,
    user: User,
    schema: LabelSchema,
    raw: Any,
    claimed_at: datetime | None = None,
    now: datetime | None = None,
    shown: tuple[int, str] | None = None,
    then: Callable[[Session], Any] | None = None,
) -> Outcome:
    """Check and apply one message from the label form; never raises for a person's mistake.

    `claimed_at` is when the item on screen was leased: the time on item the form reports is
    kept within it. `shown` is the assignment on screen and the name it was shown under (what
    the toast calls it, without reading the item again). `then` runs in the write transaction
    of a save or a skip, once it succeeded (the page claims the next item there: one
    transaction per label); an AnnotateError from it is logged and leaves `after` None. A
    refused message leaves everything as it was (the form keeps its state).
    """
    try:
        message = parse_message(raw)
    except ValidationProblem as exc:
        return _refuse(str(exc))
    known = shown[1] if shown is not None and shown[0] == message.assignment_id else None
    if message.kind == "skip":
        return _skip(engine, user, message, known, then)
    return _submit(engine, user, schema, message, claimed_at, now or utcnow(), known, then)


def _refuse(text: str, focus: str | None = None, kind: str = "error") -> Outcome:
    return Outcome(advance=False, feedback=Feedback(kind=kind, text=text, focus=focus))


def _named_field(schema: LabelSchema, text: str) -> str | None:
    """The field a refusal names: a quoted field name, or the first display name listed in a
    missing-field message ("Still to label: Epistemic status, ...")."""
    names = {f.name for f in schema.fields}
    quoted = next((n for n in _QUOTED.findall(text) if n in names), None)
    if quoted is not None or ": " not in text:
        return quoted
    listed = [part.strip().rstrip(".") for part in text.split(": ", 1)[1].split(", ")]
    by_label = {f.label: f.name for f in schema.fields}
    return next((by_label[x] for x in listed if x in by_label), None)


def _duration(message: Message, claimed_at: datetime | None, now: datetime) -> float | None:
    # The browser's clock says how long the item was on screen; the lease bounds it.
    since_claim = (now - claimed_at).total_seconds() if claimed_at is not None else None
    reported = message.duration_s
    if reported is None or reported < 0:
        return max(0.0, since_claim) if since_claim is not None else None
    if since_claim is not None:
        return max(0.0, min(reported, since_claim + 1.0))
    return reported


def _submit(
    engine: Engine,
    user: User,
    schema: LabelSchema,
    message: Message,
    claimed_at: datetime | None,
    now: datetime,
    known: str | None = None,
    then: Callable[[Session], Any] | None = None,
) -> Outcome:
    rationale = labeling.rationale_field(schema)
    try:
        _, warnings = labeling.review_labels(schema, message.labels, partial=message.flagged)
    except ValidationProblem as exc:
        return _refuse(str(exc), _named_field(schema, str(exc)))
    if message.flagged and not (message.flag_note or "").strip():
        return _refuse("Say why you flag this item for the lead.", "_flag_note")
    unconfirmed = [w for w in warnings if w.rule not in set(message.overridden)]
    if unconfirmed:
        # Also what a form that could not check the rules itself gets: the override flow.
        lines = "\n".join(f"• {w.message}" for w in warnings)
        return Outcome(
            advance=False,
            feedback=Feedback(
                kind="override",
                text=f"{lines}\nYou are overriding this. Say why in the {rationale or 'rationale'},"
                f" then press {SUBMIT_KEY} again.",
                focus=rationale,
                rules=tuple(w.rule for w in warnings),
            ),
        )
    try:
        with labeling.write_session(engine) as s:
            annotation = labeling.submit(
                session=s,
                user=user,
                assignment_id=message.assignment_id,
                labels=message.labels,
                duration_s=_duration(message, claimed_at, now),
                overridden_rules=message.overridden,
                flagged=message.flagged,
                flag_note=message.flag_note,
            )
            saved = known or _item_name(s, annotation.item_id, user)
            after = _then(then, s)
    except Conflict as exc:
        return _let_go(engine, user, message, exc)
    except StorageUnavailable as exc:
        LOG.warning("submit failed, database unavailable: %s", exc)
        return _refuse(CANT_SAVE)
    except AnnotateError as exc:
        focus = rationale if rationale and "rationale" in str(exc) else None
        return _refuse(str(exc), focus or _named_field(schema, str(exc)))
    flagged = " (flagged for the lead)" if message.flagged else ""
    return Outcome(advance=True, finished="done", toast=f"Saved {saved}{flagged}", after=after)


def _then(then: Callable[[Session], Any] | None, session: Session) -> Any:
    if then is None:
        return None
    try:
        # A savepoint: whatever `then` wrote is undone when it fails, the save is kept.
        with session.begin_nested():
            return then(session)
    except AnnotateError as exc:
        LOG.info("the step after a save failed, the page retries it: %s", exc)
        return None


def _item_name(session: Session, item_id: int, user: User) -> str:
    # What `user` may call the item: a handle for annotators, the id for leads (visibility).
    item = session.get(Item, item_id)  # already in the session: no query
    campaign = session.get(Campaign, item.campaign_id) if item is not None else None
    if item is None or campaign is None:
        return "the item"
    return visibility.item_name(item=item, campaign=campaign, viewer=user)


def _let_go(engine: Engine, user: User, message: Message, exc: Conflict) -> Outcome:
    # The item is no longer ours to label (labeled by enough others, or already sent from
    # another tab): let go of it and move on, saying why.
    try:
        with labeling.write_session(engine) as s:
            labeling.release(session=s, user=user, assignment_id=message.assignment_id)
    except StorageUnavailable as down:
        LOG.warning("release failed, database unavailable: %s", down)
        return _refuse(CANT_SAVE)
    return Outcome(advance=True, notice=str(exc))


def skip_reason(reason: str, details: str, reasons: Sequence[str] = SKIP_REASONS) -> str:
    """The reason stored for a skip: the picked one, with the details; "Other" is the details.

    Raises ValidationProblem when no known reason was picked or "Other" comes without words.
    """
    details = details.strip()
    if reason not in reasons:
        raise ValidationProblem("Pick a reason for skipping (1-4)")
    if reason == reasons[-1]:
        if not details:
            raise ValidationProblem("Say why you skip this item")
        return details
    return f"{reason}: {details}" if details else reason


def _skip(
    engine: Engine,
    user: User,
    message: Message,
    known: str | None = None,
    then: Callable[[Session], Any] | None = None,
) -> Outcome:
    try:
        reason = skip_reason(message.reason, message.details)
    except ValidationProblem as exc:
        where = "_skip_details" if message.reason == SKIP_REASONS[-1] else "_skip"
        return _refuse(str(exc), where)
    try:
        with labeling.write_session(engine) as s:
            done = labeling.skip(
                session=s, user=user, assignment_id=message.assignment_id, reason=reason
            )
            skipped = known or _item_name(s, done.item_id, user)
            after = _then(then, s)
    except Conflict as exc:
        return Outcome(advance=True, notice=str(exc))
    except StorageUnavailable as exc:
        LOG.warning("skip failed, database unavailable: %s", exc)
        return _refuse(CANT_SAVE, "_skip")
    except AnnotateError as exc:
        return _refuse(str(exc), "_skip_details")
    return Outcome(advance=True, finished="skipped", toast=f"Skipped {skipped}", after=after)
