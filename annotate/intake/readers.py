"""Read rows from CSV, TSV, JSONL and Parquet files, with line numbers and clear errors."""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from annotate.errors import ImportProblem
from annotate.settings import MAX_NESTING, load_user_data, too_deep
from annotate.settings import limits as settings_limits

MAX_FIELD_BYTES = 50 * 1024 * 1024

Progress = Callable[[int], None]

TOO_DEEP = f"JSON nested too deeply (more than {MAX_NESTING} levels)"

PARQUET_BATCH_ROWS = 1024

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def _read_mapping_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        data = load_user_data(text, yaml_syntax=path.suffix != ".json")
    except FileNotFoundError:
        raise ImportProblem([f"{path}: file does not exist"]) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
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
    if suffix in {".jsonl", ".ndjson"}:
        yield from _jsonl_rows(path, _decode(path, path.read_bytes()))
        return
    # CSV is read from the file as it is parsed, not from a copy of it in memory (a StringIO
    # holds 4 bytes a character: 1.4 GB for a 350 MB file); the encoding is checked first.
    _check_utf8(path)
    with path.open(encoding="utf-8-sig", newline="") as fh:
        yield from _csv_rows(path, fh, delimiter="\t" if suffix == ".tsv" else ",")


def _check_utf8(path: Path, chunk: int = 1 << 18) -> None:
    """ImportProblem naming the line of the first byte of `path` that is not UTF-8.

    Read in blocks of whole lines (no UTF-8 sequence contains a newline byte), so that the
    file is never all in memory.
    """
    lines = 0
    rest = b""
    with path.open("rb") as fh:
        while True:
            raw = fh.read(chunk)
            block = rest + raw
            cut = len(block) if not raw else block.rfind(b"\n") + 1
            block, rest = block[:cut], block[cut:]
            try:
                block.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = lines + block[: exc.start].count(b"\n") + 1
                raise ImportProblem(
                    [
                        f"{path}:{line}: bad encoding: byte 0x{block[exc.start]:02x} is not "
                        "UTF-8 (save the file as UTF-8)"
                    ]
                ) from None
            if not raw:
                return
            lines += block.count(b"\n")


def _csv_rows(
    path: Path, text: Iterable[str], delimiter: str
) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(text, delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportProblem([f"{path}: the file is empty"]) from None
    except csv.Error as exc:
        raise ImportProblem([f"{path}:1: malformed CSV header: {exc}"]) from None
    header = [h.strip() for h in header]
    dupes = sorted(h for h, n in Counter(header).items() if n > 1)  # linear: 40,000 columns
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
            obj = None
        if obj is None or too_deep(obj):
            problems.append(f"{path}:{number}: {TOO_DEEP}")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{path}:{number}: expected a JSON object, found {type(obj).__name__}")
            continue
        rows.append((number, obj))
    if problems:
        raise ImportProblem(problems)
    yield from rows


def _parquet_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a Parquet file, refused before they fill memory when the file is a bomb.

    The footer's row count and uncompressed size are checked before any data is read
    (ANNOTATE_MAX_IMPORT_ROWS, ANNOTATE_MAX_IMPORT_BYTES). A dictionary-encoded column can
    still expand far past its stored size (one long value referenced by every row), so text
    columns are read as dictionaries, in batches, and the decoded size of the whole file is
    added up (a first pass) before any row becomes Python values.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    limits = settings_limits()
    try:
        meta = pq.ParquetFile(path).metadata
        stored = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        text = [
            f.name
            for f in meta.schema.to_arrow_schema()
            if pa.types.is_string(f.type)
            or pa.types.is_large_string(f.type)
            or pa.types.is_binary(f.type)
            or pa.types.is_large_binary(f.type)
        ]
    except Exception as exc:  # pyarrow raises several unrelated types for a broken file
        raise ImportProblem([f"{path}: not a readable Parquet file: {exc}"]) from None
    if meta.num_rows > limits.max_import_rows:
        raise ImportProblem(
            [
                f"{path}: {meta.num_rows:,} rows; the limit is {limits.max_import_rows:,} "
                "(ANNOTATE_MAX_IMPORT_ROWS): split the file"
            ]
        )
    if stored > limits.max_import_bytes:
        raise ImportProblem([_too_big(path, stored, limits.max_import_bytes, "uncompressed")])
    try:
        # First pass: the decoded size, batch by batch, values kept as dictionaries (cheap);
        # second pass: the rows. A bomb is refused before any of it becomes Python values.
        decoded = 0
        for batch in _batches(path, text):
            decoded += _decoded_bytes(batch)
            if decoded > limits.max_import_bytes:
                raise ImportProblem(
                    [_too_big(path, decoded, limits.max_import_bytes, "decoded (so far)")]
                )
        line = 1
        for batch in _batches(path, text):
            for row in batch.to_pylist():
                if too_deep(row):
                    raise ImportProblem([f"{path}:{line}: nested more than {MAX_NESTING} levels"])
                yield line, row
                line += 1
    except ImportProblem:
        raise
    except Exception as exc:
        raise ImportProblem([f"{path}: not a readable Parquet file: {exc}"]) from None


def _batches(path: Path, text: list[str]) -> Iterator[Any]:
    import pyarrow.parquet as pq

    yield from pq.ParquetFile(path, read_dictionary=text).iter_batches(
        batch_size=PARQUET_BATCH_ROWS
    )


def _too_big(path: Path, size: int, limit: int, how: str) -> str:
    return (
        f"{path}: {size / 1e6:,.1f} MB {how}; the limit is {limit / 1e6:,.1f} MB "
        "(ANNOTATE_MAX_IMPORT_BYTES): split the file, or raise the limit if it is genuine"
    )


def _decoded_bytes(batch: Any) -> int:
    """Bytes `batch` takes once every dictionary-encoded value is written out in full."""
    import pyarrow as pa
    import pyarrow.compute as pc

    total = 0
    for column in batch.columns:
        if pa.types.is_dictionary(column.type):
            lengths = pc.binary_length(column.dictionary)
            total += int(pc.sum(pc.take(lengths, column.indices)).as_py() or 0)
            total += column.indices.nbytes
        else:
            total += column.nbytes
    return total
