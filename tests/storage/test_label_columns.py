"""Labels read incrementally (held columns, stored snapshot + changed rows) equal a full read.

A property test over random sequences of submits, edits, adjudications, re-adjudications,
imports of items and labels, and control marks, on SQLite and PostgreSQL: after every step
the table refreshed from the previous state (the lead's warm labels) and the table loaded
from the stored snapshot equal the table read whole, frame for frame and row for row, and so
does the agreement report computed from them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
import pytest
from conftest import ADMIN, full_labels, make_campaign, make_item, make_user
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import select
from table_helpers import assert_codes_match_cells

from annotate import storage
from annotate.intake.labels import LabelRow
from annotate.review.adjudication import adjudicate
from annotate.review.controls import mark_controls, unmark_controls
from annotate.review.figures import agreement_report
from annotate.schema import LabelSchema
from annotate.storage import db, label_columns
from annotate.storage.models import Adjudication, Campaign, Item, User
from annotate.storage.queries import LabelState, load_labels, refresh_labels
from annotate.table import LabelTable

ANNOTATORS = ("ann-a", "ann-b", "ann-c")
ACTIONS = ("answer", "refuse", "clarify")
_names = itertools.count()

step = st.one_of(
    st.tuples(
        st.just("submit"),
        st.integers(0, 2),  # annotator
        st.integers(0, 7),  # item (modulo the items there are)
        st.sampled_from(ACTIONS),
        st.booleans(),  # flagged
    ),
    st.tuples(st.just("adjudicate"), st.integers(0, 7), st.sampled_from(ACTIONS)),
    st.tuples(st.just("import_items"), st.integers(1, 3)),
    st.tuples(st.just("import_labels"), st.integers(0, 7), st.sampled_from(ACTIONS)),
    st.tuples(st.just("control"), st.integers(0, 7)),
    st.tuples(st.just("snapshot")),
)


def _frames(table: LabelTable) -> list[pd.DataFrame]:
    return [table.items, table.annotations, table.adjudications]


def _assert_same(got: LabelTable, want: LabelTable) -> None:
    for a, b in zip(_frames(got), _frames(want), strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)


@contextmanager
def _full_read(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """load_labels as if no snapshot were stored, and storing none."""
    with monkeypatch.context() as m:
        m.setattr(label_columns, "read_snapshot", lambda *a: None)
        m.setattr(label_columns, "write_snapshot", lambda *a: False)
        yield


def _apply(engine: Engine, schema: LabelSchema, campaign_id: int, move: tuple[Any, ...]) -> None:
    kind = move[0]
    with db.session_scope(engine) as s:
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None
        items = s.exec(select(Item).where(Item.campaign_id == campaign_id).order_by(Item.id)).all()
        lead = s.exec(select(User).where(User.name == "lena")).one()
        if kind == "submit":
            _, who, n, action, flagged = move
            user = s.exec(select(User).where(User.name == ANNOTATORS[who])).one()
            labels = full_labels(right_action=action, confidence="low" if flagged else "high")
            storage.save_annotation(
                session=s,
                user=user,
                item=items[n % len(items)],
                labels=schema.normalize_labels(labels),
                flagged=flagged,
                flag_note="unsure" if flagged else None,
                duration_s=float(n),
            )
        elif kind == "adjudicate":
            _, n, action = move
            adjudicate(
                session=s,
                actor=lead,
                item_id=items[n % len(items)].id,  # type: ignore[arg-type]
                labels=schema.normalize_labels(full_labels(right_action=action)),
                note="settled",
            )
        elif kind == "import_items":
            records = [make_item(external_id=f"x{next(_names)}") for _ in range(move[1])]
            storage.import_items(session=s, actor=ADMIN, campaign=campaign, records=records)
        elif kind == "import_labels":
            _, n, action = move
            item = items[n % len(items)]
            who = f"imp{next(_names)}"
            rows = [
                LabelRow(line=1, item_id=item.external_id, annotator=who, field=f, value=v)
                for f, v in (("right_action", action), ("observed_action", "answer"))
            ]
            storage.import_labels(session=s, actor=ADMIN, campaign=campaign, rows=rows)
        elif kind == "control":
            item = items[move[1] % len(items)]
            marked = storage_controls(s, campaign_id)
            if item.id in marked:
                unmark_controls(
                    session=s, actor=lead, campaign=campaign, external_ids=[item.external_id]
                )
            elif s.exec(select(Adjudication).where(Adjudication.item_id == item.id)).first():
                mark_controls(
                    session=s, actor=lead, campaign=campaign, external_ids=[item.external_id]
                )
        elif kind == "snapshot":
            table_cols = label_columns.read_rows(s, campaign_id, _fields(schema))
            label_columns.write_snapshot(engine, campaign_id, table_cols)


def storage_controls(session: Any, campaign_id: int) -> set[int]:
    from annotate.storage.controls import control_ids

    return control_ids(session, campaign_id)


def _fields(schema: LabelSchema) -> tuple[tuple[str, str], ...]:
    return tuple((f.name, f.kind) for f in schema.fields)


@pytest.fixture
def people(engine: Engine) -> None:
    with db.session_scope(engine) as s:
        for name in ANNOTATORS:
            make_user(s, name)
        make_user(s, "lena", role="lead")


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(moves=st.lists(step, min_size=1, max_size=8))
def test_incremental_labels_equal_a_full_read(
    engine: Engine,
    schema: LabelSchema,
    people: None,
    monkeypatch: pytest.MonkeyPatch,
    moves: list[tuple[Any, ...]],
) -> None:
    # Every campaign stores its snapshot, however small (the default waits for 10,000 rows).
    monkeypatch.setattr(label_columns, "SNAPSHOT_MIN_ROWS", 0)
    monkeypatch.setattr(label_columns, "SNAPSHOT_SLACK_ROWS", 2)
    with db.session_scope(engine) as s:
        campaign = make_campaign(s, schema, name=f"p{next(_names)}", overlap=3)
        records = [make_item(external_id=f"i{n}") for n in range(4)]
        storage.import_items(session=s, actor=ADMIN, campaign=campaign, records=records)
        campaign_id = campaign.id
        lead = s.exec(select(User).where(User.name == "lena")).one()
    assert campaign_id is not None
    state: LabelState | None = None
    for move in [("snapshot",), *moves]:
        _apply(engine, schema, campaign_id, move)
        with db.session_scope(engine) as s:
            campaign = s.get(Campaign, campaign_id)
            assert campaign is not None
            held, state = refresh_labels(session=s, actor=lead, campaign=campaign, previous=state)
            stored = load_labels(session=s, actor=lead, campaign=campaign)
            with _full_read(monkeypatch):
                full = load_labels(session=s, actor=lead, campaign=campaign)
        _assert_same(held, full)
        _assert_same(stored, full)
        assert_codes_match_cells(held)
        assert_codes_match_cells(stored)
    report = agreement_report(full, actor=lead, n_resamples=0).to_json_dict()
    assert agreement_report(held, actor=lead, n_resamples=0).to_json_dict() == report


def test_a_write_stamps_change_seq_in_commit_order(engine: Engine, schema: LabelSchema) -> None:
    """Inserts and edits both move an annotation past what a reader has seen."""
    with db.session_scope(engine) as s:
        campaign = make_campaign(s, schema, name="seq")
        storage.import_items(session=s, actor=ADMIN, campaign=campaign, records=[make_item()])
        user = make_user(s, "ann")
        item = s.exec(select(Item)).one()
        storage.save_annotation(
            session=s, user=user, item=item, labels=schema.normalize_labels(full_labels())
        )
        campaign_id = campaign.id
    assert campaign_id is not None
    with db.session_scope(engine) as s:
        seen = label_columns.read_rows(s, campaign_id, _fields(schema))
        assert len(seen) == 1
        assert len(label_columns.read_rows(s, campaign_id, _fields(schema), since=seen.bound)) in (
            0,
            1,  # PostgreSQL reads again from the oldest running transaction: idempotent
        )
    with db.session_scope(engine) as s:
        user = s.exec(select(User).where(User.name == "ann")).one()
        item = s.exec(select(Item)).one()
        storage.save_annotation(
            session=s,
            user=user,
            item=item,
            labels=schema.normalize_labels(full_labels(right_action="refuse")),
        )
    with db.session_scope(engine) as s:
        changed = label_columns.read_rows(s, campaign_id, _fields(schema), since=seen.bound)
        assert len(changed) == 1
        merged = label_columns.merge(seen, changed)
        assert len(merged) == 1 and merged.values["right_action"][
            merged.codes["right_action"][0]
        ] == ("refuse")
        stamps = s.connection().execute(text("SELECT change_seq FROM annotation")).scalars().all()
        assert all(v is not None for v in stamps)


def test_the_snapshot_round_trips_every_kind_of_cell(schema: LabelSchema) -> None:
    """Bytes out, bytes in: sets, numbers of any size, text, None and empty frames."""
    import numpy as np

    fields = (("a", "single"), ("b", "multi"), ("c", "text"))
    values = {
        "a": [None, "x", 1, 2.5, 10**30, True],
        "b": [frozenset(), frozenset({"p", "q"}), None],
        "c": ["free text", None, '{"k": 1}'],
    }
    cols = label_columns.LabelColumns(
        fields=fields,
        bound=7,
        ann_id=np.array([1, 2], dtype=np.int64),
        item_id=np.array([3, 4], dtype=np.int64),
        user_id=np.array([5, 6], dtype=np.int64),
        control_answer=np.array([False, True]),
        flagged=np.array([True, False]),
        duration_s=np.array([1.5, np.nan]),
        created_at=np.array(["2026-01-01T00:00:00.123456", "2026-01-02"], dtype="M8[us]"),
        updated_at=np.array(["2026-01-01", "2026-01-03"], dtype="M8[us]"),
        flag_note=np.array(["why", None], dtype=object),
        codes={"a": np.array([4, 5], dtype=np.int32), "b": np.array([1, 0], dtype=np.int32)}
        | {"c": np.array([0, 2], dtype=np.int32)},
        values=values,
    )
    back = label_columns.from_bytes(label_columns.to_bytes(cols), fields, 7)
    for name in ("ann_id", "item_id", "user_id", "control_answer", "flagged", "created_at"):
        assert np.array_equal(getattr(back, name), getattr(cols, name)), name
    assert np.array_equal(back.duration_s, cols.duration_s, equal_nan=True)
    assert list(back.flag_note) == ["why", None]
    assert back.values == values
    assert [type(v) for v in back.values["a"]] == [type(v) for v in values["a"]]
