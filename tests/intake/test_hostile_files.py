"""Hostile files refused quickly, with a message and bounded memory: Parquet bombs, YAML
alias bombs, deeply nested JSON, and CSV headers with tens of thousands of columns."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from annotate.errors import ImportProblem, SchemaError
from annotate.intake import ColumnMap, parse_items, parse_label_rows, read_value_mapping
from annotate.schema import load_schema

# -- Parquet -----------------------------------------------------------------------------------

VALUE_BYTES = 512 * 1024  # one text value, under pyarrow's 1 MB dictionary page limit


def _dictionary_bomb(path: Path, rows: int) -> None:
    """A small zstd Parquet file whose `response` column is one long value referenced by
    every row: `rows` x 512 KB once decoded. Written from a dictionary array, so building
    it never expands it."""
    response = pa.DictionaryArray.from_arrays(
        pa.array([0] * rows, type=pa.int32()), pa.array(["a" * VALUE_BYTES])
    )
    table = pa.table(
        {
            "id": pa.array([f"r{n}" for n in range(rows)]),
            "prompt": pa.array(["How do I stop a process?"] * rows),
            "response": response,
        }
    )
    pq.write_table(table, path, compression="zstd")


def test_parquet_dictionary_bomb_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.parquet"
    rows = 2_400  # 1.26 GB decoded, past the default 1 GiB
    _dictionary_bomb(path, rows)
    assert path.stat().st_size < 300_000
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(ImportProblem) as exc:
            parse_items(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 10
    [message] = exc.value.problems
    assert message.startswith(f"{path}: ") and "decoded" in message
    assert "the limit is 1,073.7 MB (ANNOTATE_MAX_IMPORT_BYTES)" in message
    assert peak < 50_000_000, f"{peak / 1e6:.0f} MB of Python memory at peak"


def test_parquet_under_the_limit_reads_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "edge.parquet"
    _dictionary_bomb(path, 2_100)  # three batches: the limit counts them all
    monkeypatch.setenv("ANNOTATE_MAX_IMPORT_BYTES", str(2_100 * VALUE_BYTES))
    with pytest.raises(ImportProblem, match="decoded"):
        parse_items(path)
    monkeypatch.setenv("ANNOTATE_MAX_IMPORT_BYTES", str(2_100 * VALUE_BYTES + 100_000))
    path = tmp_path / "fine.parquet"
    _dictionary_bomb(path, 100)
    records = parse_items(path)
    assert len(records) == 100 and records[-1].external_id == "r99"
    assert len(records[0].response) == VALUE_BYTES


def test_parquet_row_count_and_size_are_checked_from_the_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "many.parquet"
    pq.write_table(
        pa.table({"id": [str(n) for n in range(11)], "prompt": ["q"] * 11, "response": ["a"] * 11}),
        path,
    )
    monkeypatch.setenv("ANNOTATE_MAX_IMPORT_ROWS", "10")
    with pytest.raises(ImportProblem) as exc:
        parse_items(path)
    assert exc.value.problems == [
        f"{path}: 11 rows; the limit is 10 (ANNOTATE_MAX_IMPORT_ROWS): split the file"
    ]
    monkeypatch.delenv("ANNOTATE_MAX_IMPORT_ROWS")

    plain = tmp_path / "plain.parquet"
    pq.write_table(
        pa.table({"id": ["1", "2"], "prompt": ["q", "q"], "response": ["b" * 300_000] * 2}),
        plain,
        use_dictionary=False,
        compression="zstd",
    )
    monkeypatch.setenv("ANNOTATE_MAX_IMPORT_BYTES", "100000")
    with pytest.raises(ImportProblem, match=r"MB uncompressed; the limit is 0\.1 MB"):
        parse_items(plain)


# -- YAML ------------------------------------------------------------------------------------


def _billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_yaml_alias_bombs_are_refused_fast(tmp_path: Path) -> None:
    bomb = _billion_laughs()
    assert len(bomb) < 500
    values = tmp_path / "values.yaml"
    values.write_text(bomb)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("columns:\n  prompt: question\n" + bomb)
    schema = tmp_path / "schema.yaml"
    schema.write_text("id: bomb\n" + bomb)
    started = time.monotonic()
    with pytest.raises(ImportProblem, match="aliases .* are not accepted"):
        read_value_mapping(values)
    with pytest.raises(ImportProblem, match="aliases .* are not accepted"):
        ColumnMap.build(None, None, mapping)
    with pytest.raises(SchemaError, match="aliases .* are not accepted"):
        load_schema(schema)
    assert time.monotonic() - started < 2


# -- nested JSON -----------------------------------------------------------------------------

DEPTH = 600


def _nested() -> str:
    return "[" * DEPTH + "]" * DEPTH


def test_deep_json_in_items_conversations_and_labels_is_a_message(tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text('{"id": "a", "prompt": "Q", "response": "A", "extra": ' + _nested() + "}\n")
    with pytest.raises(ImportProblem) as exc:
        parse_items(items)
    assert exc.value.problems == [f"{items}:1: JSON nested too deeply (more than 100 levels)"]

    cells = tmp_path / "conv.csv"
    turn = '{"role": "user", "content": "hi", "extra": ' + _nested() + "}"
    cell = ("[" + turn + "]").replace('"', '""')
    cells.write_text(f'id,conversation,response\nb,"{cell}",A\n')
    with pytest.raises(ImportProblem) as exc:
        parse_items(cells)
    assert exc.value.problems == [
        f"{cells}:2: field `conversation`: JSON nested too deeply (more than 100 levels)"
    ]

    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        '{"item_id": "a", "annotator": "x", "field": "right_action", "value": ' + _nested() + "}\n"
    )
    with pytest.raises(ImportProblem) as exc:
        parse_label_rows(labels, {})
    assert exc.value.problems == [f"{labels}:1: JSON nested too deeply (more than 100 levels)"]

    values = tmp_path / "values.json"
    values.write_text('{"right_action": ' + _nested() + "}")
    with pytest.raises(ImportProblem, match="nested more than 100 levels deep"):
        read_value_mapping(values)


# -- CSV -------------------------------------------------------------------------------------


def test_duplicate_header_check_is_linear(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    header = ["id", "prompt", "response"] + [f"c{n}" for n in range(40_000)] + ["c7", "id"]
    path.write_text(",".join(header) + "\n" + ",".join(["1", "q", "a"] + ["x"] * 40_002) + "\n")
    started = time.monotonic()
    with pytest.raises(ImportProblem) as exc:
        parse_items(path)
    assert time.monotonic() - started < 2
    assert exc.value.problems == [f"{path}:1: column(s) c7, id appear more than once"]
