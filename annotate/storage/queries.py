"""Read a campaign's labels out of the database as plain data for the pure modules.

The store never computes a statistic: agreement, bands, release selection and the lead's pages
all start from a `LabelTable` built here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import Text, cast, func
from sqlmodel import Session, col, select

from annotate.accounts.auth import require_role
from annotate.storage import label_columns
from annotate.storage.controls import control_ids, not_control
from annotate.storage.db import raw_rows
from annotate.storage.label_columns import LabelColumns
from annotate.storage.models import Adjudication, Campaign, Item, User
from annotate.storage.schemas import campaign_schema
from annotate.table import LabelTable


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows transposed into `width` column lists (three times faster than zip(*rows))."""
    return [[row[i] for row in rows] for i in range(width)]


# Integers beyond 64 bits have 20 digits or more; orjson would read them as floats.
_LONG_NUMBER = re.compile(r"\d{20}")


def decode_json(value: Any) -> Any:
    """A JSON column's value: text (as SQLite and a text cast return it) decoded, else as is.

    orjson decodes; text with a run of 20 digits or more goes through the standard library,
    which keeps integers beyond 64 bits exact (orjson turns them into floats).
    """
    if isinstance(value, bytes):
        value = value.decode()
    if not isinstance(value, str):
        return value  # a driver that decodes JSON itself
    return json.loads(value) if _LONG_NUMBER.search(value) else orjson.loads(value)


