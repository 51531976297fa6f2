"""The lead's review queue: items ordered by disagreement, and bulk acceptance of unanimous ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from pydantic import BaseModel
from sqlmodel import Session, col, select

from annotate.accounts.auth import require_role
from annotate.errors import NotFound, ValidationProblem
from annotate.review.adjudication import BULK_UNANIMOUS, _lead_id
from annotate.review.breakdowns import item_disagreement
from annotate.review.figures import ReportFilters, item_fields
from annotate.review.suggestions import model_suggestions
from annotate.storage.models import Adjudication, Campaign, Item, User, utcnow
from annotate.storage.queries import load_labels
from annotate.table import LabelTable

# Confidence recorded on a bulk acceptance: k annotators agreed independently on every field.
BULK_CONFIDENCE = "high"


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
    suggestions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The review queue from already loaded labels (see `review_queue`).

    `current` (item id -> method, from `current_adjudications`) replaces the table's own
    adjudications, so that a cached table need not be reloaded after each adjudication.
    `items` is `reports.item_disagreement(table, filters=filters)` when the caller has it
    already (it is the expensive part at 100,000 items); it is not modified. `suggestions`
    (`suggestions.model_suggestions(table)`) adds the annotator model's right action
    (`model_label`, `posterior`) and whether it differs from the majority (`model_differs`).
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
    frame = frame[keep].assign(_said=frame["flagged"] | frame["noted"])
    frame["n_labels"] = frame["n_labels"].astype(int)
    model = suggestions if suggestions is not None else pd.DataFrame()
    frame["model_label"] = frame["item_id"].map(model.get("model_label", pd.Series(dtype=object)))
    frame["posterior"] = frame["item_id"].map(model.get("posterior", pd.Series(dtype=float)))
    differs = frame["item_id"].map(model.get("differs", pd.Series(dtype=bool)))
    frame["model_differs"] = differs.astype("boolean").fillna(False).astype(bool)
    # Open items before adjudicated ones; within each, what annotators said first.
    frame = frame.sort_values(
        ["adjudicated", "_said", "disagreement", "model_differs", "other_disagreement", "item_id"],
        ascending=[True, False, False, False, False, True],
        kind="stable",
    )
    return frame.drop(columns="_said").reset_index(drop=True)


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
    items an annotator flagged or left a note on first, then most disagreed first; leads only.

    Open items come before adjudicated ones; within each, ordered by whether an annotator
    flagged the item or wrote a note (`flagged`, `noted`), then `disagreement` (band distance
    on the right action), then whether the annotator model (Dawid-Skene, fitted when items
    carry three or more labels) differs from the majority, then by the other fields'
    disagreement, then item id. Filter by category, model, group and intent (`filters`), by
    annotator flags (`flagged_only`); already adjudicated items are marked (`adjudicated`,
    `method`) or left out (`include_adjudicated=False`). Columns as
    `reports.item_disagreement`.
    """
    require_role(actor, "lead", "see the review queue", session=session)
    table = load_labels(session=session, actor=actor, campaign=campaign)
    return queue_from_table(
        table,
        actor=actor,
        filters=filters,
        min_labels=min_labels,
        flagged_only=flagged_only,
        include_adjudicated=include_adjudicated,
        suggestions=model_suggestions(table, actor=actor),
    )


def current_adjudications(*, session: Session, actor: User, campaign: Campaign) -> dict[int, str]:
    """Item id -> method of every current adjudication in `campaign`; leads only."""
    require_role(actor, "lead", "see adjudications", session=session)
    rows = session.exec(
        select(Adjudication.item_id, Adjudication.method).where(
            Adjudication.campaign_id == campaign.id, col(Adjudication.is_current).is_(True)
        )
    ).all()
    return {int(item_id): method for item_id, method in rows}


def find_item(*, session: Session, actor: User, campaign: Campaign, external_id: str) -> int:
    """The database id of item `external_id` in `campaign`; NotFound otherwise. Leads only."""
    require_role(actor, "lead", "open items for adjudication", session=session)
    item_id = session.exec(
        select(Item.id).where(Item.campaign_id == campaign.id, Item.external_id == external_id)
    ).first()
    if item_id is None:
        raise NotFound(f"No item `{external_id}` in campaign `{campaign.name}`")
    return int(item_id)


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
    every human gave the same value of every item field (`reports.item_disagreement`), no
    annotator flagged it or left a note on it (the lead reads those), its labels break none
    of the schema's consistency rules, and it is not adjudicated yet. Each gets method
    "bulk_unanimous", the common labels (confidence "high"; a field nobody gave stays unset),
    and the schema's default band around its right action. With `item_ids`, only those items
    are considered, and each that does not qualify is listed in `skipped` with the reason.
    """
    require_role(actor, "lead", "adjudicate items", session=session)
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
    flagged = frame["flagged"].to_dict()
    noted = frame["noted"].to_dict()
    for item_id in wanted:
        if item_id not in n_labels:
            skipped[item_id] = "no human labels in this campaign"
        elif n_labels[item_id] < need:
            skipped[item_id] = f"fewer than {need} human labels"
        elif adjudicated[item_id]:
            skipped[item_id] = "already adjudicated"
        elif not unanimous[item_id]:
            skipped[item_id] = "annotators disagree"
        elif flagged[item_id]:
            skipped[item_id] = "an annotator flagged it for the lead"
        elif noted[item_id]:
            skipped[item_id] = "an annotator left a note on it"
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
        # Unanimity requires every required field; an optional field nobody gave stays unset.
        clean = schema.normalize_labels(labels, partial=True)
        right = clean[schema.right_action_field]
        assert isinstance(right, str)
        broken = schema.check_consistency(clean)
        if broken:
            skipped[item_id] = "its labels break " + ", ".join(w.rule for w in broken)
            continue
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
