"""An annotator calling a lead's or an admin's function gets PermissionDenied: one case each.

Hiding a page is not authorization; these are the checks the pages rely on. "own" cases: an
annotator reaching for another annotator's label (labeling is blind).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from annotate import labeling, storage
from annotate.errors import PermissionDenied
from annotate.intake.labels import LabelRow
from annotate.schema import LabelSchema
from annotate.storage import db
from annotate.storage.models import Annotation, Campaign, Item, User
from tests.conftest import full_labels, make_campaign, make_item, make_user


@dataclass
class World:
    """What a case needs: a session, the acting annotator, the campaign, bob's label."""

    s: Session
    u: User
    c: Campaign
    schema: LabelSchema
    theirs: Annotation


Call = Callable[[World], Any]

CASES: list[tuple[str, str, Call]] = [
    (
        "lead",
        "campaign_status",
        lambda w: storage.campaign_status(session=w.s, actor=w.u, campaign=w.c),
    ),
    (
        "lead",
        "campaign_members",
        lambda w: storage.campaign_members(session=w.s, actor=w.u, campaign=w.c),
    ),
    (
        "lead",
        "expire_leases",
        lambda w: labeling.expire_leases(session=w.s, actor=w.u, campaign=w.c),
    ),
    ("admin", "add_user", lambda w: storage.add_user(session=w.s, actor=w.u, name="eve")),
    ("admin", "list_users", lambda w: storage.list_users(session=w.s, actor=w.u)),
    (
        "admin",
        "set_password",
        lambda w: storage.set_password(session=w.s, actor=w.u, name="bob", password="y" * 9),
    ),
    (
        "admin",
        "set_role",
        lambda w: storage.set_role(session=w.s, actor=w.u, name="alice", role="admin"),
    ),
    (
        "admin",
        "set_active",
        lambda w: storage.set_active(session=w.s, actor=w.u, name="bob", active=False),
    ),
    (
        "admin",
        "create_campaign",
        lambda w: storage.create_campaign(session=w.s, actor=w.u, name="c2", schema=w.schema),
    ),
    (
        "admin",
        "update_campaign",
        lambda w: storage.update_campaign(session=w.s, actor=w.u, campaign=w.c, overlap=9),
    ),
    (
        "admin",
        "set_members",
        lambda w: storage.set_members(session=w.s, actor=w.u, campaign=w.c, members=["alice"]),
    ),
    (
        "admin",
        "import_items",
        lambda w: storage.import_items(session=w.s, actor=w.u, campaign=w.c, records=[NEW_ITEM]),
    ),
    (
        "admin",
        "import_labels",
        lambda w: storage.import_labels(session=w.s, actor=w.u, campaign=w.c, rows=[LABEL_ROW]),
    ),
    (
        "own",
        "assign.edit",
        lambda w: labeling.edit(
            session=w.s, user=w.u, annotation_id=w.theirs.id or 0, labels=full_labels()
        ),
    ),
    (
        "own",
        "get_own_annotation",
        lambda w: storage.get_own_annotation(session=w.s, user=w.u, annotation_id=w.theirs.id or 0),
    ),
    (
        "own",
        "own_history",
        lambda w: storage.own_history(session=w.s, user=w.u, annotation_id=w.theirs.id or 0),
    ),
]
NEW_ITEM = make_item(external_id="new")
LABEL_ROW = LabelRow(item_id="item-1", annotator="x", field="intent", value="benign", line=2)


@pytest.mark.parametrize(("role", "name", "call"), CASES, ids=[c[1] for c in CASES])
def test_annotators_are_refused(
    engine: Engine, schema: LabelSchema, role: str, name: str, call: Call
) -> None:
    with db.session_scope(engine) as s:
        alice = make_user(s, "alice")
        bob = make_user(s, "bob")
        campaign = make_campaign(s, schema)
        storage.import_items(
            session=s, actor=make_admin(s), campaign=campaign, records=[make_item()]
        )
        item = s.exec(select(Item)).one()
        theirs = storage.save_annotation(session=s, user=bob, item=item, labels=full_labels())
    with Session(engine) as s, pytest.raises(PermissionDenied):
        call(World(s=s, u=alice, c=campaign, schema=schema, theirs=theirs))
    with Session(engine) as s:
        # Nothing changed: bob's label is intact and no user was added.
        assert s.get(Annotation, theirs.id).labels == theirs.labels  # type: ignore[union-attr]
        assert sorted(u.name for u in s.exec(select(User)).all()) == ["adam", "alice", "bob"]


def test_leads_pass_the_lead_checks_but_not_the_admin_ones(
    engine: Engine, schema: LabelSchema
) -> None:
    with db.session_scope(engine) as s:
        lena = make_user(s, "lena", role="lead")
        campaign = make_campaign(s, schema)
        assert storage.campaign_status(session=s, actor=lena, campaign=campaign).items == 0
        assert labeling.expire_leases(session=s, actor=lena, campaign=campaign) == 0
        with pytest.raises(PermissionDenied):
            storage.add_user(session=s, actor=lena, name="eve")


def test_inactive_admins_lose_their_powers(engine: Engine) -> None:
    with db.session_scope(engine) as s:
        adam = make_user(s, "adam", role="admin")
        adam.active = False
        with pytest.raises(PermissionDenied):
            storage.list_users(session=s, actor=adam)


def make_admin(s: Session) -> User:
    return make_user(s, "adam", role="admin")
