"""Read rows from CSV, TSV, JSONL and Parquet files, with line numbers and clear errors."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from annotate.errors import ImportProblem

MAX_FIELD_BYTES = 50 * 1024 * 1024

Progress = Callable[[int], None]

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def _read_mapping_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except FileNotFoundError:
        raise ImportProblem([f"{path}: file does not exist"]) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ImportProblem([f"{path}: cannot read mapping: {exc}"]) from None
    if not isinstance(data, dict):
        raise ImportProblem([f"{path}: expected a mapping at the top level"])
    return data


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ImportProblem(
            [
                f"{path}:{line}: bad encoding: byte 0x{raw[exc.start]:02x} is not UTF-8 "
                "(save the file as UTF-8)"
            ]
        ) from None


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield `(line, row)` from a CSV, JSONL or Parquet file; ImportProblem on unreadable input."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise ImportProblem([f"{path}: file does not exist"])
    if suffix == ".parquet":
        yield from _parquet_rows(path)
        return
    if suffix not in {".csv", ".jsonl", ".ndjson", ".tsv"}:
        raise ImportProblem(
            [f"{path}: unsupported file type `{suffix}`; expected .csv, .tsv, .jsonl or .parquet"]
        )
    text = _decode(path, path.read_bytes())
    if suffix in {".jsonl", ".ndjson"}:
        yield from _jsonl_rows(path, text)
    else:
        yield from _csv_rows(path, text, delimiter="\t" if suffix == ".tsv" else ",")


def _csv_rows(path: Path, text: str, delimiter: str) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportProblem([f"{path}: the file is empty"]) from None
    except csv.Error as exc:
        raise ImportProblem([f"{path}:1: malformed CSV header: {exc}"]) from None
    header = [h.strip() for h in header]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise ImportProblem([f"{path}:1: column(s) {', '.join(dupes)} appear more than once"])
    start = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportProblem([f"{path}:{start}: malformed CSV: {exc}"]) from None
        line = start
        start = reader.line_num + 1
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise ImportProblem(
                [
                    f"{path}:{line}: expected {len(header)} columns as in the header, "
                    f"found {len(values)}"
                ]
            )
        yield line, dict(zip(header, values, strict=True))


def _jsonl_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    problems: list[str] = []
    rows: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{number}: malformed JSON: {exc.msg} at column {exc.colno}")
            continue
        except RecursionError:
            problems.append(f"{path}:{number}: JSON nested too deeply")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{path}:{number}: expected a JSON object, found {type(obj).__name__}")
            continue
        rows.append((number, obj))
    if problems:
        raise ImportProblem(problems)
    yield from rows


def _parquet_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a broken file
        raise ImportProblem([f"{path}: not a readable Parquet file: {exc}"]) from None
    yield from enumerate(table.to_pylist(), start=1)
