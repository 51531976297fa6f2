"""Control items in an annotator's stream: qualification first, then a share of their claims.

- Qualification (a campaign's `qualification_items` N > 0): a new annotator is served controls
  only, until N are answered; after each they see the lead's labels and note for that item
  and their credit (`qualification_feedback`). Real items open once the mean credit over those
  N reaches `qualification_threshold`; otherwise they stay closed until a lead resets the
  annotator (`reset_qualification`), who then answers N fresh controls.
- Afterwards each claim is a control with probability `control_rate`, drawn from a hash of
  (campaign seed, annotator, claim count): seeded and reproducible, never from the clock.

Credit is the band credit the lead's adjudication gives the annotator's right action (the
schema's credit when the band is empty), on the answer as first submitted: edits in My work
after the feedback do not change it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from annotate.accounts.auth import require_role
from annotate.errors import NotFound, PermissionDenied, ValidationProblem
from annotate.labeling.slots import _mine, order_key
from annotate.schema import LabelSchema
from annotate.storage.controls import CONTROL_ORIGIN, control_ids
from annotate.storage.models import (
    Adjudication,
    Annotation,
    AnnotationHistory,
    Assignment,
    Campaign,
    Item,
    QualificationReset,
    User,
    utcnow,
)
from annotate.storage.schemas import campaign_schema
from annotate.storage.visibility import item_name

CLOSED = -1  # `pick_control`: no real item may be served to this annotator now


@dataclass(frozen=True)
class ControlAnswer:
    """One control answer of one annotator: the item, when, and the credit it earned."""

    item_id: int
    external_id: str
    answered_at: datetime
    right_action: str | None
    gold_action: str | None
    credit: float


@dataclass(frozen=True)
class Qualification:
    """Where an annotator stands in a campaign's qualification."""

    required: int  # N (0: the campaign has no qualification)
    done: int
    mean_credit: float | None
    threshold: float

    @property
    def active(self) -> bool:
        """Whether the campaign asks for a qualification at all."""
        return self.required > 0

    @property
    def in_progress(self) -> bool:
        """Still answering qualification controls."""
        return self.active and self.done < self.required

    @property
    def passed(self) -> bool:
        """Real items are open: no qualification, or N answered with mean credit >= threshold."""
        if not self.active:
            return True
        return (
            self.done >= self.required
            and self.mean_credit is not None
            and self.mean_credit >= self.threshold - 1e-12
        )

    @property
    def failed(self) -> bool:
        """N answered but the mean credit is below the threshold: a lead must reset."""
        return self.active and self.done >= self.required and not self.passed


@dataclass(frozen=True)
class Feedback:
    """What an annotator sees after a qualification item: the lead's labels, note, their credit.

    `name` is the item as the annotator may name it (its handle: labeling is blind).
    """

    name: str
    lead_labels: dict[str, Any]
    note: str | None
    your_labels: dict[str, Any]
    credit: float
    qualification: Qualification


def _credit(schema: LabelSchema, band: dict[str, float], gold: Any, taken: Any) -> float:
    if taken is None or gold is None:
        return 0.0
    if band:
        return float(band.get(str(taken), 0.0))
    return schema.credit(str(gold), str(taken))


def control_answers(
    session: Session, campaign: Campaign, user_id: int, *, since: datetime | None = None
) -> list[ControlAnswer]:
    """`user_id`'s control answers in `campaign`, oldest first, scored on their first version."""
    schema = campaign_schema(session=session, campaign=campaign)
    field = schema.right_action_field
    query = (
        select(Annotation.id, Annotation.item_id, Annotation.created_at, Item.external_id)
        .join(Item, col(Item.id) == Annotation.item_id)
        .where(
            Annotation.campaign_id == campaign.id,
            Annotation.user_id == user_id,
            Annotation.origin == CONTROL_ORIGIN,
        )
        .order_by(col(Annotation.created_at), col(Annotation.id))
    )
    if since is not None:
        query = query.where(col(Annotation.created_at) >= since)
    rows = session.exec(query).all()
    if not rows:
        return []
    firsts: dict[int, dict[str, Any]] = {}
    for history_of, labels in session.exec(
        select(AnnotationHistory.annotation_id, AnnotationHistory.labels)
        .where(col(AnnotationHistory.annotation_id).in_([r[0] for r in rows]))
        .order_by(col(AnnotationHistory.id))
    ).all():
        firsts.setdefault(int(history_of), dict(labels or {}))
    gold = {
        int(a.item_id): a
        for a in session.exec(
            select(Adjudication).where(
                col(Adjudication.item_id).in_([r[1] for r in rows]),
                col(Adjudication.is_current).is_(True),
            )
        ).all()
    }
    out = []
    for ann_id, item_id, at, external_id in rows:
        if ann_id is None:
            continue
        adj = gold.get(int(item_id))
        if adj is None:  # unmarked and re-adjudication pending: nothing to score against
            continue
        taken = firsts.get(int(ann_id), {}).get(field)
        right = adj.labels.get(field)
        out.append(
            ControlAnswer(
                item_id=int(item_id),
                external_id=str(external_id),
                answered_at=at,
                right_action=taken,
                gold_action=right,
                credit=_credit(schema, dict(adj.band or {}), right, taken),
            )
        )
    return out


