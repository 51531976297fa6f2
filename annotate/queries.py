"""Read a campaign's labels out of the database as plain data for the pure modules.

The store never computes a statistic: agreement, bands, release selection and the lead's pages
all start from a `LabelTable` built here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
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


def _cell(kind: str, value: Any) -> Any:
    if kind == "multi":
        return frozenset(value) if isinstance(value, list) else None
    return value if value not in ("", None) else None


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
        item_cols += [Item.prompt, Item.conversation, Item.response, Item.meta]
    item_rows = session.exec(
        select(*item_cols).where(Item.campaign_id == campaign.id).order_by(col(Item.id))  # type: ignore[call-overload]
    ).all()
    names = [c.key for c in item_cols]
    names[0] = "item_id"
    items = pd.DataFrame.from_records(item_rows, columns=names).set_index("item_id", drop=False)

    rows = session.exec(
        select(  # type: ignore[call-overload]
            Annotation.item_id,
            Annotation.user_id,
            User.name,
            User.is_machine,
            Annotation.flagged,
            Annotation.duration_s,
            Annotation.created_at,
            Annotation.updated_at,
            Annotation.labels,
        )
        .join(User, col(User.id) == Annotation.user_id)
        .where(Annotation.campaign_id == campaign.id)
        .order_by(col(Annotation.item_id), col(User.name))
    ).all()
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
    data: dict[str, list[Any]] = {c: [] for c in base}
    fields = [(f.name, f.kind) for f in schema.fields]
    for name, _ in fields:
        data[name] = []
    for row in rows:
        for c, v in zip(base, row[:-1], strict=True):
            data[c].append(v)
        labels = row[-1] or {}
        for name, kind in fields:
            data[name].append(_cell(kind, labels.get(name)))
    annotations = pd.DataFrame(data)
    annotations["is_machine"] = annotations["is_machine"].astype(bool)

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
