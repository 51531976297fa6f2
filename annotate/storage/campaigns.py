"""Campaigns: create, find, list, members, settings and status."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence

from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import Session, col, select

from annotate.accounts.auth import require_role
from annotate.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationProblem,
)
from annotate.schema import LabelSchema
from annotate.storage.controls import CONTROL_ORIGIN, control_ids, not_control
from annotate.storage.models import (
    Annotation,
    Campaign,
    CampaignMember,
    Item,
    User,
)
from annotate.storage.schemas import campaign_schema, register_schema
from annotate.storage.users import get_user


def create_campaign(
    *,
    session: Session,
    actor: User,
    name: str,
    schema: LabelSchema,
    overlap: int = 2,
    guidelines: str = "",
    restricted: bool = False,
    members: Sequence[str] = (),
    seed: int | None = None,
) -> Campaign:
    """Create a campaign on `schema` with `overlap` annotators per item; admins only."""
    require_role(actor, "admin", "create campaigns", session=session)
    name = name.strip()
    if not name or len(name) > 200 or "/" in name or name.startswith("."):
        raise ValidationProblem(
            f"Campaign name `{name}` must be 1-200 characters, without `/` or a leading dot"
        )
    if overlap < 1:
        raise ValidationProblem(f"Overlap must be at least 1, got {overlap}")
    if session.exec(select(Campaign).where(Campaign.name == name)).first() is not None:
        raise Conflict(f"Campaign `{name}` already exists")
    record = register_schema(session=session, schema=schema)
    campaign = Campaign(
        name=name,
        schema_id=record.id,  # type: ignore[arg-type]
        overlap=overlap,
        guidelines=guidelines,
        restricted=restricted or bool(members),
        seed=secrets.randbelow(2**31) if seed is None else seed,
    )
    session.add(campaign)
    session.flush()
    for member in members:
        user = get_user(session=session, name=member)
        session.add(CampaignMember(campaign_id=campaign.id, user_id=user.id))  # type: ignore[arg-type]
    session.flush()
    return campaign


def get_campaign(*, session: Session, name: str) -> Campaign:
    """The campaign called `name`; NotFound otherwise."""
    campaign = session.exec(select(Campaign).where(Campaign.name == name)).first()
    if campaign is None:
        raise NotFound(f"No campaign `{name}`")
    return campaign


def can_label(*, session: Session, user: User, campaign: Campaign) -> bool:
    """Whether `user` may label in `campaign` (open campaigns admit every annotator).

    False too for a user who changed since loaded (see `require_role`).
    """
    try:
        require_role(user, "annotator", "label items", session=session)
    except PermissionDenied:
        return False
    if not campaign.restricted:
        return True
    member = session.get(CampaignMember, (campaign.id, user.id))
    return member is not None


def list_campaigns(*, session: Session, actor: User) -> list[Campaign]:
    """The campaigns `actor` can see: all for leads and admins, their own for annotators."""
    require_role(actor, "annotator", "list campaigns", session=session)
    campaigns = list(session.exec(select(Campaign).order_by(col(Campaign.name))).all())
    if actor.role in ("lead", "admin"):
        return campaigns
    return [c for c in campaigns if can_label(session=session, user=actor, campaign=c)]


def set_members(
    *, session: Session, actor: User, campaign: Campaign, members: Iterable[str]
) -> None:
    """Restrict `campaign` to exactly `members` (an empty list opens it to everyone)."""
    require_role(actor, "admin", "change campaign membership", session=session)
    users = [get_user(session=session, name=m) for m in members]
    for old in session.exec(
        select(CampaignMember).where(CampaignMember.campaign_id == campaign.id)
    ).all():
        session.delete(old)
    session.flush()
    for u in users:
        session.add(CampaignMember(campaign_id=campaign.id, user_id=u.id))  # type: ignore[arg-type]
    campaign.restricted = bool(users)
    session.add(campaign)
    session.flush()


class CampaignStatus(BaseModel):
    """Counts for `annotate status`: humans in the headline keys, judges apart."""

    campaign: str
    schema_id: str
    overlap: int
    items: int
    annotations: int
    annotators: int
    complete_items: int
    flagged: int
    machine_annotations: int
    machine_annotators: int
    # Control items (counted in `items`) and the answers given on them, which count nowhere
    # else: not in annotations, annotators, complete items or flags.
    control_items: int = 0
    control_answers: int = 0


def campaign_status(*, session: Session, actor: User, campaign: Campaign) -> CampaignStatus:
    """How far `campaign` has come; leads and admins only (annotators see their own progress)."""
    require_role(actor, "lead", "see campaign status", session=session)
    schema = campaign_schema(session=session, campaign=campaign)
    n_items = session.exec(
        select(func.count()).select_from(Item).where(Item.campaign_id == campaign.id)
    ).one()
    counts: dict[bool, tuple[int, int]] = {}
    for is_machine, n_ann, n_users in session.exec(
        select(User.is_machine, func.count(), func.count(func.distinct(Annotation.user_id)))
        .join(User, col(User.id) == Annotation.user_id)
        .where(Annotation.campaign_id == campaign.id, Annotation.origin != CONTROL_ORIGIN)
        .group_by(col(User.is_machine))
    ).all():
        counts[bool(is_machine)] = (int(n_ann), int(n_users))
    per_item = (
        select(Annotation.item_id)
        .join(User, col(User.id) == Annotation.user_id)
        .where(
            Annotation.campaign_id == campaign.id,
            col(User.is_machine).is_(False),
            Annotation.origin != CONTROL_ORIGIN,
            not_control(Annotation.item_id),
        )
        .group_by(col(Annotation.item_id))
        .having(func.count() >= campaign.overlap)
        .subquery()
    )
    complete = session.exec(select(func.count()).select_from(per_item)).one()
    flagged = session.exec(
        select(func.count())
        .select_from(Annotation)
        .where(
            Annotation.campaign_id == campaign.id,
            col(Annotation.flagged).is_(True),
            Annotation.origin != CONTROL_ORIGIN,
        )
    ).one()
    control_answers = session.exec(
        select(func.count())
        .select_from(Annotation)
        .where(Annotation.campaign_id == campaign.id, Annotation.origin == CONTROL_ORIGIN)
    ).one()
    human = counts.get(False, (0, 0))
    judge = counts.get(True, (0, 0))
    return CampaignStatus(
        campaign=campaign.name,
        schema_id=schema.id,
        overlap=campaign.overlap,
        items=int(n_items),
        annotations=human[0],
        annotators=human[1],
        complete_items=int(complete),
        flagged=int(flagged),
        machine_annotations=judge[0],
        machine_annotators=judge[1],
        control_items=len(control_ids(session, campaign.id or 0)),
        control_answers=int(control_answers),
    )


def campaign_members(*, session: Session, actor: User, campaign: Campaign) -> list[str]:
    """Names of the annotators `campaign` is restricted to (empty when open); leads and admins."""
    require_role(actor, "lead", "see campaign members", session=session)
    return list(
        session.exec(
            select(User.name)
            .join(CampaignMember, col(CampaignMember.user_id) == User.id)
            .where(CampaignMember.campaign_id == campaign.id)
            .order_by(col(User.name))
        ).all()
    )


def update_campaign(
    *,
    session: Session,
    actor: User,
    campaign: Campaign,
    guidelines: str | None = None,
    overlap: int | None = None,
) -> Campaign:
    """Change `campaign`'s guidelines or overlap k; admins only. Labels already made stay."""
    require_role(actor, "admin", "change campaigns", session=session)
    if overlap is not None:
        if overlap < 1:
            raise ValidationProblem(f"Overlap must be at least 1, got {overlap}")
        campaign.overlap = overlap
    if guidelines is not None:
        campaign.guidelines = guidelines
    session.add(campaign)
    session.flush()
    return campaign
