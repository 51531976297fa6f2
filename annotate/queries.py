"""Read a campaign's labels out of the database as plain data for the pure modules.

The store never computes a statistic: agreement, bands, release selection and the lead's pages
all start from a `LabelTable` built here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import String, type_coerce
from sqlmodel import Session, col, select

from annotate.auth import require_role
from annotate.models import Adjudication, Annotation, Campaign, Item, User
from annotate.schema import LabelSchema
from annotate.store import campaign_schema


@dataclass
class LabelTable:
    """Every annotation of a campaign, long form, plus the items they belong to.

    `annotations` has one row per (item, annotator) with columns item_id, user_id, annotator,
    is_machine, flagged, duration_s, created_at, updated_at, and one column per schema field
    (multi-choice fields hold a frozenset; an empty frozenset means "nothing ticked").
    `items` has one row per item (index item_id) with external_id, model, category, group_id,
    source, and prompt/conversation/response when loaded with text.
    """

    campaign: Campaign
    schema: LabelSchema
    items: pd.DataFrame
    annotations: pd.DataFrame
    adjudications: pd.DataFrame = field(default_factory=pd.DataFrame)

    def humans(self) -> pd.DataFrame:
        """Annotations by people (automatic judges are reported apart)."""
        return self.annotations[~self.annotations["is_machine"]]

    def machines(self) -> pd.DataFrame:
        """Annotations by automatic judges."""
        return self.annotations[self.annotations["is_machine"]]

    def matrix(
        self, field_name: str, *, machine: bool = False, item_ids: list[int] | None = None
    ) -> tuple[list[str], list[int], np.ndarray]:
        """(annotators, item ids, annotators x items object array) of one field.

        Missing labels are None. Units are `item_ids` if given, else every item that has at
        least one label of that kind (human or machine).
        """
        frame = self.machines() if machine else self.humans()
        frame = frame[frame[field_name].notna()]
        annotators = sorted(frame["annotator"].unique().tolist())
        units = item_ids if item_ids is not None else sorted(frame["item_id"].unique().tolist())
        a_index = {a: i for i, a in enumerate(annotators)}
        u_index = {u: i for i, u in enumerate(units)}
        out = np.full((len(annotators), len(units)), None, dtype=object)
        rows = frame["annotator"].map(a_index).to_numpy(dtype=np.int64)  # int even when empty
        cols = frame["item_id"].map(u_index)
        keep = cols.notna().to_numpy()
        values = frame[field_name].to_numpy()
        out[rows[keep], cols[keep].astype(int).to_numpy()] = values[keep]
        return annotators, units, out


def _cells(kind: str, values: Sequence[Any]) -> list[Any]:
    """One field's raw values (text as the database extracts it) in LabelTable form."""
    if kind != "multi":
        return [None if v in ("", None) else v for v in values]
    # A campaign has few distinct selections: decode each one once.
    memo: dict[Any, frozenset[str] | None] = {}
    out: list[Any] = []
    for v in values:
        if v not in memo:
            memo[v] = _selection(v)
        out.append(memo[v])
    return out


def _selection(value: Any) -> frozenset[str] | None:
    """A multi-choice value from its JSON text: a frozenset, or None when it is not a list."""
    if value is None:
        return None
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return None
    return frozenset(parsed) if isinstance(parsed, list) else None


