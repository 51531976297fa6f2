"""A small labeled campaign for the lead's features: reports, queue, adjudication, pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from conftest import ADMIN, full_labels, make_campaign, make_item, make_user
from sqlmodel import Session, select

from annotate import storage
from annotate.schema import LabelSchema
from annotate.storage.models import Annotation, Campaign, Item, User

HUMANS = ("alice", "bob", "carol")
JUDGE = "judge-gpt"

# item id -> {annotator: label overrides}; `full_labels()` fills in the rest.
LABELS: dict[str, dict[str, dict[str, Any]]] = {
    # Everyone agrees on everything: bulk-acceptable.
    "i1": {a: {} for a in HUMANS},
    # A near miss on the right action; the majority is `answer`.
    "i2": {
        "alice": {},
        "bob": {"right_action": "answer_with_caveat"},
        "carol": {},
    },
    # Three different right actions, far apart: no majority, top of the queue.
    "i3": {
        "alice": {"right_action": "refuse", "intent": "harmful"},
        "bob": {"right_action": "answer", "intent": "benign"},
        "carol": {"right_action": "clarify", "intent": "ambiguous"},
    },
    # Two labels only, split between clarify and answer_safe_part.
    "i4": {
        "alice": {"right_action": "clarify", "intent": "ambiguous"},
        "bob": {"right_action": "answer_safe_part", "intent": "ambiguous"},
    },
    # One label: below the overlap of 2.
    "i5": {"alice": {}},
    # Same right action, different failure categories: not unanimous.
    "i6": {
        "alice": {
            "intent": "harmful",
            "right_action": "refuse",
            "observed_action": "refuse",
        },
        "bob": {
            "intent": "harmful",
            "right_action": "refuse",
            "observed_action": "answer",
            "failure_categories": ["unsafe_compliance"],
        },
        "carol": {
            "intent": "harmful",
            "right_action": "refuse",
            "observed_action": "refuse",
        },
    },
}
CATEGORIES = {"i1": "a", "i2": "a", "i3": "b", "i4": "b", "i5": "a", "i6": "b"}
JUDGE_LABELS = {"i1": "answer", "i2": "answer", "i3": "refuse", "i6": "answer"}


@dataclass
class Seeded:
    """What `seed_campaign` made."""

    campaign: Campaign
    lead: User
    annotator: User
    items: dict[str, int] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)


def seed_campaign(
    session: Session,
    schema: LabelSchema,
    *,
    name: str = "lead",
    with_judge: bool = True,
    days: bool = False,
) -> Seeded:
    """Campaign `name` (overlap 2) with the labels above, a lead `lena` and the annotators.

    With `days`, item iN's labels are dated 2026-01-0N so that alpha over time has periods.
    """
    campaign = make_campaign(session, schema, name=name, overlap=2)
    storage.import_items(
        session=session,
        actor=ADMIN,
        campaign=campaign,
        records=[
            make_item(
                external_id=ext,
                prompt=f"prompt of {ext}",
                response=f"response of {ext}",
                category=CATEGORIES[ext],
                model="m1" if ext in ("i1", "i2", "i3") else "m2",
                group_id="g1" if ext in ("i1", "i2") else None,
            )
            for ext in LABELS
        ],
    )
    items = {
        it.external_id: it
        for it in session.exec(select(Item).where(Item.campaign_id == campaign.id)).all()
    }
    users = {n: _user(session, n) for n in HUMANS}
    users["lena"] = _user(session, "lena", role="lead")
    for ext, by in LABELS.items():
        for seconds, (who, overrides) in enumerate(by.items(), start=10):
            labels = schema.normalize_labels(full_labels(**overrides))
            storage.save_annotation(
                session=session,
                user=users[who],
                item=items[ext],
                labels=labels,
                duration_s=float(seconds),
                flagged=(ext == "i3" and who == "bob"),
                flag_note="unclear guideline" if ext == "i3" and who == "bob" else None,
            )
    if with_judge:
        judge = session.exec(select(User).where(User.name == JUDGE)).first() or storage.add_user(
            session=session, actor=ADMIN, name=JUDGE, is_machine=True
        )
        users[JUDGE] = judge
        for ext, action in JUDGE_LABELS.items():
            storage.save_annotation(
                session=session,
                user=judge,
                item=items[ext],
                labels={"observed_action": action, "right_action": action},
                origin="import",
            )
    if days:
        for ann in session.exec(select(Annotation).where(Annotation.campaign_id == campaign.id)):
            ext = next(k for k, v in items.items() if v.id == ann.item_id)
            ann.created_at = datetime(2026, 1, int(ext[1:]), 12, tzinfo=UTC)
            session.add(ann)
    session.flush()
    return Seeded(
        campaign=campaign,
        lead=users["lena"],
        annotator=users["alice"],
        items={k: v.id for k, v in items.items()},  # type: ignore[misc]
        users=users,
    )


def _user(session: Session, name: str, role: str = "annotator") -> User:
    """The user `name`, created (password `correct horse`) on first use."""
    found = session.exec(select(User).where(User.name == name)).first()
    return found if found is not None else make_user(session, name, role=role)


def forget_warm(db_url: str) -> None:
    """After a test of the lead pages: wait for the figure worker, then drop the labels and
    figures kept for `db_url`, so that the next test starts cold."""
    from annotate.app import lead, warm_figures

    assert warm_figures.wait_for_figures(30)
    with lead._WARM_LOCK:
        for slot in [k for k in lead._WARM if k[0] == db_url]:
            lead._WARM.pop(slot)
    with warm_figures._LOCK:
        for slot in [k for k in warm_figures._FIGURES if k[0] == db_url]:
            warm_figures._FIGURES.pop(slot)
