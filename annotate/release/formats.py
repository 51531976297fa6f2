"""Gold records as JSONL, Parquet and CSV: writers and readers, byte-stable."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from annotate.errors import NotFound, ValidationProblem
from annotate.release.record import SCHEMA_KEYS, GoldRecord, record_fields
from annotate.schema import LabelSchema

GOLD_JSONL = "gold.jsonl"

GOLD_PARQUET = "gold.parquet"

GOLD_CSV = "gold.csv"

# How gold.csv writes a multi-choice field that annotators gave with nothing ticked; an empty
# cell is a field nobody labeled.
EMPTY_SELECTION = "[]"

# Spreadsheets run a cell that starts with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_FORMULA_CHARS = frozenset("".join(FORMULA_START))

# One encoder for every line: compact, UTF-8 text kept as is, keys in the order given.
# orjson writes the same compact JSON about five times faster; the standard library covers
# what orjson refuses (integers beyond 64 bits in imported metadata).
_stdlib_json = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), check_circular=False
).encode


def _json(obj: Any) -> str:
    try:
        return orjson.dumps(obj).decode()
    except orjson.JSONEncodeError:
        return _stdlib_json(obj)


# JSON leaves these raw, but str.splitlines() and some JSONL readers break lines at them.
_LINE_BREAKS = re.compile("[\x85\u2028\u2029]")


def _json_sorted(obj: Any) -> str:
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(obj, ensure_ascii=False, sort_keys=True)


def _encode(obj: Any) -> str:
    line = _json(obj)
    # Three substring scans run in C and beat one regex search over every line.
    if "\x85" in line or "\u2028" in line or "\u2029" in line:
        line = _LINE_BREAKS.sub(lambda m: f"\\u{ord(m.group()):04x}", line)
    return line


def dumps_line(obj: Any) -> str:
    """One JSONL line: compact, UTF-8 text kept as is (but for line separators, escaped),
    keys in the order given."""
    return _encode(obj)


def encode_rows(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every row as its JSONL line (without the line end)."""
    return [_encode(row) for row in rows]


