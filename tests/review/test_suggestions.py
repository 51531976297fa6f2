"""The annotator models on a campaign: suggestions per item, competence per annotator, the queue."""

from __future__ import annotations

import random

import pytest
from conftest import make_campaign, make_item, make_user
from lead_helpers import ADMIN, full_labels
from sqlmodel import Session, select

from annotate import review, storage
from annotate.errors import PermissionDenied
from annotate.schema import LabelSchema
from annotate.storage.models import Item, User
from annotate.storage.queries import load_labels
from annotate.table import LabelTable

ACTIONS = ("answer", "refuse", "clarify")


def _simulated(
    session: Session, schema: LabelSchema, *, n_items: int = 60, raters: int = 3
) -> tuple[LabelTable, User, dict[int, str]]:
    """Items with a known right action; annotators right 90% of the time, but `sloppy` 40%."""
    rng = random.Random(7)
    campaign = make_campaign(session, schema, name="crowd", overlap=raters + 1)
    storage.import_items(
        session=session,
        actor=ADMIN,
        campaign=campaign,
        records=[
            make_item(external_id=f"c{i:03d}", prompt=f"p{i}", response=f"r{i}")
            for i in range(n_items)
        ],
    )
    items = session.exec(select(Item).where(Item.campaign_id == campaign.id)).all()
    truth = {it.id: ACTIONS[i % 3] for i, it in enumerate(sorted(items, key=lambda x: x.id))}
    people = {f"good{i}": 0.9 for i in range(raters - 1)} | {"sloppy": 0.4}
    users = {name: make_user(session, name) for name in people}
    for item in items:
        for name, accuracy in people.items():
            right = truth[item.id]
            action = (
                right if rng.random() < accuracy else rng.choice([a for a in ACTIONS if a != right])
            )
            storage.save_annotation(
                session=session,
                user=users[name],
                item=item,
                labels=schema.normalize_labels(
                    full_labels(right_action=action, observed_action="answer")
                ),
            )
    lead = make_user(session, "lena", role="lead")
    session.flush()
    table = load_labels(session=session, actor=lead, campaign=campaign)
    return table, lead, truth  # type: ignore[return-value]


def test_the_model_recovers_the_truth_and_the_sloppy_annotator(
    session: Session, schema: LabelSchema
) -> None:
    table, lead, truth = _simulated(session, schema)
    suggestions = review.model_suggestions(table, actor=lead)
    assert set(suggestions.index) == set(truth)
    right = sum(suggestions.at[i, "model_label"] == t for i, t in truth.items())
    majority_right = sum(suggestions.at[i, "majority"] == t for i, t in truth.items())
    assert right >= majority_right and right / len(truth) >= 0.9
    assert suggestions["posterior"].between(0, 1).all()
    differs = suggestions[suggestions["differs"]]
    assert (differs["model_label"] != differs["majority"]).all()
    people = review.competence(table, actor=lead)
    assert set(people.index) == {"good0", "good1", "sloppy"}
    assert people.at["sloppy", "ds_competence"] < 0.6 < people.at["good0", "ds_competence"]
    assert abs(people.at["good1", "ds_competence"] - 0.9) < 0.1


def test_two_labels_per_item_fit_no_model(session: Session, schema: LabelSchema) -> None:
    table, lead, _ = _simulated(session, schema, raters=2, n_items=20)
    assert review.model_suggestions(table, actor=lead).empty
    assert review.competence(table, actor=lead).empty
    queue = review.queue_from_table(table, actor=lead, min_labels=2)
    assert queue["model_label"].isna().all() and not queue["model_differs"].any()


def test_the_queue_carries_the_model_and_puts_adjudicated_items_last(
    session: Session, schema: LabelSchema
) -> None:
    table, lead, truth = _simulated(session, schema)
    suggestions = review.model_suggestions(table, actor=lead)
    done = sorted(truth)[:5]
    queue = review.queue_from_table(
        table,
        actor=lead,
        min_labels=3,
        suggestions=suggestions,
        current={i: "manual" for i in done},
    )
    assert queue["n_labels"].dtype.kind == "i"
    flags = queue["adjudicated"].tolist()
    assert flags == sorted(flags)  # every open item before every adjudicated one
    assert set(queue[queue["adjudicated"]]["item_id"]) == set(done)
    for _, row in queue.iterrows():
        assert row["model_label"] == suggestions.at[row["item_id"], "model_label"]
        assert row["model_differs"] == suggestions.at[row["item_id"], "differs"]
    # Among open items of equal disagreement, those where the model differs come first.
    open_items = queue[~queue["adjudicated"]]
    for _, same in open_items.groupby("disagreement", sort=False):
        said = same["flagged"] | same["noted"]
        unsaid = same[~said]["model_differs"].tolist()
        assert unsaid == sorted(unsaid, reverse=True)


def test_annotators_may_not_see_the_models(session: Session, schema: LabelSchema) -> None:
    table, _lead, _ = _simulated(session, schema, n_items=9)
    someone = session.exec(select(User).where(User.name == "good0")).one()
    with pytest.raises(PermissionDenied):
        review.model_suggestions(table, actor=someone)
    with pytest.raises(PermissionDenied):
        review.competence(table, actor=someone)
