"""A campaign with real items and adjudicated control items, for the control tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from annotate import labeling, storage
from annotate.review import adjudication
from annotate.review.controls import mark_controls, set_control_settings
from annotate.schema import LabelSchema
from annotate.storage import db
from annotate.storage.models import Campaign, Item, User
from tests.conftest import ADMIN, full_labels, make_campaign, make_item, make_user

GOLD_NOTE = "Benign question about processes: answer it."


@dataclass
class ControlSetup:
    """What `control_campaign` made: the campaign, its people, and the control ids."""

    campaign: Campaign
    people: dict[str, User]
    lead: User
    controls: list[str]
    real: list[str]


def control_campaign(
    engine: Engine,
    schema: LabelSchema,
    *,
    real: int = 10,
    controls: int = 5,
    overlap: int = 1,
    users: tuple[str, ...] = ("alice", "bob"),
    gold: str = "answer",
    **settings: Any,
) -> ControlSetup:
    """Items r-NNN (real) and k-NNN (adjudicated with right action `gold`, marked controls)."""
    with db.session_scope(engine) as s:
        people = {name: make_user(s, name) for name in users}
        lead = make_user(s, "lena", role="lead")
        campaign = make_campaign(s, schema, name="ctl", overlap=overlap, seed=7)
        real_ids = [f"r-{i:03d}" for i in range(real)]
        control_ids = [f"k-{i:03d}" for i in range(controls)]
        storage.import_items(
            session=s,
            actor=ADMIN,
            campaign=campaign,
            records=[
                make_item(external_id=e, prompt=f"prompt {e}") for e in real_ids + control_ids
            ],
        )
        by_ext = {it.external_id: it for it in s.exec(select(Item)).all()}
        for ext in control_ids:
            adjudication.adjudicate(
                session=s,
                actor=lead,
                item_id=by_ext[ext].id or 0,
                labels=schema.normalize_labels(full_labels(right_action=gold)),
                note=GOLD_NOTE,
            )
        if control_ids:
            mark_controls(session=s, actor=lead, campaign=campaign, external_ids=control_ids)
        if settings:
            set_control_settings(session=s, actor=lead, campaign=campaign, **settings)
    return ControlSetup(campaign, people, lead, control_ids, real_ids)


def answer(engine: Engine, user: User, campaign: Campaign, **labels: Any) -> labeling.Claim | None:
    """Claim `user`'s next item and submit `labels` (full_labels with overrides) on it."""
    with db.session_scope(engine, immediate=True) as s:
        got = labeling.claim_next(session=s, user=user, campaign=campaign)
        if got is None:
            return None
        labeling.submit(
            session=s,
            user=user,
            assignment_id=got.assignment.id or 0,
            labels=full_labels(**labels),
        )
        return got
