"""Adjudication: one item's labels side by side, and the lead's final labels with provenance."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, select

from annotate import stats as ag
from annotate.accounts.auth import require_role
from annotate.errors import NotFound, PermissionDenied, ValidationProblem
from annotate.labeling.submission import missing_fields, missing_message
from annotate.review.figures import PERSONAL_FIELDS, item_fields
from annotate.schema import LabelSchema, RuleWarning
from annotate.settings import check_free_text
from annotate.stats import bands
from annotate.storage.models import Adjudication, Annotation, Campaign, Item, User, utcnow
from annotate.storage.schemas import campaign_schema

MANUAL, BULK_UNANIMOUS = "manual", "bulk_unanimous"
CAUSE = "disagreement_cause"  # the adjudication field refusal-v2 adds


class AnnotatorLabels(BaseModel):
    """One annotator's labels of an item, as the lead sees them (names included)."""

    annotator: str
    is_machine: bool
    labels: dict[str, Any]
    rationale: str | None
    confidence: str | None
    duration_s: float | None
    flagged: bool
    flag_note: str | None
    overridden_rules: list[str]
    updated_at: datetime
    warnings: list[RuleWarning]


class AdjudicationRecord(BaseModel):
    """A stored adjudication with its provenance."""

    id: int
    item_id: int
    lead: str
    labels: dict[str, Any]
    band: dict[str, float]
    note: str | None
    guideline_gap: bool
    overrides_majority: bool
    method: str
    overridden_rules: list[str] = []
    disagreement_cause: str | None = None
    previous_id: int | None
    is_current: bool
    created_at: datetime


class ItemDetail(BaseModel):
    """Everything a lead needs to adjudicate one item."""

    item_id: int
    campaign: str
    schema_id: str
    external_id: str
    prompt: str | None
    conversation: list[dict[str, Any]] | None
    response: str
    model: str | None
    source: str | None
    category: str | None
    group_id: str | None
    meta: dict[str, Any]
    annotations: list[AnnotatorLabels]
    votes: dict[str, dict[str, int]]
    majority: str | None
    disagreement: float
    suggested_labels: dict[str, Any]
    suggested_band: dict[str, float] | None
    current: AdjudicationRecord | None
    history: list[AdjudicationRecord]


def _item(session: Session, item_id: int, *, lock: bool = False) -> Item:
    query = select(Item).where(Item.id == item_id)
    if lock:
        query = query.with_for_update()
    item = session.exec(query).first()
    if item is None:
        raise NotFound(f"No item with id {item_id}")
    return item


def _campaign(session: Session, item: Item) -> Campaign:
    campaign = session.get(Campaign, item.campaign_id)
    if campaign is None:  # pragma: no cover - the foreign key forbids it
        raise NotFound(f"Item `{item.external_id}` belongs to no campaign")
    return campaign


def _annotations(session: Session, item_id: int) -> list[tuple[Annotation, User]]:
    rows = session.exec(
        select(Annotation, User)
        .join(User, col(User.id) == Annotation.user_id)
        .where(Annotation.item_id == item_id)
        .order_by(col(User.is_machine), col(User.name))
    ).all()
    return [(a, u) for a, u in rows]


def _records(session: Session, item_id: int) -> list[AdjudicationRecord]:
    rows = session.exec(
        select(Adjudication, User.name)
        .join(User, col(User.id) == Adjudication.lead_id)
        .where(Adjudication.item_id == item_id)
        .order_by(col(Adjudication.id).desc())
    ).all()
    return [
        AdjudicationRecord(
            id=a.id,  # type: ignore[arg-type]
            item_id=a.item_id,
            lead=lead,
            labels=a.labels,
            band=a.band,
            note=a.note,
            guideline_gap=a.guideline_gap,
            overrides_majority=a.overrides_majority,
            method=a.method,
            overridden_rules=list(a.overridden_rules or []),
            disagreement_cause=a.disagreement_cause,
            previous_id=a.previous_id,
            is_current=a.is_current,
            created_at=a.created_at,
        )
        for a, lead in rows
    ]


