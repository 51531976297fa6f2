"""A campaign's annotations as columns: read whole once, then only the rows that changed.

`load_labels` used to fetch every annotation with its labels JSON on each call (500,000 rows
of text at 100,000 items x 5 annotators, seconds). Here the annotations are held as columns,
one per schema field (dictionary codes and the distinct cells), and kept current from
`annotation.change_seq`, which a trigger stamps on every insert and update (migration 0009):

- SQLite writes one transaction at a time, so change_seq there is the campaign's largest + 1
  and a reader continues from the largest it saw, plus one;
- PostgreSQL writes concurrently, so change_seq is the writing transaction's id, and a reader
  continues from the oldest transaction still running when it read (`pg_snapshot_xmin`):
  anything that could still commit is read again, and rows are merged by annotation id, so
  reading one twice changes nothing.

The columns hold every annotation of the campaign, control answers included (flagged as
such): which items are controls is read fresh each time, so marking and unmarking a control
needs no change here. A copy of the columns is kept in the database (`label_snapshot`, Arrow
IPC with zstd, one row per campaign) so that a new process, such as `annotate agreement`,
reads one blob and the rows changed since, instead of every row. The schema stays data: the
snapshot is a blob whose layout names the fields it was built for, and is ignored when the
campaign's fields differ.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    cast,
    literal_column,
    text,
    type_coerce,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, select

from annotate.storage.controls import CONTROL_ORIGIN
from annotate.storage.db import raw_rows
from annotate.storage.models import Annotation

log = logging.getLogger(__name__)

# Bumped when the blob's columns change: an older snapshot is then ignored and rebuilt.
LAYOUT_VERSION = 1
# The snapshot is rewritten once the rows read after it exceed this many, or this share of it.
SNAPSHOT_SLACK_ROWS = 2_000
SNAPSHOT_SLACK_SHARE = 0.05
# How long writing the snapshot may wait for SQLite's write lock; it is skipped otherwise.
SNAPSHOT_LOCK_MS = 200
# Campaigns smaller than this read whole in milliseconds: no snapshot is stored for them.
SNAPSHOT_MIN_ROWS = 10_000

CHANGE_SEQ = literal_column("annotation.change_seq", BigInteger)

# Not a model: nothing but this module reads or writes it (migration 0009 creates it).
snapshot_table = Table(
    "label_snapshot",
    MetaData(),
    Column("campaign_id", Integer, primary_key=True),
    Column("bound", BigInteger, nullable=False),
    Column("layout", Text, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

Fields = tuple[tuple[str, str], ...]


def _key(value: Any) -> tuple[type, Any]:
    # 1, 1.0 and True are equal in a dict; a cell keeps its type.
    return (type(value), value)


@dataclass
class LabelColumns:
    """Every annotation of one campaign as columns, current as of `bound` (see module doc).

    Row order is arbitrary (`load_labels` sorts); `codes[name]` indexes `values[name]`, the
    distinct cells of that field as `label_cells` gives them. Timestamps are naive UTC
    datetime64[us].
    """

    fields: Fields
    bound: int
    ann_id: np.ndarray
    item_id: np.ndarray
    user_id: np.ndarray
    control_answer: np.ndarray
    flagged: np.ndarray
    duration_s: np.ndarray
    created_at: np.ndarray
    updated_at: np.ndarray
    flag_note: np.ndarray
    codes: dict[str, np.ndarray]
    values: dict[str, list[Any]]
    _index: dict[str, dict[tuple[type, Any], int]] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.ann_id)

    def index(self, name: str) -> dict[tuple[type, Any], int]:
        """value -> code of field `name` (built once, then extended as values are added)."""
        found = self._index.get(name)
        if found is None or len(found) != len(self.values[name]):
            found = {_key(v): i for i, v in enumerate(self.values[name])}
            self._index[name] = found
        return found


_ROW_COLUMNS = (
    "ann_id",
    "item_id",
    "user_id",
    "control_answer",
    "flagged",
    "duration_s",
    "created_at",
    "updated_at",
    "flag_note",
)


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _timestamps(values: list[Any]) -> pd.Series:
    # SQLite stores naive UTC text, PostgreSQL returns aware datetimes: both end as UTC.
    return pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")


def to_naive_us(values: list[Any]) -> np.ndarray:
    """Database timestamps as naive UTC datetime64[us] (what `timestamp_series` turns back)."""
    if not values:
        return np.empty(0, dtype="M8[us]")
    return _timestamps(values).dt.tz_convert(None).dt.as_unit("us").to_numpy()


def timestamp_series(values: np.ndarray) -> pd.Series:
    """The UTC timestamp column `load_labels` has always given (pandas' own unit when empty)."""
    if not len(values):
        return _timestamps([])
    return pd.Series(values).dt.tz_localize("UTC")


def read_rows(
    session: Session, campaign_id: int, fields: Fields, since: int | None = None
) -> LabelColumns:
    """The campaign's annotations stamped at or after `since` (all when None), as columns.

    Their `bound` is where the next read continues (see the module docstring).
    """
    from annotate.storage.queries import label_cells  # the one definition of a cell

    xmin = None
    if _is_postgres(session):
        xmin = (
            session.connection()
            .execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"))
            .scalar_one()
        )
    query = select(  # type: ignore[call-overload]
        Annotation.id,
        Annotation.item_id,
        Annotation.user_id,
        Annotation.origin,
        Annotation.flagged,
        Annotation.duration_s,
        type_coerce(Annotation.created_at, String),
        type_coerce(Annotation.updated_at, String),
        Annotation.flag_note,
        cast(Annotation.labels, Text),
        CHANGE_SEQ,
    ).where(Annotation.campaign_id == campaign_id)
    if since is not None:
        query = query.where(CHANGE_SEQ >= since)
    rows = raw_rows(session, query)
    cols = [[row[i] for row in rows] for i in range(11)]
    if xmin is not None:
        bound = max(int(xmin), since or 0)
    else:
        seen = [s for s in cols[10] if s is not None]
        bound = max(max(seen) + 1 if seen else 0, since or 0)
    codes, distinct = pd.factorize(pd.Series(cols[9], dtype=object))
    cells = [label_cells(t, fields) for t in distinct]
    field_codes: dict[str, np.ndarray] = {}
    field_values: dict[str, list[Any]] = {}
    for i, (name, _) in enumerate(fields):
        index: dict[tuple[type, Any], int] = {}
        values: list[Any] = []
        per_text = np.empty(len(cells), dtype=np.int32)
        for j, cell in enumerate(cells):
            code = index.setdefault(_key(cell[i]), len(values))
            if code == len(values):
                values.append(cell[i])
            per_text[j] = code
        field_codes[name] = per_text[codes] if len(codes) else np.empty(0, dtype=np.int32)
        field_values[name] = values
    return LabelColumns(
        fields=fields,
        bound=bound,
        ann_id=np.array(cols[0], dtype=np.int64),
        item_id=np.array(cols[1], dtype=np.int64),
        user_id=np.array(cols[2], dtype=np.int64),
        control_answer=np.array([o == CONTROL_ORIGIN for o in cols[3]], dtype=bool),
        flagged=np.array(cols[4], dtype=bool),
        duration_s=np.array(cols[5], dtype=np.float64),
        created_at=to_naive_us(cols[6]),
        updated_at=to_naive_us(cols[7]),
        flag_note=_objects(cols[8]),
        codes=field_codes,
        values=field_values,
    )


def _objects(values: Sequence[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def merge(base: LabelColumns, changed: LabelColumns) -> LabelColumns:
    """`base` with the rows of `changed` in place of their older versions (by annotation id).

    Neither input is modified. Merging the same rows twice gives the same columns.
    """
    keep = ~np.isin(base.ann_id, changed.ann_id)
    parts = {
        name: np.concatenate([getattr(base, name)[keep], getattr(changed, name)])
        for name in _ROW_COLUMNS
    }
    codes: dict[str, np.ndarray] = {}
    values: dict[str, list[Any]] = {}
    index: dict[str, dict[tuple[type, Any], int]] = {}
    for name, _ in base.fields:
        known = dict(base.index(name))
        merged = list(base.values[name])
        remap = np.empty(len(changed.values[name]), dtype=np.int32)
        for j, value in enumerate(changed.values[name]):
            code = known.setdefault(_key(value), len(merged))
            if code == len(merged):
                merged.append(value)
            remap[j] = code
        new = remap[changed.codes[name]] if len(changed.codes[name]) else changed.codes[name]
        codes[name] = np.concatenate([base.codes[name][keep], new.astype(np.int32)])
        values[name] = merged
        index[name] = known
    return LabelColumns(
        fields=base.fields,
        bound=max(base.bound, changed.bound),
        codes=codes,
        values=values,
        _index=index,
        **parts,
    )


# -- the snapshot in the database ------------------------------------------------------------


def _layout(fields: Fields) -> str:
    return json.dumps({"version": LAYOUT_VERSION, "fields": [list(f) for f in fields]})


def _encode_values(values: list[Any]) -> list[Any]:
    # Multi-choice cells are frozensets: tagged, since JSON has no sets.
    return [{"set": list(v)} if isinstance(v, frozenset) else v for v in values]


def _decode_values(values: list[Any]) -> list[Any]:
    return [frozenset(v["set"]) if isinstance(v, dict) else v for v in values]


def to_bytes(columns: LabelColumns) -> bytes:
    """The columns as Arrow IPC stream bytes (zstd); the distinct cells go in its metadata."""
    import pyarrow as pa

    arrays = {
        "ann_id": pa.array(columns.ann_id),
        "item_id": pa.array(columns.item_id),
        "user_id": pa.array(columns.user_id),
        "control_answer": pa.array(columns.control_answer),
        "flagged": pa.array(columns.flagged),
        "duration_s": pa.array(columns.duration_s),
        "created_at": pa.array(columns.created_at.view(np.int64)),
        "updated_at": pa.array(columns.updated_at.view(np.int64)),
        "flag_note": pa.array(list(columns.flag_note), type=pa.string()),
    }
    for n, (name, _) in enumerate(columns.fields):
        arrays[f"field{n}"] = pa.array(columns.codes[name])
    # Standard-library JSON: exact for integers of any size and floats, unlike faster ones.
    meta = {
        "values": json.dumps([_encode_values(columns.values[name]) for name, _ in columns.fields])
    }
    table = pa.table(arrays).replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def from_bytes(data: bytes, fields: Fields, bound: int) -> LabelColumns:
    """The columns `to_bytes` wrote."""
    import pyarrow as pa

    table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    meta = table.schema.metadata or {}
    values = [_decode_values(v) for v in json.loads(meta[b"values"])]

    def num(name: str) -> np.ndarray:
        return table.column(name).to_numpy()

    return LabelColumns(
        fields=fields,
        bound=bound,
        ann_id=num("ann_id").astype(np.int64),
        item_id=num("item_id").astype(np.int64),
        user_id=num("user_id").astype(np.int64),
        control_answer=num("control_answer").astype(bool),
        flagged=num("flagged").astype(bool),
        duration_s=num("duration_s").astype(np.float64),
        created_at=num("created_at").astype(np.int64).view("M8[us]"),
        updated_at=num("updated_at").astype(np.int64).view("M8[us]"),
        flag_note=table.column("flag_note").to_numpy(zero_copy_only=False).astype(object),
        codes={name: num(f"field{n}").astype(np.int32) for n, (name, _) in enumerate(fields)},
        values={name: values[n] for n, (name, _) in enumerate(fields)},
    )


def read_snapshot(session: Session, campaign_id: int, fields: Fields) -> LabelColumns | None:
    """The campaign's stored columns, or None (none stored, or built for other fields)."""
    t = snapshot_table.c
    row = (
        session.connection()
        .execute(select(t.bound, t.layout, t.data).where(t.campaign_id == campaign_id))
        .first()
    )
    if row is None or row.layout != _layout(fields):
        return None
    return from_bytes(bytes(row.data), fields, int(row.bound))


def write_snapshot(engine: Engine, campaign_id: int, columns: LabelColumns) -> bool:
    """Store `columns` as the campaign's snapshot, in a transaction of its own.

    Best effort: a cache. When SQLite's write lock is busy, the database is in memory (one
    connection, the caller's transaction open on it) or the write fails, nothing is stored
    and False is returned; the next load reads the changed rows instead.
    """
    if isinstance(engine.pool, StaticPool):
        return False
    row = {
        "campaign_id": campaign_id,
        "bound": columns.bound,
        "layout": _layout(columns.fields),
        "rows": len(columns),
        "data": to_bytes(columns),
        "created_at": datetime.now(UTC),
    }
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    upsert = insert(snapshot_table).values(row)
    upsert = upsert.on_conflict_do_update(
        index_elements=["campaign_id"], set_={k: v for k, v in row.items() if k != "campaign_id"}
    )
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(sqlite_immediate=True, sqlite_busy_ms=SNAPSHOT_LOCK_MS)
            with conn.begin():
                conn.execute(upsert)
    except DBAPIError as exc:
        log.info("label snapshot of campaign %s not stored: %s", campaign_id, exc)
        return False
    return True


def current_columns(
    session: Session, campaign_id: int, fields: Fields, previous: LabelColumns | None = None
) -> LabelColumns:
    """The campaign's annotations as columns, current as of now.

    From `previous` (columns this process holds) or else the stored snapshot, plus the rows
    changed since; read whole when there is neither. The snapshot is rewritten (best effort,
    see `write_snapshot`) when it is missing or too many rows were read after it.
    """
    base = previous if previous is not None and previous.fields == fields else None
    stored = False
    if base is None:
        base = read_snapshot(session, campaign_id, fields)
        stored = base is not None
    if base is None:
        columns = read_rows(session, campaign_id, fields)
        changed = len(columns)
    else:
        delta = read_rows(session, campaign_id, fields, since=base.bound)
        columns = merge(base, delta) if len(delta) else _rebound(base, delta.bound)
        changed = len(delta)
    stale = not stored or changed > _slack(len(columns))
    if previous is None and stale and len(columns) >= SNAPSHOT_MIN_ROWS and not _wrote(session):
        engine = session.get_bind()
        if isinstance(engine, Engine):
            write_snapshot(engine, campaign_id, columns)
    return columns


def _wrote(session: Session) -> bool:
    """Whether the session's transaction has written (its reads may then never commit).

    On SQLite such a transaction holds the write lock, so `write_snapshot` cannot store
    anything until it ends; PostgreSQL says whether the transaction has an id yet.
    """
    if not _is_postgres(session):
        return False
    return (
        session.connection().execute(text("SELECT pg_current_xact_id_if_assigned()")).scalar()
        is not None
    )


def _slack(rows: int) -> int:
    return max(SNAPSHOT_SLACK_ROWS, int(rows * SNAPSHOT_SLACK_SHARE))


def _rebound(columns: LabelColumns, bound: int) -> LabelColumns:
    if bound == columns.bound:
        return columns
    out = LabelColumns(**{f: getattr(columns, f) for f in columns.__dataclass_fields__})
    out.bound = max(columns.bound, bound)
    return out
