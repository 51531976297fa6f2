"""What each role may see of an item: annotators the text, a handle and the allowed keys only."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from annotate import labeling, storage
from annotate.errors import Conflict, PermissionDenied, ValidationProblem
from annotate.schema import LabelSchema
from annotate.storage import db, visibility
from annotate.storage.models import Campaign, Item, User
from tests.conftest import ADMIN, full_labels, make_campaign, make_item, make_user

MARKER = "LEAK-MARKER-123"


def _world(session: Session, schema: LabelSchema) -> tuple[Campaign, Item, dict[str, User]]:
    campaign = make_campaign(session, schema, name="blind", seed=7)
    storage.import_items(
        session=session,
        actor=ADMIN,
        campaign=campaign,
        records=[
            make_item(
                external_id="seed-harm-004b",
                model="model-over-refuser",
                category="contrast_harmful",
                group_id="g-harm",
                source="xstest.csv",
                meta={"annotation_1": MARKER, "focus": "FOCUS-VALUE", "final_label": "refuse"},
            ),
            make_item(external_id="seed-safe-001", meta={"note": "other"}),
        ],
        source="xstest.csv",
    )
    item = session.exec(select(Item).where(Item.external_id == "seed-harm-004b")).one()
    users = {
        role: make_user(session, name=role, role=role) for role in ("annotator", "lead", "admin")
    }
    return campaign, item, users


def _everything(view: visibility.ItemView) -> str:
    return repr(view)


def test_an_annotator_sees_only_the_text_and_a_handle(
    session: Session, schema: LabelSchema
) -> None:
    campaign, item, users = _world(session, schema)
    view = visibility.view_item(item=item, campaign=campaign, viewer=users["annotator"])
    assert (view.prompt, view.response, view.conversation) == (
        item.prompt,
        item.response,
        item.conversation,
    )
    assert re.fullmatch(r"#[0-9a-f]{10}", view.handle)
    assert view.name == view.handle and view.external_id is None
    assert view.details == {} and not view.everything
    shown = _everything(view)
    for hidden in ("seed-harm", "model-over-refuser", "contrast_harmful", "g-harm", MARKER):
        assert hidden not in shown
    assert "xstest.csv" not in shown and "FOCUS-VALUE" not in shown
    assert visibility.item_name(item=item, campaign=campaign, viewer=users["annotator"]) == (
        view.handle
    )


@pytest.mark.parametrize("role", ["lead", "admin"])
def test_leads_and_admins_see_everything(session: Session, schema: LabelSchema, role: str) -> None:
    campaign, item, users = _world(session, schema)
    view = visibility.view_item(item=item, campaign=campaign, viewer=users[role])
    assert view.everything and view.external_id == "seed-harm-004b"
    assert view.name == "seed-harm-004b"
    assert view.details == {
        "model": "model-over-refuser",
        "category": "contrast_harmful",
        "group": "g-harm",
        "source": "xstest.csv",
        "annotation_1": MARKER,
        "focus": "FOCUS-VALUE",
        "final_label": "refuse",
    }
    assert visibility.item_name(item=item, campaign=campaign, viewer=users[role]) == (
        "seed-harm-004b"
    )


def test_annotators_see_exactly_the_allowed_keys(session: Session, schema: LabelSchema) -> None:
    campaign, item, users = _world(session, schema)
    storage.set_visible_metadata(
        session=session, actor=ADMIN, campaign=campaign, keys=["focus", "category", "absent"]
    )
    assert campaign.visible_metadata == ["focus", "category", "absent"]
    view = visibility.view_item(item=item, campaign=campaign, viewer=users["annotator"])
    assert view.details == {"focus": "FOCUS-VALUE", "category": "contrast_harmful"}
    assert MARKER not in _everything(view) and "seed-harm" not in _everything(view)
    session.commit()
    session.expire_all()
    again = storage.get_campaign(session=session, name="blind")
    assert again.visible_metadata == ["focus", "category", "absent"]


def test_inactive_or_machine_viewers_are_treated_as_annotators(
    session: Session, schema: LabelSchema
) -> None:
    campaign, item, users = _world(session, schema)
    retired = make_user(session, name="retired", role="admin")
    retired.active = False
    for viewer in (retired, ADMIN.model_copy(update={"is_machine": True})):
        view = visibility.view_item(item=item, campaign=campaign, viewer=viewer)
        assert not view.everything and view.external_id is None and view.details == {}


def test_the_handle_is_stable_opaque_and_per_campaign(
    session: Session, schema: LabelSchema
) -> None:
    campaign, item, _ = _world(session, schema)
    first = visibility.item_handle(campaign=campaign, item_id=item.id or 0)
    assert first == visibility.item_handle(campaign=campaign, item_id=item.id or 0)
    other = Campaign(id=campaign.id, name="x", schema_id=1, seed=campaign.seed + 1)
    assert visibility.item_handle(campaign=other, item_id=item.id or 0) != first
    handles = [visibility.item_handle(campaign=campaign, item_id=i) for i in range(1, 200)]
    assert len(set(handles)) == len(handles)
    assert handles != sorted(handles)  # not in item order


def test_only_admins_set_visible_metadata(session: Session, schema: LabelSchema) -> None:
    campaign, _, users = _world(session, schema)
    for role in ("annotator", "lead"):
        with pytest.raises(PermissionDenied):
            storage.set_visible_metadata(
                session=session, actor=users[role], campaign=campaign, keys=["focus"]
            )
    assert campaign.visible_metadata == []
    storage.set_visible_metadata(
        session=session, actor=users["admin"], campaign=campaign, keys=[" focus ", "focus", "model"]
    )
    assert campaign.visible_metadata == ["focus", "model"]
    storage.set_visible_metadata(session=session, actor=users["admin"], campaign=campaign, keys=[])
    assert campaign.visible_metadata == []


@pytest.mark.parametrize("bad", [[""], ["   "], ["x" * 201], ["external_id"]])
def test_bad_keys_are_refused_and_change_nothing(
    session: Session, schema: LabelSchema, bad: list[str]
) -> None:
    campaign, _, _ = _world(session, schema)
    storage.set_visible_metadata(session=session, actor=ADMIN, campaign=campaign, keys=["focus"])
    with pytest.raises(ValidationProblem, match="metadata key"):
        storage.set_visible_metadata(session=session, actor=ADMIN, campaign=campaign, keys=bad)
    assert campaign.visible_metadata == ["focus"]


def test_the_known_keys_are_the_attributes_and_every_metadata_key(
    session: Session, schema: LabelSchema
) -> None:
    campaign, _, users = _world(session, schema)
    keys = storage.metadata_keys(session=session, actor=users["admin"], campaign=campaign)
    assert keys == [
        "model",
        "category",
        "group",
        "source",
        "annotation_1",
        "final_label",
        "focus",
        "note",
    ]
    with pytest.raises(PermissionDenied):
        storage.metadata_keys(session=session, actor=users["annotator"], campaign=campaign)


def test_refusals_name_the_item_as_the_annotator_sees_it(
    engine: Engine, schema: LabelSchema
) -> None:
    with db.session_scope(engine) as s:
        campaign, item, users = _world(s, schema)
        annotator, lead = users["annotator"], users["lead"]
    for who in (annotator, lead):
        with labeling.write_session(engine) as s:
            claim = labeling.claim_next(session=s, user=who, campaign=campaign)
            assert claim is not None
            assignment = claim.assignment.id or 0
        name = claim.item.external_id
        if who is annotator:
            name = visibility.item_handle(campaign=campaign, item_id=claim.item.id or 0)
        with labeling.write_session(engine) as s:
            labeling.skip(session=s, user=who, assignment_id=assignment, reason="unsure")
        for kind in ("skip", "submit"):
            with pytest.raises(Conflict) as refused, labeling.write_session(engine) as s:
                if kind == "skip":
                    labeling.skip(session=s, user=who, assignment_id=assignment, reason="x")
                else:
                    labeling.submit(
                        session=s, user=who, assignment_id=assignment, labels=full_labels()
                    )
            assert f"`{name}`" in str(refused.value)
            assert who is lead or "seed-" not in str(refused.value)
