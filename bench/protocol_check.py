"""The checks after a protocol-level load run (bench/bench_protocol_load.py): what each
annotator was shown and had acknowledged, against what the database holds."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, func, select

from annotate.storage import db
from annotate.storage.models import Annotation, Assignment, Item, User


@dataclass
class AnnotatorRun:
    """What one annotator did: the items shown (assignment, handle) in order, the labels sent
    and acknowledged by assignment, and each submit's latency in seconds."""

    name: str
    base_url: str
    shown: list[tuple[int, str]] = field(default_factory=list)
    sent: dict[int, dict[str, Any]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    error: str | None = None
    sign_in_retries: int = 0  # sign-ins refused because too many signed in at once


def _differences(stored: dict[str, Any], sent: dict[str, Any]) -> list[str]:
    """Fields where `stored` is not what was `sent` (a field not sent must be stored empty)."""
    return sorted(
        k
        for k in set(stored) | set(sent)
        if (stored.get(k) != sent[k] if k in sent else stored.get(k) not in (None, [], ""))
    )


def check(url: str, runs: list[AnnotatorRun], *, items: int, overlap: int) -> list[str]:
    """What is wrong in the database after `runs` (empty when all is well): an annotator's
    error or missing labels, an acknowledged label not stored as sent, a label stored that was
    not acknowledged, an item over `overlap` human labels or with a wrong label counter, an
    item shown twice to one annotator."""
    problems = [f"{r.name}: {r.error}" for r in runs if r.error]
    problems += [f"{r.name}: {len(r.sent)} of {items} labels" for r in runs if len(r.sent) < items]
    for r in runs:
        handles = Counter(h for _, h in r.shown)
        problems += [f"{r.name} was shown item {h} {n} times" for h, n in handles.items() if n > 1]
    engine = db.make_engine(url)
    try:
        with Session(engine) as s:
            names = [r.name for r in runs]
            stored = {
                (user, item): labels
                for user, item, labels in s.exec(
                    select(User.name, Annotation.item_id, Annotation.labels)
                    .join(User, col(User.id) == Annotation.user_id)
                    .where(col(User.name).in_(names))
                ).all()
            }
            given = {
                a: (user, item)
                for a, user, item in s.exec(
                    select(Assignment.id, User.name, Assignment.item_id)
                    .join(User, col(User.id) == Assignment.user_id)
                    .where(col(User.name).in_(names))
                ).all()
            }
            acknowledged: set[tuple[str, int]] = set()
            for r in runs:
                shown_items = Counter(given[a][1] for a, _ in r.shown if a in given)
                problems += [
                    f"{r.name} was given item #{i} {n} times"
                    for i, n in shown_items.items()
                    if n > 1
                ]
                for assignment, sent in r.sent.items():
                    owner = given.get(assignment)
                    if owner is None or owner[0] != r.name:
                        problems.append(f"{r.name}: assignment {assignment} is not theirs")
                        continue
                    acknowledged.add(owner)
                    row = stored.get(owner)
                    if row is None:
                        problems.append(f"{r.name}: label for item #{owner[1]} not stored")
                        continue
                    differs = _differences(row, sent)
                    if differs:
                        problems.append(
                            f"{r.name}: item #{owner[1]} stored {differs} unlike what was sent"
                        )
            problems += [
                f"{user}: label for item #{item} stored but never acknowledged"
                for user, item in sorted(set(stored) - acknowledged)
            ]
            humans = (
                select(Annotation.item_id, func.count().label("n"))
                .join(User, col(User.id) == Annotation.user_id)
                .where(col(User.is_machine).is_(False))
                .group_by(col(Annotation.item_id))
                .subquery()
            )
            for item, n in s.exec(
                select(humans.c.item_id, humans.c.n).where(humans.c.n > overlap)
            ).all():
                problems.append(f"item #{item} has {n} human labels, over k = {overlap}")
            counted = s.exec(
                select(Item.id, Item.human_labels, func.coalesce(humans.c.n, 0))
                .outerjoin(humans, humans.c.item_id == Item.id)
                .where(col(Item.human_labels) != func.coalesce(humans.c.n, 0))
            ).all()
            problems += [
                f"item #{item} counts {kept} human labels, has {real}"
                for item, kept, real in counted
            ]
    finally:
        engine.dispose()
    return problems
