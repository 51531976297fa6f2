"""Invariants of releases under hypothesis: files read back equal their input; bands are sound."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from conftest import DEFAULT_SCHEMA_PATH
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from release_helpers import write_gold

from annotate.release import formats
from annotate.release.record import GoldRecord, record_fields, record_row
from annotate.release.selection import InclusionPolicy, select_gold
from annotate.schema import load_schema
from annotate.stats import bands
from annotate.storage.models import Campaign
from annotate.table import LabelTable

SCHEMA = load_schema(DEFAULT_SCHEMA_PATH)
ACTIONS = SCHEMA.action_labels
RIGHT = SCHEMA.right_actions
# What the database can hold: no NUL, no lone surrogates.
TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
) | st.sampled_from(["=1+1", "-2", "@A1", "a\x85b", "a\u2028b", "a\r\nb", '"', "\\", "é"])
MAYBE = st.none() | TEXT
# Cells a spreadsheet would run, and cells the csv module quotes.
CELL_TEXT = TEXT | st.sampled_from(["+1", "\tx", "\rx", "=", "a,b", 'say "hi"', "x\ny", ""])


@st.composite
def band_for(draw: st.DrawFn, right: str) -> dict[str, float]:
    others = draw(st.dictionaries(st.sampled_from(ACTIONS), st.floats(0.05, 0.95), max_size=4))
    band = {a: round(c, 4) for a, c in others.items() if a != right}
    band[right] = 1.0
    return {a: band[a] for a in ACTIONS if a in band}


@st.composite
def gold_records(draw: st.DrawFn) -> GoldRecord:
    right = draw(st.sampled_from(RIGHT))
    conversation = draw(
        st.none()
        | st.lists(
            st.fixed_dictionaries(
                {"role": st.sampled_from(["user", "assistant", "system"]), "content": TEXT}
            ),
            min_size=1,
            max_size=3,
        )
    )
    soft = {
        f.name: {v: draw(st.floats(0, 1).map(lambda x: round(x, 6))) for v in f.values}
        for f in SCHEMA.choice_fields
    }
    meta = draw(
        st.dictionaries(
            st.text(min_size=1, max_size=8),
            st.none() | st.booleans() | st.integers(-5, 5) | TEXT,
            max_size=3,
        )
    )
    failures = SCHEMA.field("failure_categories").values
    return GoldRecord(
        id=draw(st.text(min_size=1, max_size=12)),
        prompt=None if conversation else draw(TEXT),
        conversation=conversation,
        response=draw(TEXT),
        model=draw(MAYBE),
        source=draw(MAYBE),
        category=draw(MAYBE),
        group=draw(MAYBE),
        right_action=right,
        band=draw(band_for(right)),
        intent=draw(st.none() | st.sampled_from(["benign", "ambiguous", "harmful"])),
        epistemic_status=draw(st.none() | st.sampled_from(["answerable", "uncertain"])),
        observed_action=draw(st.none() | st.sampled_from(ACTIONS)),
        failure_categories=draw(st.none() | st.just([c for c in failures if draw(st.booleans())])),
        soft_labels=soft,
        n_annotators=draw(st.integers(0, 9)),
        disagreement=draw(st.floats(0, 1).map(lambda x: round(x, 6))),
        adjudicated=draw(st.booleans()),
        adjudicated_by=draw(MAYBE),
        adjudication_note=draw(MAYBE),
        guideline_gap=draw(st.booleans()),
        metadata=meta,
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(gold_records(), min_size=1, max_size=6, unique_by=lambda r: r.id))
def test_a_release_read_back_equals_its_input(records: list[GoldRecord]) -> None:
    expected = sorted(records, key=lambda r: r.id)
    with tempfile.TemporaryDirectory() as tmp:
        release = write_gold(Path(tmp), SCHEMA, records)
        assert formats.load_records(release) == expected
        assert formats.read_parquet_records(release / "gold.parquet") == [
            record_row(r, SCHEMA) for r in expected
        ]
        frame = pd.read_parquet(release / "gold.parquet")
        assert frame["id"].tolist() == [r.id for r in expected]


def csv_module_bytes(rows: list[dict[str, Any]]) -> bytes:
    """gold.csv as the csv module writes it, cell by cell (the reference for write_csv)."""
    columns = record_fields(SCHEMA)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        cells = []
        for name in columns:
            value = row[name]
            if name in ("conversation", "band", "soft_labels", "metadata"):
                text = "" if value is None else formats._json(value)
            elif name == "failure_categories":
                text = "" if value is None else ";".join(value) if value else "[]"
            elif name in ("adjudicated", "guideline_gap"):
                text = "true" if value else "false"
            else:
                text = "" if value is None else str(value)
            cells.append(formats.neutralize_cell(text))
        writer.writerow(cells)
    return out.getvalue().encode("utf-8")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(gold_records(), max_size=7),
    st.lists(CELL_TEXT, min_size=1, max_size=7),
    st.integers(1, 3),
)
def test_csv_is_what_the_csv_module_writes(
    records: list[GoldRecord], texts: list[str], block_rows: int
) -> None:
    rows = [record_row(r, SCHEMA) for r in records]
    for row, text in zip(rows, texts, strict=False):
        row["prompt"] = row["adjudication_note"] = text
    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch.object(formats, "_CSV_BLOCK_ROWS", block_rows),
    ):
        path = Path(tmp) / "gold.csv"
        formats.write_csv(path, rows, SCHEMA)
        assert path.read_bytes() == csv_module_bytes(rows)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(gold_records(), max_size=6))
def test_parquet_holds_the_table_from_pylist_would_build(records: list[GoldRecord]) -> None:
    rows = [record_row(r, SCHEMA) for r in records]
    flat = [{**row, "metadata": formats._json_sorted(row["metadata"])} for row in rows]
    expected = pa.Table.from_pylist(flat, schema=formats.parquet_schema(SCHEMA))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gold.parquet"
        formats.write_parquet(path, rows, SCHEMA)
        assert pq.read_table(path).equals(expected)


@st.composite
def label_tables(draw: st.DrawFn) -> tuple[LabelTable, int]:
    """A LabelTable as queries.load_labels builds it, without a database."""
    n_items = draw(st.integers(1, 6))
    annotators = ["a", "b", "c", "d"]
    items, rows, adjudications = [], [], []
    for item_id in range(1, n_items + 1):
        items.append(
            {
                "item_id": item_id,
                "external_id": f"x{item_id}",
                "model": None,
                "category": None,
                "group_id": None,
                "source": None,
                "prompt": "p",
                "conversation": None,
                "response": "r",
                "meta": {},
            }
        )
        for who in draw(st.lists(st.sampled_from(annotators), unique=True, max_size=4)):
            row: dict[str, Any] = {
                "item_id": item_id,
                "user_id": annotators.index(who) + 1,
                "annotator": who,
                "is_machine": False,
                "flagged": False,
                "duration_s": None,
                "created_at": None,
                "updated_at": None,
            }
            for f in SCHEMA.fields:
                if f.kind == "multi":
                    row[f.name] = frozenset(draw(st.lists(st.sampled_from(f.values), max_size=2)))
                elif f.kind == "single":
                    row[f.name] = draw(st.none() | st.sampled_from(f.values))
                else:
                    row[f.name] = None
            rows.append(row)
        if draw(st.booleans()):
            right = draw(st.sampled_from(RIGHT))
            band = draw(st.just({}) | band_for(right))
            adjudications.append(
                {
                    "item_id": item_id,
                    "adjudication_id": item_id,
                    "lead": "lena",
                    "labels": {"right_action": right},
                    "band": band,
                    "note": None,
                    "guideline_gap": False,
                    "overrides_majority": False,
                    "method": "manual",
                    "created_at": None,
                }
            )
    overlap = draw(st.integers(1, 4))
    columns = ["item_id", "user_id", "annotator", "is_machine", "flagged", "duration_s"]
    columns += ["created_at", "updated_at", *(f.name for f in SCHEMA.fields)]
    annotations = pd.DataFrame(rows, columns=columns)
    annotations["is_machine"] = annotations["is_machine"].astype(bool)  # as load_labels does
    table = LabelTable(
        campaign=Campaign(name="fuzz", schema_id=1, overlap=overlap),
        schema=SCHEMA,
        items=pd.DataFrame(items).set_index("item_id", drop=False),
        annotations=annotations,
        adjudications=pd.DataFrame(
            adjudications,
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
        ),
    )
    return table, n_items


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    label_tables(),
    st.sampled_from(["unanimous", "majority"]),
    st.floats(0.05, 1.0),
)
def test_bands_always_contain_the_right_action_at_1(
    generated: tuple[LabelTable, int], accept: str, split_credit: float
) -> None:
    table, n_items = generated
    policy = InclusionPolicy(accept=accept, split_credit=split_credit)  # type: ignore[arg-type]
    selection = select_gold(table, policy)
    assert len(selection.records) + len(selection.held_back) == n_items
    for record in selection.records:
        assert record.band[record.right_action] == 1.0
        assert all(0 < c <= 1 for c in record.band.values())
        assert set(record.band) <= set(ACTIONS)
        assert bands.check_band(SCHEMA, record.right_action, record.band) == record.band
        assert 0 <= record.disagreement <= 1
        assert record.n_annotators >= selection.min_annotations