def _suggest(schema: LabelSchema, human: list[dict[str, Any]]) -> dict[str, Any]:
    """Pre-filled final labels: per field the strict majority, else the single most common.

    A field no annotator gave stays None (unset): for a multi-choice field that is never the
    empty selection, which says someone looked and ticked nothing.
    """
    out: dict[str, Any] = {}
    for spec in schema.fields:
        if spec.kind == "text" or spec.name in PERSONAL_FIELDS:
            out[spec.name] = None
            continue
        given: list[Any] = [h[spec.name] for h in human if h.get(spec.name) is not None]
        if spec.kind == "multi":
            if not given:
                out[spec.name] = None
                continue
            ticks = Counter(v for chosen in given for v in chosen)
            out[spec.name] = [v for v in spec.values if ticks[v] * 2 > len(given)]
            continue
        ranked = Counter(given).most_common()
        tied = len(ranked) > 1 and ranked[0][1] == ranked[1][1]
        out[spec.name] = ranked[0][0] if ranked and not tied else None
    return out


def _votes(human: list[dict[str, Any]], name: str) -> dict[str, int]:
    """How many humans chose each value (for a multi field: ticked each category)."""
    counts: Counter[str] = Counter()
    for labels in human:
        value = labels.get(name)
        if isinstance(value, list):
            counts.update(value)
        elif value is not None:
            counts[value] += 1
    return dict(counts)


def item_detail(*, session: Session, actor: User, item_id: int) -> ItemDetail:
    """An item with every annotator's labels side by side, named; leads only.

    Includes the rule warnings of each annotator's labels, the human votes per field, the
    majority right action, pre-filled final labels and band (from the current adjudication if
    there is one, else from the annotators), and the item's adjudication history, newest first.
    """
    require_role(actor, "lead", "see other annotators' labels", session=session)
    item = _item(session, item_id)
    campaign = _campaign(session, item)
    schema = campaign_schema(session=session, campaign=campaign)
    right = schema.right_action_field
    rows = _annotations(session, item_id)
    annotations = [
        AnnotatorLabels(
            annotator=user.name,
            is_machine=user.is_machine,
            labels=ann.labels,
            rationale=ann.labels.get("rationale"),
            confidence=ann.labels.get("confidence"),
            duration_s=ann.duration_s,
            flagged=ann.flagged,
            flag_note=ann.flag_note,
            overridden_rules=list(ann.overridden_rules),
            updated_at=ann.updated_at,
            warnings=schema.check_consistency(ann.labels),
        )
        for ann, user in rows
    ]
    human = [a.labels for a in annotations if not a.is_machine]
    votes = {spec.name: _votes(human, spec.name) for spec in item_fields(schema)}
    right_votes = [h.get(right) for h in human]
    history = _records(session, item_id)
    current = next((r for r in history if r.is_current), None)
    if current is not None:
        suggested = dict(current.labels)
        band: dict[str, float] | None = dict(current.band)
    else:
        suggested = _suggest(schema, human)
        chosen = suggested.get(right)
        band = bands.suggest_band(schema, chosen, right_votes) if chosen else None
    distance = ag.band_distance(schema.symmetric_credit_matrix())  # annotators: symmetrised
    given = [[v] for v in right_votes if v is not None]
    score = (
        float(ag.disagreement_scores(given, distance, schema.action_labels)[0])
        if len(given) >= 2
        else 0.0
    )
    return ItemDetail(
        item_id=item_id,
        campaign=campaign.name,
        schema_id=schema.id,
        external_id=item.external_id,
        prompt=item.prompt,
        conversation=item.conversation,
        response=item.response,
        model=item.model,
        source=item.source,
        category=item.category,
        group_id=item.group_id,
        meta=item.meta or {},
        annotations=annotations,
        votes=votes,
        majority=bands.majority(right_votes),
        disagreement=score,
        suggested_labels=suggested,
        suggested_band=band,
        current=current,
        history=history,
    )


def adjudication_history(
    *, session: Session, actor: User, item_id: int
) -> list[AdjudicationRecord]:
    """Every adjudication of an item, newest first, with the lead's name; leads only."""
    require_role(actor, "lead", "see adjudications", session=session)
    _item(session, item_id)
    return _records(session, item_id)


def _lead_id(actor: User) -> int:
    if actor.id is None:
        raise PermissionDenied(
            f"`{actor.name}` cannot adjudicate: adjudications record which lead made them, "
            "so sign in as a lead"
        )
    return actor.id


