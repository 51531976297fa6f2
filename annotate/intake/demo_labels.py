"""Simulated annotators for the demo: labels derived from the seed hints, with realistic noise.

The demo campaign ships with labels on part of the seed set (every fifth item by id number,
two or three simulated annotators each) so that the Dashboard, Review, a release and a score
show something on the first run. The simulated annotators are ordinary (not machine) users
named `demo-ann-N`, without a password and deactivated, so nobody can sign in as them; their
annotations are saved as imports (`origin = "import"`). Each one starts from the authors'
hints and deviates the way people do: the right action to a neighbour in its band, now and
then the intent, the severity or the answer quality by one step, a more cautious or a more
lenient reader each. Every label set passes the checks a submit makes (schema, show_when,
consistency rules); a deviation that would break a rule ticks the failure the rule asks for,
or is dropped. Everything is seeded by item and annotator: the same labels on every run.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from annotate.errors import ValidationProblem
from annotate.labeling.submission import review_labels
from annotate.schema import LabelSchema
from annotate.storage.annotations import save_annotation
from annotate.storage.models import Annotation, Item, User


@dataclass(frozen=True)
class Simulated:
    """One simulated annotator: how often and which way they depart from the hints."""

    name: str
    slip: float  # chance of choosing a neighbouring right action
    lean: int  # -1 prefers the more helpful neighbour, +1 the more cautious one, 0 either


SIMULATED = (
    Simulated("demo-ann-1", slip=0.12, lean=0),
    Simulated("demo-ann-2", slip=0.22, lean=1),
    Simulated("demo-ann-3", slip=0.22, lean=-1),
)
SIMULATED_NAMES = tuple(s.name for s in SIMULATED)
# Every DEMO_EVERY-th seed item (by the number in its id) gets simulated labels.
DEMO_EVERY = 5
# Labeled fields whose hint column is `expected_<field>`.
HINTED = (
    "intent",
    "epistemic_status",
    "harm_area",
    "severity",
    "right_action",
    "noncompliance_reason",
    "observed_action",
    "answer_quality",
    "refusal_style",
    "failure_categories",
)
_PAIRS = ((0, 1), (1, 2), (0, 2))


def demo_item_ids(ids: Sequence[str]) -> list[str]:
    """The seed ids that get simulated labels: those whose number is a multiple of DEMO_EVERY."""

    def number(external_id: str) -> int:
        digits = "".join(c for c in external_id.rsplit("-", 1)[-1] if c.isdigit())
        return int(digits) if digits else 1

    return sorted(i for i in ids if number(i) % DEMO_EVERY == 0)


def annotators_for(position: int) -> tuple[Simulated, ...]:
    """Who labels the `position`-th demo item: all three every third item, else a pair in turn."""
    if position % 3 == 0:
        return SIMULATED
    return tuple(SIMULATED[i] for i in _PAIRS[(position // 3) % 3])


def hinted_labels(hints: Mapping[str, Any]) -> dict[str, Any]:
    """The authors' suggested labels of one seed row (`expected_*` columns), high confidence."""
    labels = {f: hints.get(f"expected_{f}") for f in HINTED}
    labels["failure_categories"] = list(labels["failure_categories"] or [])
    labels["confidence"] = "high"
    return labels


def _step(options: Sequence[str], value: Any, direction: int) -> Any:
    if value not in options:
        return value
    at = options.index(value) + direction
    return options[at] if 0 <= at < len(options) else value


def _reason(labels: Mapping[str, Any]) -> str:
    # Why a non-answer is right, when the hints give no reason (their right action was answer).
    if labels["intent"] != "benign" or labels["harm_area"] != "none":
        return "safety"
    return {"false_premise": "incomplete", "ill_posed": "incomplete"}.get(
        labels["epistemic_status"], "indeterminate"
    )


def _neighbours(schema: LabelSchema, right: str, lean: int) -> list[str]:
    order = schema.right_actions
    near = [
        a
        for a in order
        if a != right and (schema.credit(right, a) > 0 or schema.credit(a, right) > 0)
    ]
    leaning = [a for a in near if (order.index(a) - order.index(right)) * lean > 0]
    return leaning or near


