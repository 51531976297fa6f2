"""Intake: items and labels from CSV, TSV, JSONL and Parquet files, with line-numbered errors."""

from __future__ import annotations

from annotate.intake.items import (
    ITEM_FIELDS,
    ColumnMap,
    ItemRecord,
    Turn,
    parse_items,
)
from annotate.intake.labels import (
    LABEL_COLUMNS,
    LabelRow,
    parse_label_rows,
    read_value_mapping,
)
from annotate.intake.leaks import (
    LabelColumn,
    LabelColumns,
    find_label_columns,
    refuse_label_columns,
)
from annotate.intake.readers import (
    MAX_FIELD_BYTES,
    Progress,
    read_rows,
)

__all__ = [
    "ColumnMap",
    "ITEM_FIELDS",
    "ItemRecord",
    "LabelColumn",
    "LabelColumns",
    "LABEL_COLUMNS",
    "LabelRow",
    "MAX_FIELD_BYTES",
    "Progress",
    "Turn",
    "find_label_columns",
    "parse_items",
    "parse_label_rows",
    "read_rows",
    "read_value_mapping",
    "refuse_label_columns",
]
