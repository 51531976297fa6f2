"""Hostile files at the importers and the schema loader: a message for every rejection,
no traceback, no partial write."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ADMIN, DEFAULT_SCHEMA_PATH, make_campaign
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import Session, select

from annotate import storage
from annotate.errors import ImportProblem, SchemaError
from annotate.intake.items import parse_items
from annotate.schema import LabelSchema, load_schema
from annotate.storage.models import Item


def test_ten_megabyte_response_imports_whole(
    session: Session, schema: LabelSchema, tmp_path: Path
) -> None:
    big = "lorem ipsum " * (10 * 1024 * 1024 // 12)
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({"id": "big", "prompt": "Summarise this.", "response": big}) + "\n")
    records = parse_items(path)
    campaign = make_campaign(session, schema)
    storage.import_items(session=session, actor=ADMIN, campaign=campaign, records=records)
    session.commit()
    stored = session.exec(select(Item)).one()
    assert len(stored.response) == len(big) >= 10_000_000


def test_deeply_nested_json_is_rejected_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    nested = "[" * 100_000 + "]" * 100_000
    path.write_text(
        json.dumps({"id": "ok", "prompt": "Q", "response": "A"})
        + "\n"
        + '{"id": "x", "prompt": "Q", "response": "A", "meta": '
        + nested
        + "}\n"
    )
    with pytest.raises(ImportProblem) as exc:
        parse_items(path)
    assert exc.value.problems == [f"{path}:2: JSON nested too deeply (more than 100 levels)"]


def test_moderately_nested_metadata_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "nested.jsonl"
    value: Any = "leaf"
    for _ in range(50):
        value = {"k": value}
    path.write_text(json.dumps({"id": "n", "prompt": "Q", "response": "A", "deep": value}) + "\n")
    [rec] = parse_items(path)
    assert json.dumps(rec.meta).count("{") == 51


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "nul.csv",
            b"id,prompt,response\n1,Q\x00Q,A\n",
            "{p}:2: field `prompt`: contains a NUL character",
        ),
        (
            "nul.jsonl",
            b'{"id": "1", "prompt": "Q", "response": "A\\u0000"}\n',
            "{p}:1: field `response`: contains a NUL character",
        ),
        (
            "latin1.jsonl",
            b'{"id": "1", "prompt": "caf\xe9", "response": "A"}\n',
            "{p}:1: bad encoding: byte 0xe9 is not UTF-8",
        ),
        (
            "surrogate.jsonl",
            b'{"id": "1", "prompt": "\\ud800", "response": "A"}\n',
            "{p}:1: field `prompt`: contains an unpaired surrogate",
        ),
        ("half.csv", b'id,prompt,response\n1,"unterminated,A\n', "{p}:2: malformed CSV"),
    ],
)
def test_hostile_bytes_are_named(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImportProblem) as exc:
        parse_items(path)
    assert exc.value.problems[0].startswith(expected.format(p=path)), exc.value.problems


def test_mixed_newlines_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        b"\xef\xbb\xbfid,prompt,response\r\n"
        b'1,Q1,"line one\nline two\r\nline three"\n2,Q2,A2\r3,Q3,A3\r\n'
    )
    records = parse_items(path)
    assert [r.external_id for r in records] == ["1", "2", "3"]
    assert records[0].response == "line one\nline two\r\nline three"


def test_formula_like_prompts_are_stored_verbatim(tmp_path: Path) -> None:
    # Escaping belongs to the CSV writer of releases; the database keeps what was given.
    path = tmp_path / "f.csv"
    path.write_text('id,prompt,response\n1,"=HYPERLINK(""http://remote.invalid"",""x"")",A\n')
    [rec] = parse_items(path)
    assert rec.prompt == '=HYPERLINK("http://remote.invalid","x")'


# -- the schema loader -------------------------------------------------------------------------

yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _mutations() -> st.SearchStrategy[tuple[list[str | int], Any]]:
    raw = yaml.safe_load(DEFAULT_SCHEMA_PATH.read_text())
    paths: list[list[str | int]] = []

    def walk(node: Any, path: list[str | int]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, [*path, k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, [*path, i])

    walk(raw, [])
    return st.tuples(st.sampled_from(paths[1:]), yaml_values)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutation=_mutations())
def test_schema_loader_rejects_mutations_with_a_message(
    mutation: tuple[list[str | int], Any],
) -> None:
    path_parts, value = mutation
    data = yaml.safe_load(DEFAULT_SCHEMA_PATH.read_text())
    node = data
    for p in path_parts[:-1]:
        node = node[p]
    node[path_parts[-1]] = value
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "mutated.yaml"
        file.write_text(yaml.safe_dump(data, allow_unicode=True))
        try:
            schema = load_schema(file)
        except SchemaError as exc:
            assert str(file) in str(exc) and str(exc).strip()
            return
        # Accepted mutations must still give a coherent schema.
        m = schema.credit_matrix()
        assert (m == m.T).all() and (m.diagonal() == 1).all()


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=400))
def test_schema_loader_rejects_arbitrary_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "junk.yaml"
        file.write_bytes(data)
        with pytest.raises(SchemaError) as exc:
            load_schema(file)
        assert str(file) in str(exc.value)


def test_rejected_import_leaves_database_unchanged(
    session: Session, schema: LabelSchema, tmp_path: Path
) -> None:
    campaign = make_campaign(session, schema)
    path = tmp_path / "mix.jsonl"
    lines = [json.dumps({"id": f"ok{n}", "prompt": "Q", "response": "A"}) for n in range(100)]
    lines.append('{"id": "bad", "prompt": "Q", "response": "A\\u0000"}')
    path.write_text("\n".join(lines))
    with pytest.raises(ImportProblem):
        storage.import_items(
            session=session, actor=ADMIN, campaign=campaign, records=parse_items(path)
        )
    assert session.exec(select(func.count()).select_from(Item)).one() == 0