def write_lines(path: Path, lines: Iterable[str]) -> None:
    """Write already-encoded JSONL lines, each ended by LF."""
    rest = iter(lines)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        # In blocks: one write per line (and a copy of each to add its LF) was twice as slow.
        while block := list(islice(rest, 10_000)):
            fh.write("\n".join(block))
            fh.write("\n")


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write `rows` as JSON Lines (LF line ends)."""
    write_lines(path, (_encode(row) for row in rows))


def parquet_schema(schema: LabelSchema) -> pa.Schema:
    """Arrow schema of gold.parquet for records made under label schema `schema`.

    `band` is a struct with one float per action (null: no credit); `soft_labels` a struct per
    choice field with one float per value; `conversation` a list of {role, content};
    `metadata` a JSON string (its keys differ from item to item). Label columns are nullable:
    null is a field nobody labeled, and an empty `failure_categories` list is a label. Columns
    follow `record.record_fields(schema)`: refusal-v2's fields are text columns of their own.
    """
    text = pa.string()
    soft = pa.struct(
        [
            pa.field(f.name, pa.struct([(v, pa.float64()) for v in f.values]))
            for f in schema.choice_fields
        ]
    )
    columns = [
        pa.field("id", text, nullable=False),
        ("prompt", text),
        ("conversation", pa.list_(pa.struct([("role", text), ("content", text)]))),
        pa.field("response", text, nullable=False),
        ("model", text),
        ("source", text),
        ("category", text),
        ("group", text),
        pa.field("right_action", text, nullable=False),
        ("band", pa.struct([(a, pa.float64()) for a in schema.action_labels])),
        ("intent", text),
        ("epistemic_status", text),
        ("observed_action", text),
        ("failure_categories", pa.list_(text)),
        ("soft_labels", soft),
        pa.field("n_annotators", pa.int64(), nullable=False),
        pa.field("disagreement", pa.float64(), nullable=False),
        pa.field("adjudicated", pa.bool_(), nullable=False),
        ("adjudicated_by", text),
        ("adjudication_note", text),
        pa.field("guideline_gap", pa.bool_(), nullable=False),
        ("metadata", text),
    ]
    named = [c if isinstance(c, pa.Field) else pa.field(*c) for c in columns]
    by_name = {c.name: c for c in named}
    return pa.schema([by_name.get(k) or pa.field(k, text) for k in record_fields(schema)])


def write_parquet(path: Path, rows: Sequence[Mapping[str, Any]], schema: LabelSchema) -> None:
    """Write records to Parquet (zstd) with `parquet_schema(schema)`; ValidationProblem when a
    record names an action or soft-label value the schema does not have."""
    arrow_schema = parquet_schema(schema)
    actions = set(schema.action_labels)
    soft_fields = {f.name: set(f.values) for f in schema.choice_fields}
    for row in rows:
        if not row["band"].keys() <= actions:
            extra = set(row["band"]) - actions
            raise ValidationProblem(
                f"Item `{row['id']}`: band action(s) {', '.join(sorted(extra))} are not in "
                f"schema {schema.id}"
            )
        for name, shares in row["soft_labels"].items():
            if name not in soft_fields or not shares.keys() <= soft_fields[name]:
                raise ValidationProblem(
                    f"Item `{row['id']}`: soft labels of `{name}` do not match schema {schema.id}"
                )
    # Column by column, as Table.from_pylist does it, without a copy of every row.
    columns = [
        [_json_sorted(row["metadata"]) for row in rows]
        if name == "metadata"
        else [row.get(name) for row in rows]
        for name in arrow_schema.names
    ]
    table = pa.Table.from_arrays(columns, schema=arrow_schema)
    pq.write_table(table, path, compression="zstd")


def read_parquet_records(path: Path) -> list[dict[str, Any]]:
    """gold.parquet back as record dicts equal to what was written (nulls of structs dropped)."""
    rows = pq.read_table(path).to_pylist()
    for row in rows:
        # Structs carry every schema key; a key that was absent comes back as null.
        row["band"] = {a: c for a, c in (row["band"] or {}).items() if c is not None}
        row["soft_labels"] = {
            name: {v: share for v, share in shares.items() if share is not None}
            for name, shares in (row["soft_labels"] or {}).items()
            if shares is not None
        }
        row["metadata"] = json.loads(row["metadata"]) if row["metadata"] else {}
    return rows


def neutralize_cell(value: str) -> str:
    """`value` with a leading apostrophe if a spreadsheet would read it as a formula."""
    return "'" + value if value[:1] in _FORMULA_CHARS else value


V1_COLUMNS = [k for k in GoldRecord.model_fields if k not in SCHEMA_KEYS]

_JSON_COLUMNS = frozenset({"conversation", "band", "soft_labels", "metadata"})

_BOOL_COLUMNS = frozenset({"adjudicated", "guideline_gap"})

# Rows per block of CSV: bounded memory (a whole file at once held several copies of it).
_CSV_BLOCK_ROWS = 20_000

_NEEDS_QUOTES = '[,"\r\n]'

_FORMULA_RE = "^[=+\\-@\t\r]"  # FORMULA_START as a regex (tests hold the two equal)


def _csv_texts(name: str, values: list[Any]) -> pa.Array:
    """One column's cells as text, before neutralizing and quoting."""
    if name in _JSON_COLUMNS:
        # Plain JSON: a CSV cell may hold any character, line separators included.
        cells = ["" if v is None else _json(v) for v in values]
    elif name == "failure_categories":
        # Missing (None) is an empty cell; the empty selection is `[]`, never the same.
        cells = ["" if v is None else ";".join(v) if v else EMPTY_SELECTION for v in values]
    elif name in _BOOL_COLUMNS:
        cells = ["true" if v else "false" for v in values]
    elif set(map(type, values)) <= {str, type(None)}:
        # Text with missing values: Arrow fills them in without a Python loop.
        return pc.fill_null(pa.array(values, type=pa.string()), "")
    else:
        cells = ["" if v is None else str(v) for v in values]
    return pa.array(cells, type=pa.string())