def _json_value(value: Any) -> Any:
    # SQLite hands back the stored text; psycopg may already have decoded PostgreSQL json.
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def load_labels(
    *,
    session: Session,
    actor: User,
    campaign: Campaign,
    with_text: bool = False,
) -> LabelTable:
    """Everyone's labels in `campaign`; leads and admins only (labeling is blind)."""
    require_role(actor, "lead", "read other annotators' labels")
    schema = campaign_schema(session=session, campaign=campaign)
    item_cols: list[Any] = [
        Item.id,
        Item.external_id,
        Item.model,
        Item.category,
        Item.group_id,
        Item.source,
    ]
    if with_text:
        # JSON columns come back as text and are decoded with orjson below: SQLAlchemy's
        # per-row json.loads was a second of a 100,000-item release.
        item_cols += [
            Item.prompt,
            type_coerce(Item.conversation, String).label("conversation"),
            Item.response,
            type_coerce(Item.meta, String).label("meta"),
        ]
    item_rows = (
        session.connection()
        .execute(select(*item_cols).where(Item.campaign_id == campaign.id).order_by(col(Item.id)))
        .all()
    )
    names = [c.key for c in item_cols]
    names[0] = "item_id"
    item_columns = list(zip(*item_rows, strict=True)) if item_rows else [()] * len(names)
    items = pd.DataFrame(
        {name: list(values) for name, values in zip(names, item_columns, strict=True)}
    )
    if with_text:
        for name in ("conversation", "meta"):
            items[name] = [_json_value(v) for v in items[name]]
        items["meta"] = [v if v is not None else {} for v in items["meta"]]
    items["item_id"] = items["item_id"].astype("int64")
    items = items.set_index("item_id", drop=False)

    # Each label is pulled out of the JSON by the database (json_extract on SQLite, ->> on
    # PostgreSQL) and timestamps come back as raw values parsed in one vectorised call:
    # decoding 500,000 label dicts one by one in Python took most of a lead's wait.
    fields = [(f.name, f.kind) for f in schema.fields]
    query = (
        select(  # type: ignore[call-overload]
            Annotation.item_id,
            Annotation.user_id,
            User.name,
            User.is_machine,
            Annotation.flagged,
            Annotation.duration_s,
            type_coerce(Annotation.created_at, String),
            type_coerce(Annotation.updated_at, String),
            *(Annotation.labels[name].as_string() for name, _ in fields),
        )
        .join(User, col(User.id) == Annotation.user_id)
        .where(Annotation.campaign_id == campaign.id)
    )
    rows = session.connection().execute(query).all()
    base = [
        "item_id",
        "user_id",
        "annotator",
        "is_machine",
        "flagged",
        "duration_s",
        "created_at",
        "updated_at",
    ]
    columns = list(zip(*rows, strict=True)) if rows else [()] * (len(base) + len(fields))
    data: dict[str, Any] = {name: list(columns[i]) for i, name in enumerate(base)}
    for (name, kind), values in zip(fields, columns[len(base) :], strict=True):
        data[name] = pd.Series(_cells(kind, values), dtype=object)
    annotations = pd.DataFrame(data)
    for name in ("item_id", "user_id"):
        annotations[name] = annotations[name].astype("int64")
    annotations["is_machine"] = annotations["is_machine"].astype(bool)
    annotations["flagged"] = annotations["flagged"].astype(bool)
    annotations["duration_s"] = pd.to_numeric(annotations["duration_s"]).astype("float64")
    for name in ("created_at", "updated_at"):
        # SQLite stores naive UTC text, PostgreSQL returns aware datetimes: both end as UTC.
        annotations[name] = pd.to_datetime(annotations[name], utc=True, format="ISO8601")
    # Sorted here rather than in SQL: cheaper, and the same order whatever the database's
    # collation of names.
    annotations = annotations.sort_values(["item_id", "annotator"], kind="stable")
    annotations = annotations.reset_index(drop=True)

    adj_rows = session.exec(
        select(Adjudication, User.name)
        .join(User, col(User.id) == Adjudication.lead_id)
        .where(Adjudication.campaign_id == campaign.id, col(Adjudication.is_current).is_(True))
    ).all()
    adjudications = pd.DataFrame(
        [
            {
                "item_id": a.item_id,
                "adjudication_id": a.id,
                "lead": lead,
                "labels": a.labels,
                "band": a.band,
                "note": a.note,
                "guideline_gap": a.guideline_gap,
                "overrides_majority": a.overrides_majority,
                "method": a.method,
                "created_at": a.created_at,
            }
            for a, lead in adj_rows
        ],
        columns=[
            "item_id",
            "adjudication_id",
            "lead",
            "labels",
            "band",
            "note",
            "guideline_gap",
            "overrides_majority",
            "method",
            "created_at",
        ],
    )
    return LabelTable(
        campaign=campaign,
        schema=schema,
        items=items,
        annotations=annotations,
        adjudications=adjudications,
    )
