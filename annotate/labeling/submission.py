"""Submit, skip and edit labels on a claimed item, with the schema's rules checked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, select

from annotate.accounts.auth import require_role
from annotate.errors import Conflict, ValidationProblem
from annotate.labeling import statements as sql
from annotate.labeling.claims import _check_labeler, _check_write_transaction, _lock_user
from annotate.labeling.slots import (
    MAX_REASON,
    _own_assignment,
    _own_assignment_in_full,
    _require_labeler,
)
from annotate.schema import LabelField, LabelSchema, LabelValue, RuleWarning
from annotate.settings import check_free_text
from annotate.storage.annotations import get_own_annotation, save_annotation
from annotate.storage.controls import CONTROL_ORIGIN
from annotate.storage.models import Annotation, Assignment, Campaign, Item, User, utcnow
from annotate.storage.schemas import campaign_schema
from annotate.storage.visibility import item_name


def rationale_field(schema: LabelSchema) -> str | None:
    """The text field that holds an annotator's rationale: `rationale`, else the first text one."""
    texts = [f.name for f in schema.fields if f.kind == "text"]
    return "rationale" if "rationale" in texts else (texts[0] if texts else None)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def missing_fields(schema: LabelSchema, labels: Mapping[str, Any]) -> list[LabelField]:
    """The required fields shown for `labels` that it gives no value for, in schema order.

    An empty selection of a multi-choice field is a value ("nothing ticked"); None is not. A
    field hidden by its `show_when` is never required.
    """
    return [f for f in schema.shown_fields(labels) if f.required and _blank(labels.get(f.name))]


def missing_message(missing: Sequence[LabelField], *, prefix: str = "Still to label") -> str:
    """One message naming every missing field by its display name, in schema order."""
    return f"{prefix}: {', '.join(f.label for f in missing)}."


def review_labels(
    schema: LabelSchema, labels: Mapping[str, Any], *, partial: bool = False
) -> tuple[dict[str, LabelValue], list[RuleWarning]]:
    """Normalize `labels` and list the consistency rules they break (pure; nothing is saved).

    A submitted form shows every field, so an unticked multi-choice field is the empty
    selection; with `partial` (a flagged item) it stays missing. Raises ValidationProblem
    naming the value when a value is unknown, and naming every missing required field at
    once, by display name, when some are missing (unless `partial`).
    """
    schema.normalize_labels(labels, partial=True)  # unknown fields and values first
    if not partial:
        unticked = [f.name for f in schema.fields if f.kind == "multi"]
        labels = {**labels, **{n: [] for n in unticked if labels.get(n) is None}}
        missing = missing_fields(schema, labels)
        if missing:
            raise ValidationProblem(missing_message(missing))
    normalized = schema.normalize_labels(labels, partial=partial)
    return normalized, schema.check_consistency(normalized)


def check_overrides(
    schema: LabelSchema,
    labels: Mapping[str, Any],
    warnings: Sequence[RuleWarning],
    overridden_rules: Sequence[str],
) -> list[str]:
    """The rule ids to record as overridden; ValidationProblem unless each is confirmed.

    Every broken rule must be in `overridden_rules`, and overriding needs a rationale (in the
    schema's rationale field) when the schema has one.
    """
    broken = [w.rule for w in warnings]
    unconfirmed = [w for w in warnings if w.rule not in set(overridden_rules)]
    if unconfirmed:
        raise ValidationProblem(
            "These labels break the guidelines' consistency rules: "
            + " ".join(w.message for w in unconfirmed)
            + " Change the labels, or confirm the override with a rationale."
        )
    field = rationale_field(schema)
    if broken and field is not None and not (labels.get(field) or "").strip():
        raise ValidationProblem(
            f"Overriding {', '.join(broken)} needs a rationale: say in `{field}` why these "
            "labels are right."
        )
    return broken