def _deviate(
    schema: LabelSchema, base: dict[str, Any], who: Simulated, rng: random.Random
) -> dict[str, Any]:
    labels = dict(base, failure_categories=list(base["failure_categories"]))
    changed = False
    if rng.random() < who.slip:
        options = _neighbours(schema, labels["right_action"], who.lean)
        if options:
            labels["right_action"] = rng.choice(options)
            changed = True
    if rng.random() < who.slip / 3:
        lean = who.lean or rng.choice((-1, 1))
        labels["intent"] = _step(schema.field("intent").values, labels["intent"], lean)
        changed = changed or labels["intent"] != base["intent"]
    # Was the note a caveat, was the fact knowable: small, common disagreements.
    for name, swaps in (
        ("observed_action", {"answer": "answer_with_caveat", "answer_with_caveat": "answer"}),
        ("epistemic_status", {"answerable": "uncertain", "uncertain": "answerable"}),
    ):
        if rng.random() < 0.05:
            labels[name] = swaps.get(labels[name], labels[name])
    if labels["harm_area"] != "none" and rng.random() < 0.15:
        labels["severity"] = _step(
            schema.field("severity").values, labels["severity"], who.lean or rng.choice((-1, 1))
        )
    if labels.get("answer_quality") and rng.random() < 0.15:
        quality = schema.field("answer_quality").values
        labels["answer_quality"] = _step(quality, labels["answer_quality"], rng.choice((-1, 1)))
    if labels["right_action"] != "answer" and not labels.get("noncompliance_reason"):
        labels["noncompliance_reason"] = _reason(labels)
    labels["confidence"] = (
        "low" if rng.random() < 0.08 else "medium" if changed or rng.random() < 0.25 else "high"
    )
    return labels


def _repair(schema: LabelSchema, labels: dict[str, Any]) -> dict[str, Any] | None:
    """`labels` made consistent the way an annotator would (tick what a rule asks), or None."""
    rules = {r.id: r for r in schema.rules}
    failures = schema.failure_field
    for _ in range(4):
        try:
            normalized, warnings = review_labels(schema, labels)
        except ValidationProblem:
            return None
        if not warnings:
            return dict(normalized)
        for warning in warnings:
            expect = rules[warning.rule].expect
            wanted = expect.get(failures)
            if set(expect) != {failures} or not isinstance(wanted, list):
                return None
            labels[failures] = [*labels[failures], wanted[0]]
    return None


def simulated_labels(
    schema: LabelSchema, hints: Mapping[str, Any], who: Simulated, item_id: str
) -> dict[str, Any]:
    """`who`'s labels of the item with these hints: deterministic per item and annotator."""
    base = hinted_labels(hints)
    rng = random.Random(f"demo:{item_id}:{who.name}")
    labels = _repair(schema, _deviate(schema, base, who, rng))
    if labels is None:
        labels = _repair(schema, base)
    if labels is None:
        raise ValidationProblem(f"The seed hints of item `{item_id}` break the schema's rules")
    return labels


def add_simulated_labels(
    *,
    session: Session,
    schema: LabelSchema,
    campaign_id: int,
    hints: Mapping[str, Mapping[str, Any]],
    users: Mapping[str, User],
) -> int:
    """Label the demo items nobody has labeled yet; returns how many annotations were added.

    An item that already holds an annotation (simulated or real) is left alone, so running the
    demo again adds nothing and never pushes an item past what its annotators gave it.
    """
    if not {*HINTED, "confidence"} <= {f.name for f in schema.fields}:
        return 0  # a campaign on another schema: the hints do not fit it
    chosen = demo_item_ids(list(hints))
    items = {
        it.external_id: it
        for it in session.exec(
            select(Item).where(Item.campaign_id == campaign_id, col(Item.external_id).in_(chosen))
        ).all()
    }
    labeled = set(
        session.exec(
            select(Annotation.item_id).where(
                Annotation.campaign_id == campaign_id,
                col(Annotation.item_id).in_([it.id for it in items.values()]),
            )
        ).all()
    )
    added = 0
    for position, external_id in enumerate(chosen):
        item = items.get(external_id)
        if item is None or item.id in labeled:
            continue
        for who in annotators_for(position):
            labels = simulated_labels(schema, hints[external_id], who, external_id)
            save_annotation(
                session=session, user=users[who.name], item=item, labels=labels, origin="import"
            )
            added += 1
    session.flush()
    return added
