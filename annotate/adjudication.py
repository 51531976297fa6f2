"""The lead's review queue and adjudications, with provenance.

Keyword-only storage functions with an explicit session; each checks the lead role itself.
An adjudication is never edited: re-adjudicating an item appends a new row that points at the
one it replaces (`previous_id`) and clears that row's `is_current` flag, the only change ever
made to a stored adjudication. Call the writing functions inside
`db.session_scope(engine, immediate=True)`: on SQLite that takes the write lock up front, and
on PostgreSQL the item rows are locked, so two leads adjudicating one item at once cannot both
become current.

Majority (for "the lead overrides the majority") is defined on the right action: the value
that more than half of the item's human annotators chose (`bands.majority`). Items without
one (a 1-1 split) can be decided either way without a note.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from pydantic import BaseModel
from sqlmodel import Session, col, select

from annotate import agreement as ag
from annotate import bands
from annotate.auth import require_role
from annotate.errors import NotFound, PermissionDenied, ValidationProblem
from annotate.models import Adjudication, Annotation, Campaign, Item, User, utcnow
from annotate.queries import LabelTable, load_labels
from annotate.reports import PERSONAL_FIELDS, ReportFilters, item_disagreement, item_fields
from annotate.schema import LabelSchema, RuleWarning
from annotate.store import campaign_schema

MANUAL, BULK_UNANIMOUS = "manual", "bulk_unanimous"
# Confidence recorded on a bulk acceptance: k annotators agreed independently on every field.
BULK_CONFIDENCE = "high"


# -- the queue -------------------------------------------------------------------------------


def queue_from_table(
    table: LabelTable,
    *,
    actor: User,
    filters: ReportFilters | None = None,
    min_labels: int | None = None,
    flagged_only: bool = False,
    include_adjudicated: bool = True,
    current: Mapping[int, str] | None = None,
    items: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The review queue from already loaded labels (see `review_queue`).

    `current` (item id -> method, from `current_adjudications`) replaces the table's own
    adjudications, so that a cached table need not be reloaded after each adjudication.
    `items` is `reports.item_disagreement(table, filters=filters)` when the caller has it
    already (it is the expensive part at 100,000 items); it is not modified.
    """
    require_role(actor, "lead", "see the review queue")
    need = table.campaign.overlap if min_labels is None else min_labels
    if need < 1:
        raise ValidationProblem(f"The queue needs items with at least 1 label, got {need}")
    frame = (
        item_disagreement(table, actor=actor, filters=filters) if items is None else items.copy()
    )
    if current is not None:
        frame["adjudicated"] = frame["item_id"].isin(list(current))
        frame["method"] = frame["item_id"].map(dict(current))
    keep = frame["n_labels"] >= need
    if flagged_only:
        keep &= frame["flagged"]
    if not include_adjudicated:
        keep &= ~frame["adjudicated"]
    frame = frame[keep].sort_values(
        ["disagreement", "other_disagreement", "item_id"],
        ascending=[False, False, True],
        kind="stable",
    )
    return frame.reset_index(drop=True)


def review_queue(
    *,
    session: Session,
    actor: User,
    campaign: Campaign,
    filters: ReportFilters | None = None,
    min_labels: int | None = None,
    flagged_only: bool = False,
    include_adjudicated: bool = True,
) -> pd.DataFrame:
    """Items with at least `min_labels` human labels (default: the campaign's overlap k),
    most disagreed first; leads only.

    Ordered by `disagreement` (band distance on the right action), then by the other fields'
    disagreement, then item id. Filter by category, model, group and intent (`filters`), by
    annotator flags (`flagged_only`); already adjudicated items are marked (`adjudicated`,
    `method`) or left out (`include_adjudicated=False`). Columns as
    `reports.item_disagreement`.
    """
    require_role(actor, "lead", "see the review queue")
    table = load_labels(session=session, actor=actor, campaign=campaign)
    return queue_from_table(
        table,
        actor=actor,
        filters=filters,
        min_labels=min_labels,
        flagged_only=flagged_only,
        include_adjudicated=include_adjudicated,
    )


def current_adjudications(*, session: Session, actor: User, campaign: Campaign) -> dict[int, str]:
    """Item id -> method of every current adjudication in `campaign`; leads only."""
    require_role(actor, "lead", "see adjudications")
    rows = session.exec(
        select(Adjudication.item_id, Adjudication.method).where(
            Adjudication.campaign_id == campaign.id, col(Adjudication.is_current).is_(True)
        )
    ).all()
    return {int(item_id): method for item_id, method in rows}


# -- one item --------------------------------------------------------------------------------


def find_item(*, session: Session, actor: User, campaign: Campaign, external_id: str) -> int:
    """The database id of item `external_id` in `campaign`; NotFound otherwise. Leads only."""
    require_role(actor, "lead", "open items for adjudication")
    item_id = session.exec(
        select(Item.id).where(Item.campaign_id == campaign.id, Item.external_id == external_id)
    ).first()
    if item_id is None:
        raise NotFound(f"No item `{external_id}` in campaign `{campaign.name}`")
    return int(item_id)


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
            previous_id=a.previous_id,
            is_current=a.is_current,
            created_at=a.created_at,
        )
        for a, lead in rows
    ]