def submit(
    *,
    session: Session,
    user: User,
    assignment_id: int,
    labels: Mapping[str, Any],
    duration_s: float | None = None,
    overridden_rules: Sequence[str] = (),
    flagged: bool = False,
    flag_note: str | None = None,
    now: datetime | None = None,
) -> Annotation:
    """Save `user`'s labels for their leased item and close the lease; returns the annotation.

    Labels are validated against the campaign's schema (a flagged item may leave required
    fields empty, but needs a `flag_note` for the lead). Broken consistency rules must be
    listed in `overridden_rules` and explained in the rationale. A lease that ran out is still
    honoured while the item has a free slot; once k others labeled it, Conflict is raised and
    nothing is saved. Needs a write transaction. `duration_s` is the time on the item in
    seconds.
    """
    _require_labeler(session, user, "submit labels")
    _check_write_transaction(session)
    _lock_user(session, user)
    assignment, item, campaign = _own_assignment_in_full(session, user, assignment_id)
    _check_labeler(session, user, campaign)
    # Messages name the item as `user` may see it: a handle for annotators (blind labeling).
    name = item_name(item=item, campaign=campaign, viewer=user)
    if assignment.status == "done":
        raise Conflict(f"Item `{name}` is already submitted; change your labels in My work")
    if assignment.status == "skipped":
        raise Conflict(f"You skipped item `{name}`; it is no longer yours to label")
    note = (flag_note or "").strip() or None
    if flagged and note is None:
        raise ValidationProblem(f"Say why you flag item `{name}` for the lead")
    check_free_text({**labels, "flag_note": note}, subject=f"Item `{name}`")
    if duration_s is not None and duration_s < 0:
        raise ValidationProblem(f"Time on item must be positive, got {duration_s}")
    schema = campaign_schema(session=session, campaign=campaign)
    normalized, warnings = review_labels(schema, labels, partial=flagged)
    overridden = check_overrides(schema, normalized, warnings, overridden_rules)
    # Human labels are the item's counter (kept by save_annotation), read in this write
    # transaction: SQLite's is exclusive; PostgreSQL reads it with the row lock that claims
    # take too, so while we count nobody can take a slot on the item.
    labeled = item.human_labels
    if session.connection().dialect.name == "postgresql":
        labeled = session.exec(
            select(Item.human_labels).where(Item.id == item.id).with_for_update()
        ).one()
    # The clock is read once the locks are held, and the slots are counted whether or not our
    # lease still runs: a claim made the instant our lease lapsed may have taken our slot.
    now = now or utcnow()
    # In one read: a control now (annotate.storage.controls.is_control), the live leases of
    # others (slots.taken_slots), and the user's own annotation.
    control, leased, own_id, own_origin = sql.run(
        session, sql.slot_state(), item_id=item.id, user_id=user.id, now=now
    ).one()
    existing = session.get(Annotation, own_id) if own_id is not None else None
    # The counter holds our own label too, unless it is a control answer (those take no slot).
    own = own_id is not None and own_origin != CONTROL_ORIGIN
    # Controls take no slot (annotate.storage.controls).
    others = 0 if control else int(labeled) - own + int(leased)
    if others >= campaign.overlap:
        lapsed = assignment.status != "active" or assignment.expires_at <= now
        raise Conflict(
            (f"Your lease on item `{name}` ran out and " if lapsed else "")
            + f"{others} other annotators have labeled or taken item `{name}`, "
            "as many as it needs; your labels were not saved"
        )
    annotation = save_annotation(
        session=session,
        user=user,
        item=item,
        labels=normalized,
        duration_s=round(duration_s, 1) if duration_s is not None else None,
        flagged=flagged,
        flag_note=note,
        overridden_rules=overridden,
        origin=CONTROL_ORIGIN if control else "app",
        existing=existing,
    )
    # A prebuilt UPDATE rather than a flush of the unit of work; the object says the same.
    sql.run(session, sql.finish_assignment(), b_id=assignment.id, b_now=now)
    set_committed_value(assignment, "status", "done")
    set_committed_value(assignment, "finished_at", now)
    return annotation


def skip(
    *,
    session: Session,
    user: User,
    assignment_id: int,
    reason: str,
    now: datetime | None = None,
) -> Assignment:
    """Give `user`'s leased item back with a reason; it will not be offered to them again."""
    require_role(user, "annotator", "skip items", session=session)
    _check_write_transaction(session)
    _lock_user(session, user)
    reason = reason.strip()
    if not reason:
        raise ValidationProblem("Give a reason for skipping, so the lead can fix the item")
    if len(reason) > MAX_REASON:
        raise ValidationProblem(
            f"The reason is {len(reason)} characters; keep it under {MAX_REASON}"
        )
    assignment = _own_assignment(session, user, assignment_id)
    if assignment.status in ("done", "skipped"):
        item = session.get(Item, assignment.item_id)
        campaign = session.get(Campaign, assignment.campaign_id)
        name = (
            item_name(item=item, campaign=campaign, viewer=user)
            if item is not None and campaign is not None
            else "on screen"
        )
        raise Conflict(f"Item `{name}` is already {assignment.status}")
    assignment.status = "skipped"
    assignment.reason = reason
    assignment.finished_at = now or utcnow()
    session.add(assignment)
    session.flush()
    return assignment


def edit(
    *,
    session: Session,
    user: User,
    annotation_id: int,
    labels: Mapping[str, Any],
    overridden_rules: Sequence[str] = (),
    flagged: bool = False,
    flag_note: str | None = None,
) -> Annotation:
    """Change one of `user`'s own annotations (My work); every version stays in the history.

    The same checks as `submit`: schema, consistency rules with confirmed overrides, a note
    for a flag. PermissionDenied for anyone else's annotation.
    """
    annotation, item = get_own_annotation(session=session, user=user, annotation_id=annotation_id)
    campaign = session.get(Campaign, annotation.campaign_id)
    assert campaign is not None
    _check_labeler(session, user, campaign)
    name = item_name(item=item, campaign=campaign, viewer=user)
    note = (flag_note or "").strip() or None
    if flagged and note is None:
        raise ValidationProblem(f"Say why you flag item `{name}` for the lead")
    check_free_text({**labels, "flag_note": note}, subject=f"Item `{name}`")
    schema = campaign_schema(session=session, campaign=campaign)
    normalized, warnings = review_labels(schema, labels, partial=flagged)
    overridden = check_overrides(schema, normalized, warnings, overridden_rules)
    return save_annotation(
        session=session,
        user=user,
        item=item,
        labels=normalized,
        flagged=flagged,
        flag_note=note,
        overridden_rules=overridden,
    )