def _selection(value: Any) -> frozenset[str] | None:
    """A multi-choice value: a frozenset for a list (or a JSON list as text), else None."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return frozenset(value) if isinstance(value, list) else None


def _scalar(value: Any) -> Any:
    """A single-choice or text value; "" and null are None, other values as SQL's
    json_extract gives them (booleans as 0/1, arrays and objects as compact JSON text)."""
    if value is None or value == "" or isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return value


def label_cells(text: Any, fields: Sequence[tuple[str, str]]) -> tuple[Any, ...]:
    """One stored annotation's labels (JSON text or dict) as LabelTable cells, field by field.

    Multi-choice fields give a frozenset (None when the value is not a list), the others
    their value with "" as None; a missing field, or labels that are not an object, give None.
    """
    labels = decode_json(text)
    if not isinstance(labels, dict):
        labels = {}
    return tuple(
        _selection(labels.get(name)) if kind == "multi" else _scalar(labels.get(name))
        for name, kind in fields
    )


@dataclass
class LabelState:
    """What `load_labels` read for one campaign, kept by a caller to refresh it cheaply.

    `columns` are the annotations as of their bound; `items` the items frame (without text)
    and `items_key` what it was read for (item count, newest item id, control ids).
    """

    columns: LabelColumns
    items: pd.DataFrame
    items_key: tuple[Any, ...]


def load_labels(
    *,
    session: Session,
    actor: User,
    campaign: Campaign,
    with_text: bool = False,
    with_attributes: bool = True,
) -> LabelTable:
    """Everyone's labels in `campaign`; leads and admins only (labeling is blind).

    Control items and control answers are left out (see `annotate.storage.controls`). The
    annotations come from the campaign's column snapshot and the rows changed since
    (`annotate.storage.label_columns`). `with_attributes=False` leaves the items frame with
    its item_id column only, for a caller that needs no item attributes (reading them was
    half of the load at 100,000 items); `with_text` adds the items' text.
    """
    table, _ = _load(
        session=session,
        actor=actor,
        campaign=campaign,
        with_text=with_text,
        with_attributes=with_attributes,
    )
    return table


def refresh_labels(
    *,
    session: Session,
    actor: User,
    campaign: Campaign,
    previous: LabelState | None = None,
) -> tuple[LabelTable, LabelState]:
    """`load_labels(campaign)` and the state to pass back next time, when only the labels
    changed since `previous` are read (and the items, if items were added or controls marked).

    The table is the same, frame for frame and row for row, as a full `load_labels`.
    """
    return _load(session=session, actor=actor, campaign=campaign, previous=previous)


def _load(
    *,
    session: Session,
    actor: User,
    campaign: Campaign,
    with_text: bool = False,
    with_attributes: bool = True,
    previous: LabelState | None = None,
) -> tuple[LabelTable, LabelState]:
    require_role(actor, "lead", "read other annotators' labels", session=session)
    schema = campaign_schema(session=session, campaign=campaign)
    assert campaign.id is not None
    controls = control_ids(session, campaign.id)
    count, newest = session.exec(
        select(func.count(), func.max(Item.id)).where(Item.campaign_id == campaign.id)
    ).one()
    items_key = (count, newest, tuple(sorted(controls)))
    if previous is not None and previous.items_key == items_key and not with_text:
        items = previous.items
    else:
        items = _items(session, campaign, with_text, controls, with_attributes)
    fields = tuple((f.name, f.kind) for f in schema.fields)
    columns = label_columns.current_columns(
        session, campaign.id, fields, previous.columns if previous is not None else None
    )
    annotations, take = _annotations(session, columns, controls)
    table = LabelTable(
        campaign=campaign,
        schema=schema,
        items=items,
        annotations=annotations,
        adjudications=_adjudications(session, campaign),
    )
    for name, _ in fields:  # the codes held already: the figures need not hash every cell
        table.hold_codes(name, columns.codes[name], columns.values[name], take)
    return table, LabelState(columns=columns, items=items, items_key=items_key)


def _items(
    session: Session,
    campaign: Campaign,
    with_text: bool,
    controls: set[int],
    with_attributes: bool = True,
) -> pd.DataFrame:
    item_cols: list[Any] = [Item.id]
    if with_attributes:
        item_cols += [Item.external_id, Item.model, Item.category, Item.group_id, Item.source]
    if with_text:
        # JSON columns come back as text (cast, so that psycopg leaves them alone) and are
        # decoded by decode_json below: SQLAlchemy's per-row json.loads was a second of a
        # 100,000-item release.
        item_cols += [
            Item.prompt,
            cast(Item.conversation, Text).label("conversation"),
            Item.response,
            cast(Item.meta, Text).label("meta"),
        ]
    names = [c.key for c in item_cols]
    names[0] = "item_id"
    # Sorted by id here: ORDER BY made SQLite sort the whole rows, text and all, on disk.
    # Controls (few, read already) are left out here: NOT EXISTS per row was a tenth of a second.
    item_rows = raw_rows(session, select(*item_cols).where(Item.campaign_id == campaign.id))
    if controls:
        item_rows = [row for row in item_rows if row[0] not in controls]
    item_rows.sort(key=itemgetter(0))
    item_data = dict(zip(names, _columns(item_rows, len(names)), strict=True))
    del item_rows
    text_data: dict[str, pd.Series] = {}
    if with_text:
        # Only the release reads these: object columns, as select_gold wants them (pandas'
        # string dtype would copy 100 MB of text into Arrow and back).
        conversations = [decode_json(v) for v in item_data.pop("conversation")]
        metas = [decode_json(v) for v in item_data.pop("meta")]
        text_data = {
            "prompt": pd.Series(item_data.pop("prompt"), dtype=object),
            "conversation": pd.Series(conversations, dtype=object),
            "response": pd.Series(item_data.pop("response"), dtype=object),
            "meta": pd.Series([v if v is not None else {} for v in metas], dtype=object),
        }
    items = pd.DataFrame(item_data)
    for name in ("prompt", "conversation", "response", "meta"):
        if name in text_data:
            items[name] = text_data[name]
    items["item_id"] = items["item_id"].astype("int64")
    return items.set_index("item_id", drop=False)


def _annotations(
    session: Session, columns: LabelColumns, controls: set[int]
) -> tuple[pd.DataFrame, np.ndarray]:
    """The annotation frame of `LabelTable` from the columns: control items and control
    answers left out, sorted by item, then annotator name; and the column rows it took."""
    keep = ~columns.control_answer
    if controls:
        keep &= ~np.isin(columns.item_id, np.fromiter(controls, dtype=np.int64))
    (rows,) = np.nonzero(keep)
    user_ids = columns.user_id[rows]
    wanted = [int(u) for u in np.unique(user_ids)]
    users = {
        user_id: (name, bool(is_machine))
        for user_id, name, is_machine in raw_rows(
            session,
            select(User.id, User.name, User.is_machine).where(col(User.id).in_(wanted)),
        )
    }
    # Sorted by item, then annotator name (names are unique): here rather than in SQL, the
    # same order whatever the database's collation. Rows of unknown users are left out, as
    # a join would leave them out.
    ranked = sorted(users, key=lambda u: users[u][0])
    rank = {u: r for r, u in enumerate(ranked)}
    by_user = np.full(len(wanted), -1, dtype=np.int64)
    for i, u in enumerate(wanted):
        by_user[i] = rank.get(u, -1)
    ranks = by_user[np.searchsorted(wanted, user_ids)] if len(rows) else user_ids
    order = np.lexsort((ranks, columns.item_id[rows]))
    order = order[ranks[order] >= 0]
    take = rows[order]
    # Names and flags of the few users, taken row by row (the names as pandas would type a
    # column of them).
    by_rank = ranks[order]
    annotator: Any = (
        pd.Series([users[u][0] for u in ranked]).array.take(by_rank) if len(order) else []
    )
    data: dict[str, Any] = {
        "item_id": columns.item_id[take],
        "user_id": columns.user_id[take],
        "annotator": annotator,
        "is_machine": np.array([users[u][1] for u in ranked], dtype=bool)[by_rank],
        "flagged": columns.flagged[take],
        "duration_s": columns.duration_s[take],
        "created_at": label_columns.timestamp_series(columns.created_at[take]),
        "updated_at": label_columns.timestamp_series(columns.updated_at[take]),
        "flag_note": pd.Series(columns.flag_note[take], dtype=object),
    }
    for name, _ in columns.fields:
        values = np.empty(len(columns.values[name]), dtype=object)
        values[:] = columns.values[name]
        data[name] = pd.Series(values[columns.codes[name][take]], dtype=object)
    # Not copied, so not stacked into one block of object columns either (every array here is
    # new): that copy was half a second at 500,000 rows.
    return pd.DataFrame(data, copy=False), take


def _adjudications(session: Session, campaign: Campaign) -> pd.DataFrame:
    adj_rows = session.exec(
        select(Adjudication, User.name)
        .join(User, col(User.id) == Adjudication.lead_id)
        .where(
            Adjudication.campaign_id == campaign.id,
            col(Adjudication.is_current).is_(True),
            not_control(Adjudication.item_id),
        )
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
                "disagreement_cause": a.disagreement_cause,
                "overridden_rules": list(a.overridden_rules or []),
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
            "disagreement_cause",
            "overridden_rules",
            "created_at",
        ],
    )
    return adjudications
