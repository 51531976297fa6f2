"""load_labels on SQLite and PostgreSQL: stored labels of every shape, as LabelTable cells."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import ADMIN, make_campaign, make_item, make_user
from release_helpers import items_by_id
from sqlalchemy import insert
from sqlmodel import Session
from table_helpers import assert_codes_match_cells

from annotate import storage
from annotate.errors import PermissionDenied
from annotate.schema import LabelSchema
from annotate.storage.models import Annotation, utcnow
from annotate.storage.queries import decode_json, label_cells, load_labels
from annotate.table import LabelTable

FIELDS = [("right_action", "single"), ("failure_categories", "multi"), ("rationale", "text")]


@pytest.mark.parametrize(
    ("stored", "cells"),
    [
        (
            '{"right_action": "refuse", "failure_categories": ["a", "b"], "rationale": "why"}',
            ("refuse", frozenset({"a", "b"}), "why"),
        ),
        ("{}", (None, None, None)),
        (
            '{"right_action": "", "failure_categories": [], "rationale": ""}',
            (None, frozenset(), None),
        ),
        (
            '{"right_action": null, "failure_categories": null, "rationale": null}',
            (None, None, None),
        ),
        # What SQL's json_extract gives for odd values: booleans 0/1, arrays as JSON text.
        ('{"right_action": true, "failure_categories": "nope", "rationale": 3}', (1, None, 3)),
        (
            '{"right_action": ["x"], "failure_categories": "[\\"a\\"]", "rationale": {"k": 1}}',
            ('["x"]', frozenset({"a"}), '{"k":1}'),
        ),
        ('{"failure_categories": {"a": 1}}', (None, None, None)),
        ('["not", "an", "object"]', (None, None, None)),
        ({"right_action": "answer"}, ("answer", None, None)),  # a driver that decodes JSON
    ],
)
def test_label_cells(stored: Any, cells: tuple[Any, ...]) -> None:
    assert label_cells(stored, FIELDS) == cells


@pytest.mark.parametrize(
    ("stored", "value"),
    [
        ('{"a": [1, "é"]}', {"a": [1, "é"]}),
        (b'{"a": 1}', {"a": 1}),
        ("null", None),
        # Beyond 64 bits: orjson would give a float; the standard library keeps the integer.
        ('{"n": 1180591620717411303424}', {"n": 2**70}),
        (
            '{"n": -18446744073709551617, "s": "12345678901234567890"}',
            {"n": -(2**64) - 1, "s": "12345678901234567890"},
        ),
        (None, None),
        ({"already": "decoded"}, {"already": "decoded"}),
    ],
)
def test_decode_json(stored: Any, value: Any) -> None:
    decoded = decode_json(stored)
    assert decoded == value
    assert [type(v) for v in (decoded or {}).values()] == [type(v) for v in (value or {}).values()]


def test_load_labels_reads_every_stored_shape(session: Session, schema: LabelSchema) -> None:
    campaign = make_campaign(session, schema, name="shapes")
    storage.import_items(
        session=session,
        actor=ADMIN,
        campaign=campaign,
        records=[make_item(external_id=e, meta={"e": e, "big": 2**70}) for e in ("x2", "x1")],
    )
    items = items_by_id(session, campaign)
    bea, al = make_user(session, "bea"), make_user(session, "al")
    judge = storage.add_user(session=session, actor=ADMIN, name="judge", is_machine=True)
    now = utcnow()
    stored = [
        (items["x1"], bea, {"right_action": "refuse", "failure_categories": ["over_refusal"]}),
        (items["x1"], al, {"right_action": "", "intent": "benign", "failure_categories": []}),
        (items["x1"], judge, {"right_action": "answer"}),
        (items["x2"], bea, {"right_action": "refuse", "failure_categories": ["over_refusal"]}),
        (items["x2"], al, {"failure_categories": "not a list", "confidence": True}),
    ]
    session.execute(
        insert(Annotation),
        [
            {
                "campaign_id": campaign.id,
                "item_id": item.id,
                "user_id": user.id,
                "labels": labels,
                "flagged": user is al,
                "overridden_rules": [],
                "origin": "app",
                "duration_s": 2.5 if user is bea else None,
                "created_at": now,
                "updated_at": now,
            }
            for item, user, labels in stored
        ],
    )
    session.flush()

    table = load_labels(session=session, actor=ADMIN, campaign=campaign, with_text=True)

    frame = table.annotations
    # Sorted by item, then annotator name.
    assert list(zip(frame["item_id"], frame["annotator"], strict=True)) == sorted(
        (item.id, user.name) for item, user, _ in stored
    )
    frame = frame.set_index(["item_id", "annotator"])
    x1, x2 = items["x1"].id, items["x2"].id
    assert frame.loc[(x1, "bea"), "right_action"] == "refuse"
    assert frame.loc[(x1, "bea"), "failure_categories"] == frozenset({"over_refusal"})
    assert frame.loc[(x1, "al"), "right_action"] is None
    assert frame.loc[(x1, "al"), "intent"] == "benign"
    assert frame.loc[(x1, "al"), "failure_categories"] == frozenset()
    assert frame.loc[(x2, "al"), "failure_categories"] is None
    assert frame.loc[(x2, "al"), "confidence"] == 1
    assert frame.loc[(x2, "al"), "rationale"] is None
    assert bool(frame.loc[(x1, "judge"), "is_machine"]) and not frame.loc[(x1, "al"), "is_machine"]
    assert frame["flagged"].tolist() == [a == "al" for _, a in frame.index]
    assert frame.loc[(x1, "bea"), "duration_s"] == 2.5
    assert pd.isna(frame.loc[(x1, "al"), "duration_s"])
    assert str(frame["created_at"].dt.tz) == "UTC"
    assert frame["created_at"].iloc[0].replace(tzinfo=None) == now.replace(tzinfo=None)
    assert table.items.index.tolist() == sorted([x1, x2])
    meta = table.items.loc[x1, "meta"]
    assert meta == {"e": "x1", "big": 2**70} and isinstance(meta["big"], int)
    assert table.items.loc[x1, "conversation"] is None
    assert table.items.loc[x1, "prompt"] == make_item().prompt
    assert_codes_match_cells(table)


def test_field_codes_of_a_new_frame_are_worked_out_afresh(
    session: Session, schema: LabelSchema
) -> None:
    table = LabelTable(
        campaign=make_campaign(session, schema, name="frames"),
        schema=schema,
        items=pd.DataFrame(),
        annotations=pd.DataFrame({"is_machine": [False] * 3, "intent": ["a", None, "b"]}),
    )
    cells = ["held", None, "unused", 1, True]
    table.hold_codes("intent", np.array([1, 0, 2, 0, 4]), cells, np.array([3, 0, 1]))
    codes, values = table.field_codes("intent")  # handed over for this frame
    assert codes.tolist() == [0, -1, 0] and values == ["held", "unused", 1]  # True is 1
    table.annotations = pd.DataFrame({"is_machine": [False] * 2, "intent": ["b", float("nan")]})
    codes, values = table.field_codes("intent")
    assert codes.tolist() == [0, -1] and values == ["b"]


def test_load_labels_of_an_empty_campaign(session: Session, schema: LabelSchema) -> None:
    campaign = make_campaign(session, schema, name="nothing")
    table = load_labels(session=session, actor=ADMIN, campaign=campaign, with_text=True)
    assert table.items.empty and table.annotations.empty and table.adjudications.empty
    assert {f.name for f in schema.fields} <= set(table.annotations.columns)


def test_load_labels_needs_a_lead(session: Session, schema: LabelSchema) -> None:
    campaign = make_campaign(session, schema, name="blind")
    with pytest.raises(PermissionDenied):
        load_labels(session=session, actor=make_user(session, "ann"), campaign=campaign)


def test_without_attributes_the_items_are_the_ids_of_a_full_load(
    engine: Any, schema: LabelSchema
) -> None:
    """Controls left out as in a full load; the annotations and adjudications are the same."""
    from annotate.storage import db
    from tests.control_helpers import control_campaign

    setup = control_campaign(engine, schema, real=6, controls=3)
    with db.session_scope(engine) as s:
        full = load_labels(session=s, actor=ADMIN, campaign=setup.campaign)
        ids = load_labels(session=s, actor=ADMIN, campaign=setup.campaign, with_attributes=False)
    assert len(full.items) == 6  # the three controls left out
    pd.testing.assert_frame_equal(ids.items, full.items[["item_id"]])
    pd.testing.assert_frame_equal(ids.annotations, full.annotations)
    pd.testing.assert_frame_equal(ids.adjudications, full.adjudications)