def _reset_at(session: Session, campaign: Campaign, user_id: int) -> datetime | None:
    row = session.get(QualificationReset, (campaign.id, user_id))
    return row.reset_at if row is not None else None


def _qualification(
    session: Session, campaign: Campaign, user_id: int
) -> tuple[Qualification, list[ControlAnswer]]:
    required = int(campaign.qualification_items or 0)
    if required <= 0:
        return Qualification(0, 0, None, campaign.qualification_threshold), []
    since = _reset_at(session, campaign, user_id)
    answers = control_answers(session, campaign, user_id, since=since)[:required]
    mean = sum(a.credit for a in answers) / len(answers) if answers else None
    state = Qualification(required, len(answers), mean, campaign.qualification_threshold)
    return state, answers


def qualification_state(*, session: Session, user: User, campaign: Campaign) -> Qualification:
    """`user`'s own qualification in `campaign` (annotators see only their own)."""
    require_role(user, "annotator", "see their qualification", session=session)
    assert user.id is not None
    return _qualification(session, campaign, user.id)[0]


def qualification_feedback(
    *, session: Session, user: User, campaign: Campaign, item_id: int
) -> Feedback:
    """The lead's labels and note on a qualification item `user` answered, and their credit.

    Only for `user`'s own qualification answers: any other item raises PermissionDenied, so
    nobody learns the lead's labels for items outside their qualification.
    """
    require_role(user, "annotator", "see qualification feedback", session=session)
    assert user.id is not None
    state, answers = _qualification(session, campaign, user.id)
    answer = next((a for a in answers if a.item_id == item_id), None)
    if answer is None:
        raise PermissionDenied(
            f"`{user.name}` has no qualification answer for item {item_id} in `{campaign.name}`"
        )
    adj = session.exec(
        select(Adjudication).where(
            Adjudication.item_id == item_id, col(Adjudication.is_current).is_(True)
        )
    ).first()
    own = session.exec(
        select(Annotation).where(Annotation.item_id == item_id, Annotation.user_id == user.id)
    ).first()
    item = session.get(Item, item_id)
    assert item is not None
    name = item_name(item=item, campaign=campaign, viewer=user)
    if adj is None or own is None:
        raise NotFound(f"No adjudication of item `{name}`")
    return Feedback(
        name=name,
        lead_labels=dict(adj.labels),
        note=adj.note,
        your_labels=dict(own.labels),
        credit=answer.credit,
        qualification=state,
    )


def reset_qualification(
    *,
    session: Session,
    actor: User,
    campaign: Campaign,
    annotator: User,
    now: datetime | None = None,
) -> None:
    """Lead: let `annotator` take `campaign`'s qualification again, with N new controls."""
    require_role(actor, "lead", "reset a qualification", session=session)
    if campaign.qualification_items <= 0:
        raise ValidationProblem(f"Campaign `{campaign.name}` has no qualification stage")
    assert annotator.id is not None
    row = session.get(QualificationReset, (campaign.id, annotator.id))
    stamp = now or utcnow()
    if row is None:
        row = QualificationReset(
            campaign_id=campaign.id or 0, user_id=annotator.id, reset_by=actor.id, reset_at=stamp
        )
    else:
        row.reset_by, row.reset_at = actor.id, stamp
    session.add(row)
    session.flush()


def _draw(seed: int, user_id: int, count: int) -> float:
    """A uniform number in [0, 1) from (seed, annotator, claim count)."""
    digest = hashlib.blake2b(f"{seed}:{user_id}:{count}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _open_control(
    session: Session, campaign: Campaign, user_id: int, controls: set[int], tried: Sequence[int]
) -> int | None:
    """The first control in `user_id`'s order they never labeled, finished or skipped."""
    assert campaign.id is not None
    among = sorted(controls - set(tried))
    if not among:
        return None
    closed = {int(i) for i in session.execute(_mine(campaign.id, user_id, among)).scalars()}
    left = [i for i in among if i not in closed]
    if not left:
        return None
    return min(left, key=lambda i: (order_key(campaign.seed, user_id, i), i))


def pick_control(
    session: Session, user: User, campaign: Campaign, controls: set[int]
) -> int | None:
    """For a claim: a control item id, CLOSED (serve nothing) or None (serve a real item)."""
    assert user.id is not None and campaign.id is not None
    if campaign.qualification_items > 0:
        state, _ = _qualification(session, campaign, user.id)
        if state.in_progress:
            picked = _open_control(session, campaign, user.id, controls, ())
            return CLOSED if picked is None else picked
        if not state.passed:
            return CLOSED
    if not controls or campaign.control_rate <= 0:
        return None
    count = session.exec(
        select(func.count())
        .select_from(Assignment)
        .where(Assignment.campaign_id == campaign.id, Assignment.user_id == user.id)
    ).one()
    if _draw(campaign.seed, user.id, int(count)) >= campaign.control_rate:
        return None
    return _open_control(session, campaign, user.id, controls, ())


__all__ = [
    "CLOSED",
    "ControlAnswer",
    "Feedback",
    "Qualification",
    "control_answers",
    "control_ids",
    "pick_control",
    "qualification_feedback",
    "qualification_state",
    "reset_qualification",
]
