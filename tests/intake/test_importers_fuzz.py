"""Random rows thrown at the importers: a clear ImportProblem or a whole import, nothing between."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from conftest import ADMIN, make_campaign
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from annotate import storage
from annotate.errors import AnnotateError, ImportProblem
from annotate.intake.items import parse_items
from annotate.intake.labels import parse_label_rows
from annotate.schema import LabelSchema
from annotate.storage.db import session_scope
from annotate.storage.models import Item

text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
cell = st.one_of(st.none(), text, st.integers(), st.floats(allow_nan=True), st.booleans())
columns = st.sampled_from(["id", "prompt", "response", "model", "group", "conversation", "x"])
row = st.dictionaries(columns, cell, max_size=7)


def _as_csv(rows: list[dict[str, Any]]) -> str:
    header = sorted({k for r in rows for k in r}) or ["id"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header)
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(row, max_size=6), fmt=st.sampled_from(["csv", "jsonl"]))
def test_parse_items_never_raises_anything_else(rows: list[dict[str, Any]], fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"f.{fmt}"
        if fmt == "csv":
            path.write_text(_as_csv(rows), encoding="utf-8", newline="")
        else:
            path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
        try:
            records = parse_items(path)
        except ImportProblem as exc:
            assert exc.problems and all(p.startswith(str(path)) for p in exc.problems)
            return
        assert all(r.response.strip() for r in records)
        assert all(r.prompt or r.conversation for r in records)


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=300), fmt=st.sampled_from(["csv", "jsonl", "tsv", "parquet"]))
def test_arbitrary_bytes_are_rejected_cleanly(data: bytes, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"f.{fmt}"
        path.write_bytes(data)
        for parse in (parse_items, parse_label_rows):
            try:
                parse(path)  # type: ignore[operator]
            except ImportProblem as exc:
                assert exc.problems and str(path) in exc.problems[0]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(row, min_size=1, max_size=5))
def test_import_is_all_or_nothing(
    engine: Engine, schema: LabelSchema, rows: list[dict[str, Any]]
) -> None:
    with session_scope(engine) as s:
        try:
            campaign = storage.get_campaign(session=s, name="fuzz")
        except AnnotateError:
            campaign = make_campaign(s, schema, name="fuzz")
    with Session(engine) as s:
        before = s.exec(select(func.count()).select_from(Item)).one()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
        try:
            with session_scope(engine) as s:
                records = parse_items(path)
                result = storage.import_items(
                    session=s, actor=ADMIN, campaign=campaign, records=records, source=str(path)
                )
            expected = before + result.added
        except ImportProblem:
            expected = before
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(Item)).one() == expected
