"""Label-like columns of an items file, found before import so that labeling stays blind.

An items file often carries labels beside the items: XSTest's completions hold two human
annotations, their agreement and a final label; a seed file holds its authors' expected
actions; an export from another tool holds a judge's verdict. Imported as items, they would
become metadata that annotators see next to the response. The importers refuse such a file
and name two ways out: import the columns as labels (`annotate import-labels`), or leave them
out of the items (`--drop COLUMN`, "Drop columns" in the app).

A column looks like labels when its name matches `annotation_*`, `label*`, `*_label`,
`final_label`, `gold*`, `judge*` or `agreement` (any case), or when every non-empty value is an
option of one choice field of the campaign's schema (a column of `answer` / `refuse`, or of
`;`-separated failure categories). Only item metadata is checked: a column mapped to an item
field (`--column response=label`) or dropped is not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from annotate.errors import AnnotateError
from annotate.intake.items import ItemRecord
from annotate.schema import LabelSchema

LABEL_NAME = re.compile(
    r"^(annotation_.*|label.*|.*_label|final_label|gold.*|judge.*|agreement)$", re.IGNORECASE
)

NAMED = "a label-like name"


@dataclass(frozen=True)
class LabelColumn:
    """A column that looks like labels, and why."""

    column: str
    why: str


class LabelColumns(AnnotateError):
    """An items file carries label-like columns; nothing was imported."""

    def __init__(self, source: str, found: Sequence[LabelColumn], campaign: str) -> None:
        self.columns = [c.column for c in found]
        by_name = [f"`{c.column}`" for c in found if c.why == NAMED]
        plural = "s" if len(by_name) > 1 else ""
        parts = [", ".join(by_name) + f" (label-like name{plural})"] if by_name else []
        parts += [f"`{c.column}` ({c.why})" for c in found if c.why != NAMED]
        named = "; ".join(parts)
        drops = " ".join(f"--drop {c}" for c in self.columns)
        super().__init__(
            f"{source}: column(s) {named} look like labels; imported with the items, annotators "
            "would see them. Nothing was imported. Either import them as labels with "
            f"`annotate import-labels {source} --campaign {campaign} --wide COLUMN=ANNOTATOR "
            f"--field FIELD` and leave them out of the items, or drop them: import again with "
            f"`{drops}` (in the app: Drop columns). A column that is not labels can be kept "
            "as metadata with `--keep COLUMN`."
        )


def _tokens(value: Any) -> tuple[str, ...] | None:
    """The option names a cell would hold: None for an empty cell, () when it cannot be one."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, str):
        parts = tuple(p.strip() for p in value.split(";") if p.strip())
        return parts or None
    if isinstance(value, list):
        if not value:
            return None
        return tuple(value) if all(isinstance(v, str) for v in value) else ()
    return ()


def find_label_columns(records: Iterable[ItemRecord], schema: LabelSchema) -> list[LabelColumn]:
    """Every metadata column of `records` that looks like labels, in the file's order."""
    options = {f.name: frozenset(f.values) for f in schema.choice_fields}
    multi = {f.name for f in schema.choice_fields if f.kind == "multi"}
    fields: dict[str, set[str]] = {}  # column -> choice fields all its values fit so far
    filled: set[str] = set()
    for rec in records:
        for column, value in rec.meta.items():
            could = fields.get(column)
            if could is None:
                could = fields[column] = set(options)
            if not could:
                continue
            tokens = _tokens(value)
            if tokens is None:
                continue
            filled.add(column)
            if not tokens:  # a number, a mapping, a list of non-strings: not a label
                could.clear()
                continue
            could.intersection_update(
                f
                for f in list(could)
                if (len(tokens) == 1 or f in multi) and all(t in options[f] for t in tokens)
            )
    found = []
    for column, could in fields.items():
        if LABEL_NAME.match(column):
            found.append(LabelColumn(column, NAMED))
        elif could and column in filled:
            names = [f.name for f in schema.choice_fields if f.name in could]
            found.append(LabelColumn(column, f"every value is a {' or '.join(names)} option"))
    return found


def refuse_label_columns(
    source: str,
    records: Sequence[ItemRecord],
    schema: LabelSchema,
    *,
    campaign: str,
    keep: Iterable[str] = (),
) -> None:
    """Raise LabelColumns naming `source`, the columns and the ways out, if there are any.

    Columns in `keep` are metadata the importer says are not labels (`--keep COLUMN`: a
    `difficulty` of low / medium / high reads like confidence options); they are imported as
    metadata, which annotators see only if the campaign lists the key as visible.
    """
    kept = set(keep)
    found = [c for c in find_label_columns(records, schema) if c.column not in kept]
    if found:
        raise LabelColumns(source, found, campaign)