def _csv_cells(text: pa.Array) -> pa.Array:
    """Cells as the csv module (excel dialect, minimal quoting) writes them, formulas defused.

    A cell that starts like a formula gets a leading apostrophe (see neutralize_cell); then a
    cell holding a comma, a quote or a line break is quoted, its quotes doubled.
    """
    formula = pc.match_substring_regex(text, _FORMULA_RE)
    if pc.any(formula).as_py():
        text = pc.if_else(formula, pc.binary_join_element_wise("'", text, ""), text)
    special = pc.match_substring_regex(text, _NEEDS_QUOTES)
    if not pc.any(special).as_py():
        return text
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
    return pc.if_else(special, quoted, text)


def _csv_block(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> pa.Buffer:
    """CSV lines of `rows` (CRLF after each) as UTF-8 bytes, built column by column in Arrow."""
    cells = [_csv_cells(_csv_texts(c, [row.get(c) for row in rows])) for c in columns]
    lines = pc.binary_join_element_wise(*cells, ",")
    lines = pc.binary_join_element_wise(lines, "", "\r\n")
    # With no nulls the data buffer, between the first and last offsets, is the lines end to
    # end: written as it is, without a Python string per line.
    _, offsets, data = lines.buffers()
    ends = np.frombuffer(offsets, dtype=np.int32)
    first, last = int(ends[lines.offset]), int(ends[lines.offset + len(lines)])
    return data.slice(first, last - first)


def write_csv(
    path: Path, rows: Sequence[Mapping[str, Any]], schema: LabelSchema | None = None
) -> None:
    """Write records as CSV for people and spreadsheets (not for round trips).

    One column per record field; failure categories `;`-joined, `[]` when annotators ticked
    nothing, an empty cell when nobody labeled them (as for any missing value); band, soft labels,
    conversation and metadata as JSON; every cell a spreadsheet would run as a formula
    (starting with = + - @, tab or CR) gets a leading apostrophe. The bytes are what the csv
    module's writer (excel dialect, CRLF line ends) gives for those cells. The columns are
    `record.record_fields(schema)` (without a schema: version 1's).
    """
    columns = record_fields(schema) if schema is not None else V1_COLUMNS
    header = io.StringIO()
    csv.writer(header, lineterminator="\r\n").writerow(columns)
    with path.open("wb") as fh:
        fh.write(header.getvalue().encode("utf-8"))
        for start in range(0, len(rows), _CSV_BLOCK_ROWS):
            fh.write(_csv_block(rows[start : start + _CSV_BLOCK_ROWS], columns))


def read_jsonl_lines(path: Path) -> list[str]:
    """The non-empty lines of gold.jsonl, undecoded."""
    try:
        # Split at line ends only (universal newlines, as read_text read them): splitlines()
        # would also split inside strings at U+0085 and others. Line by line: the whole file
        # as bytes and then as text cost two more copies of it.
        with path.open(encoding="utf-8") as fh:
            return [line[:-1] if line[-1:] == "\n" else line for line in fh if line.strip()]
    except FileNotFoundError:
        raise NotFound(f"{path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise ValidationProblem(f"{path}: not a readable gold file: {exc}") from None


def read_jsonl_records(path: Path) -> list[dict[str, Any]]:
    """gold.jsonl as record dicts."""
    try:
        return [json.loads(line) for line in read_jsonl_lines(path)]
    except ValueError as exc:
        raise ValidationProblem(f"{path}: not a readable gold file: {exc}") from None


def load_records(release: Path) -> list[GoldRecord]:
    """The gold records of a release folder, validated (from gold.jsonl)."""
    return [GoldRecord.model_validate(r) for r in read_jsonl_records(release / GOLD_JSONL)]
