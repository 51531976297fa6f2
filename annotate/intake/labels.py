"""Labels from rows in long form (item_id, annotator, field, value), with value mappings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from annotate.errors import ImportProblem
from annotate.intake.items import _text
from annotate.intake.readers import _read_mapping_file, read_rows

LABEL_COLUMNS = ("item_id", "annotator", "field", "value")


@dataclass
class LabelRow:
    """One `item_id, annotator, field, value` row, after value mapping."""

    line: int
    item_id: str
    annotator: str
    field: str
    value: str


def read_value_mapping(path: Path | None) -> dict[str, dict[str, str]]:
    """`{field: {from: to}}` from a YAML or JSON file (empty without a file)."""
    if path is None:
        return {}
    data = _read_mapping_file(path)
    out: dict[str, dict[str, str]] = {}
    for fld, table in data.items():
        if not isinstance(table, dict):
            raise ImportProblem([f"{path}: `{fld}` must map values to values"])
        out[str(fld)] = {str(k): str(v) for k, v in table.items()}
    return out


def parse_label_rows(
    path: Path,
    values: Mapping[str, Mapping[str, str]] | None = None,
    wide: Mapping[str, str] | None = None,
    wide_field: str | None = None,
    id_column: str = "item_id",
) -> list[LabelRow]:
    """Label rows from a long file, or from a wide one (`wide`: column -> annotator name).

    In wide form every listed column holds one annotator's value of `wide_field`, and the
    item id comes from `id_column`. Values are translated through `values` per field.
    """
    values = values or {}
    out: list[LabelRow] = []
    problems: list[str] = []
    checked = False
    for line, row in read_rows(path):
        where = f"{path}:{line}"
        if not checked:
            need = [id_column, *wide] if wide else list(LABEL_COLUMNS)
            missing = [c for c in need if c not in row]
            if missing:
                raise ImportProblem(
                    [
                        f"{path}: missing column(s) {', '.join(missing)}; "
                        f"the file has {', '.join(map(str, row))}"
                    ]
                )
            checked = True
        if wide:
            assert wide_field is not None
            item_id = _text(row.get(id_column)) or ""
            cells = [(name, wide_field, _text(row.get(col))) for col, name in wide.items()]
        else:
            item_id = _text(row.get("item_id")) or ""
            cells = [
                (
                    _text(row.get("annotator")) or "",
                    _text(row.get("field")) or "",
                    _text(row.get("value")),
                )
            ]
        if not item_id.strip():
            problems.append(f"{where}: field `{id_column if wide else 'item_id'}`: is empty")
            continue
        for annotator, fld, value in cells:
            if not annotator.strip():
                problems.append(f"{where}: field `annotator`: is empty")
                continue
            if not fld.strip():
                problems.append(f"{where}: field `field`: is empty")
                continue
            # An empty cell is kept: for a multi-choice field it is the empty selection
            # ("nothing wrong"), a label in its own right; the store skips it for other fields.
            value = (value or "").strip()
            value = values.get(fld, {}).get(value, value)
            out.append(LabelRow(line, item_id.strip(), annotator.strip(), fld.strip(), value))
    if not checked:
        raise ImportProblem([f"{path}: no rows to import"])
    if problems:
        raise ImportProblem(problems)
    return out