def adjudicate(
    *,
    session: Session,
    actor: User,
    item_id: int,
    labels: dict[str, Any],
    band: dict[str, float] | None = None,
    note: str | None = None,
    guideline_gap: bool = False,
    disagreement_cause: str | None = None,
) -> Adjudication:
    """Record the final labels and band of an item; leads only.

    `labels` must hold every required field of the campaign's schema (normalized by it); a
    ValidationProblem names every missing one at once, by display name. An optional field
    left None stays unset (for a multi-choice field: not the empty selection). `band`
    defaults to `bands.suggest_band` around the final right action; a given band must
    contain the right action at 1 (`bands.check_band`). A `note` is required when the final
    right action differs from the human majority, and when the final labels break one of the
    schema's consistency rules: those rules are recorded as overridden. Re-adjudication
    appends a row pointing at the previous one and marks that one not current.
    `disagreement_cause` (optional) must be a value of the schema's adjudication field of that
    name (refusal-v2 on). Raises ValidationProblem, NotFound, PermissionDenied.
    """
    require_role(actor, "lead", "adjudicate items", session=session)
    lead_id = _lead_id(actor)
    item = _item(session, item_id, lock=True)
    schema = campaign_schema(session=session, campaign=_campaign(session, item))
    check_free_text({**labels, "note": note}, subject=f"Item `{item.external_id}`")
    # Unknown fields and values first, then every missing field at once. Every required field
    # is then given, so `partial` only keeps unset optional fields unset.
    clean = schema.normalize_labels(labels, partial=True)
    missing = missing_fields(schema, clean)
    if missing:
        raise ValidationProblem(
            missing_message(missing, prefix=f"Item `{item.external_id}`: the final labels need")
        )
    cause = _cause(schema, disagreement_cause, item.external_id)
    right_field = schema.right_action_field
    right = clean.get(right_field)
    if not isinstance(right, str):
        raise ValidationProblem(f"Item `{item.external_id}`: the final `{right_field}` is required")
    votes = [
        a.labels.get(right_field) for a, u in _annotations(session, item_id) if not u.is_machine
    ]
    majority = bands.majority(votes)
    overrides = majority is not None and right != majority
    text = (note or "").strip() or None
    if overrides and text is None:
        raise ValidationProblem(
            f"Item `{item.external_id}`: the right action `{right}` overrides the annotators' "
            f"majority `{majority}`; add a note saying why"
        )
    broken = schema.check_consistency(clean)
    if broken and text is None:
        raise ValidationProblem(
            f"Item `{item.external_id}`: the final labels break the schema's consistency "
            f"rules ({'; '.join(f'{w.rule}: {w.message}' for w in broken)}); change them, "
            "or add a note saying why they are right"
        )
    final_band = (
        bands.check_band(schema, right, band)
        if band is not None
        else bands.suggest_band(schema, right, votes)
    )
    return _record(
        session,
        item=item,
        lead_id=lead_id,
        labels=dict(clean),
        band=final_band,
        note=text,
        guideline_gap=guideline_gap,
        overrides_majority=overrides,
        method=MANUAL,
        overridden_rules=[w.rule for w in broken],
        disagreement_cause=cause,
    )


def _cause(schema: LabelSchema, value: str | None, external_id: str) -> str | None:
    """`value` checked against the schema's `disagreement_cause` values (None: not given)."""
    if value is None or not str(value).strip():
        return None
    names = [f.name for f in schema.adjudication_fields]
    if CAUSE not in names:
        raise ValidationProblem(
            f"Item `{external_id}`: schema {schema.id} has no `{CAUSE}` field (it has "
            "none before refusal-v2); leave it out"
        )
    try:
        clean = schema.normalize_adjudication({CAUSE: str(value).strip()})
    except ValidationProblem as exc:
        raise ValidationProblem(f"Item `{external_id}`: {exc}") from None
    found = clean.get(CAUSE)
    return found if isinstance(found, str) else None


def _record(
    session: Session,
    *,
    item: Item,
    lead_id: int,
    labels: dict[str, Any],
    band: dict[str, float],
    note: str | None,
    guideline_gap: bool,
    overrides_majority: bool,
    method: str,
    overridden_rules: list[str],
    disagreement_cause: str | None = None,
) -> Adjudication:
    current = session.exec(
        select(Adjudication)
        .where(Adjudication.item_id == item.id, col(Adjudication.is_current).is_(True))
        .with_for_update()
    ).all()
    for old in current:
        old.is_current = False
        session.add(old)
    session.flush()
    row = Adjudication(
        campaign_id=item.campaign_id,
        item_id=item.id,  # type: ignore[arg-type]
        lead_id=lead_id,
        labels=labels,
        band=band,
        note=note,
        guideline_gap=guideline_gap,
        overrides_majority=overrides_majority,
        method=method,
        overridden_rules=overridden_rules,
        disagreement_cause=disagreement_cause,
        previous_id=current[-1].id if current else None,
        is_current=True,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row