def _suggest(schema: LabelSchema, human: list[dict[str, Any]]) -> dict[str, Any]:
    """Pre-filled final labels: per field the strict majority, else the single most common."""
    out: dict[str, Any] = {}
    for spec in schema.fields:
        if spec.kind == "text" or spec.name in PERSONAL_FIELDS:
            out[spec.name] = None
            continue
        given: list[Any] = [h[spec.name] for h in human if h.get(spec.name) is not None]
        if spec.kind == "multi":
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
    require_role(actor, "lead", "see other annotators' labels")
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
    distance = ag.band_distance(schema.credit_matrix())
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
    require_role(actor, "lead", "see adjudications")
    _item(session, item_id)
    return _records(session, item_id)


# -- recording -------------------------------------------------------------------------------


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
) -> Adjudication:
    """Record the final labels and band of an item; leads only.

    `labels` must hold every required field of the campaign's schema (normalized by it).
    `band` defaults to `bands.suggest_band` around the final right action; a given band must
    contain the right action at 1 (`bands.check_band`). A `note` is required when the final
    right action differs from the human majority. Re-adjudication appends a row pointing at
    the previous one and marks that one not current. Raises ValidationProblem, NotFound,
    PermissionDenied.
    """
    require_role(actor, "lead", "adjudicate items")
    lead_id = _lead_id(actor)
    item = _item(session, item_id, lock=True)
    schema = campaign_schema(session=session, campaign=_campaign(session, item))
    clean = schema.normalize_labels(labels)
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
    )


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
        previous_id=current[-1].id if current else None,
        is_current=True,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


class BulkAcceptResult(BaseModel):
    """What a bulk acceptance did: items adjudicated, and items left alone with the reason."""

    accepted: list[int]
    skipped: dict[int, str]


def bulk_accept_unanimous(
    *,
    session: Session,
    actor: User,
    campaign: Campaign,
    item_ids: Sequence[int] | None = None,
    min_labels: int | None = None,
) -> BulkAcceptResult:
    """Adjudicate unanimous items as their annotators labeled them; leads only.

    An item qualifies when it has at least `min_labels` human labels (default: overlap k),
    every human gave the same value of every item field (`reports.item_disagreement`), and
    it is not adjudicated yet. Each gets method "bulk_unanimous", the common labels
    (confidence "high"), and the schema's default band around its right action. With
    `item_ids`, only those items are considered, and each that does not qualify is listed in
    `skipped` with the reason.
    """
    require_role(actor, "lead", "adjudicate items")
    lead_id = _lead_id(actor)
    table = load_labels(session=session, actor=actor, campaign=campaign)
    schema = table.schema
    need = campaign.overlap if min_labels is None else min_labels
    frame = item_disagreement(table, actor=actor).set_index("item_id", drop=False)
    wanted = list(dict.fromkeys(item_ids)) if item_ids is not None else frame.index.tolist()
    skipped: dict[int, str] = {}
    eligible: list[int] = []
    n_labels = frame["n_labels"].to_dict()
    adjudicated = frame["adjudicated"].to_dict()
    unanimous = frame["unanimous"].to_dict()
    for item_id in wanted:
        if item_id not in n_labels:
            skipped[item_id] = "no human labels in this campaign"
        elif n_labels[item_id] < need:
            skipped[item_id] = f"fewer than {need} human labels"
        elif adjudicated[item_id]:
            skipped[item_id] = "already adjudicated"
        elif not unanimous[item_id]:
            skipped[item_id] = "annotators disagree"
        else:
            eligible.append(int(item_id))
    if not eligible:
        return BulkAcceptResult(accepted=[], skipped=skipped)
    # Lock the items, then re-check: another lead may have adjudicated one since the load.
    session.exec(select(Item.id).where(col(Item.id).in_(eligible)).with_for_update()).all()
    taken = set(
        session.exec(
            select(Adjudication.item_id).where(
                col(Adjudication.item_id).in_(eligible), col(Adjudication.is_current).is_(True)
            )
        ).all()
    )
    # Unanimous items carry the same labels on every human row: the first one will do.
    humans = table.humans().drop_duplicates("item_id").set_index("item_id")
    names = [f.name for f in item_fields(schema)]
    accepted: list[int] = []
    for item_id in eligible:
        if item_id in taken:
            skipped[item_id] = "already adjudicated"
            continue
        labels: dict[str, Any] = {n: _plain(humans.at[item_id, n]) for n in names}
        if "confidence" in {f.name for f in schema.fields}:
            labels["confidence"] = BULK_CONFIDENCE
        clean = schema.normalize_labels(labels)
        right = clean[schema.right_action_field]
        assert isinstance(right, str)  # unanimity requires every required field
        session.add(
            Adjudication(
                campaign_id=campaign.id,  # type: ignore[arg-type]
                item_id=item_id,
                lead_id=lead_id,
                labels=dict(clean),
                band=schema.default_band(right),
                note=None,
                guideline_gap=False,
                overrides_majority=False,
                method=BULK_UNANIMOUS,
                previous_id=None,
                is_current=True,
                created_at=utcnow(),
            )
        )
        accepted.append(item_id)
    session.flush()
    return BulkAcceptResult(accepted=accepted, skipped=skipped)


def _plain(value: Any) -> Any:
    """A label cell from the LabelTable back to stored form (frozenset -> list)."""
    if isinstance(value, frozenset):
        return sorted(value)
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return value
