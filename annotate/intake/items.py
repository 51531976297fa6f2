"""Items from rows: column mapping, validation and line-numbered problems."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from annotate.errors import ImportProblem
from annotate.intake.readers import (
    MAX_FIELD_BYTES,
    TOO_DEEP,
    Progress,
    _read_mapping_file,
    read_rows,
)
from annotate.settings import too_deep

ITEM_FIELDS = ("id", "prompt", "conversation", "response", "model", "source", "category", "group")


class Turn(BaseModel):
    """One turn of a conversation."""

    model_config = ConfigDict(extra="forbid")

    role: str = Field(pattern=r"^(user|assistant|system)$")
    content: str


class ItemRecord(BaseModel):
    """A validated item, ready for the store."""

    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(min_length=1, max_length=500)
    prompt: str | None = None
    conversation: list[Turn] | None = None
    response: str = Field(min_length=1)
    model: str | None = Field(default=None, max_length=500)
    source: str | None = Field(default=None, max_length=500)
    category: str | None = Field(default=None, max_length=500)
    group_id: str | None = Field(default=None, max_length=500)
    meta: dict[str, Any] = Field(default_factory=dict)
    line: int = 0
    _digest: str | None = PrivateAttr(default=None)

    @field_validator("response")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("is empty")
        return v

    def content_hash(self) -> str:
        """sha256 over everything that makes the item what it is (not its line number)."""
        if self._digest is None:
            self._digest = self._compute_hash()
        return self._digest

    def _compute_hash(self) -> str:
        body = {
            "prompt": self.prompt,
            "conversation": [t.model_dump() for t in self.conversation]
            if self.conversation
            else None,
            "response": self.response,
            "model": self.model,
            "source": self.source,
            "category": self.category,
            "group": self.group_id,
            "meta": self.meta,
        }
        canon = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canon.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class ColumnMap:
    """How file columns become item fields: renames, constants, columns to drop."""

    columns: dict[str, str] = field(default_factory=dict)  # item field -> file column
    constants: dict[str, str] = field(default_factory=dict)  # item field -> fixed value
    drop: set[str] = field(default_factory=set)

    @classmethod
    def build(
        cls,
        pairs: list[str] | None = None,
        sets: list[str] | None = None,
        mapping_file: Path | None = None,
        drop: list[str] | None = None,
    ) -> ColumnMap:
        """From `--column FIELD=COLUMN`, `--set FIELD=VALUE`, `--drop COLUMN` and an optional
        YAML/JSON file."""
        cmap = cls()
        if mapping_file is not None:
            data = _read_mapping_file(mapping_file)
            unknown = set(data) - {"columns", "constants", "drop"}
            if unknown:
                raise ImportProblem(
                    [
                        f"{mapping_file}: unknown key(s) {', '.join(sorted(unknown))}; "
                        "expected columns, constants, drop"
                    ]
                )
            cmap.columns.update({str(k): str(v) for k, v in (data.get("columns") or {}).items()})
            cmap.constants.update(
                {str(k): str(v) for k, v in (data.get("constants") or {}).items()}
            )
            cmap.drop.update(str(c) for c in data.get("drop") or [])
        for flag, target in (("--column", cmap.columns), ("--set", cmap.constants)):
            for pair in (pairs if flag == "--column" else sets) or []:
                name, sep, value = pair.partition("=")
                if not sep or not name.strip() or not value.strip():
                    raise ImportProblem([f"{flag} `{pair}`: expected FIELD=VALUE"])
                target[name.strip()] = value.strip()
        cmap.drop.update(c.strip() for c in drop or [] if c.strip())
        bad = (set(cmap.columns) | set(cmap.constants)) - set(ITEM_FIELDS)
        if bad:
            raise ImportProblem(
                [
                    f"Unknown item field(s) {', '.join(sorted(bad))}; "
                    f"expected one of {', '.join(ITEM_FIELDS)}"
                ]
            )
        return cmap


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN from Parquet/pandas
        return None
    return value if isinstance(value, str) else str(value)


def _check_text(where: str, name: str, value: str | None, problems: list[str]) -> None:
    # PostgreSQL cannot store NUL in text, and a lone surrogate (possible through a JSON
    # \ud800 escape) is not encodable at all: reject both here rather than mid-insert.
    if value is None:
        return
    if "\x00" in value:
        problems.append(f"{where}: field `{name}`: contains a NUL character")
    elif len(value) > MAX_FIELD_BYTES:
        problems.append(f"{where}: field `{name}`: longer than {MAX_FIELD_BYTES} characters")
    else:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            problems.append(
                f"{where}: field `{name}`: contains an unpaired surrogate "
                f"(\\u{ord(value[exc.start]):04x}) at character {exc.start}"
            )


def _check_meta(where: str, name: str, value: Any, problems: list[str]) -> None:
    if isinstance(value, str):
        _check_text(where, name, value, problems)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_text(where, name, str(k), problems)
            _check_meta(where, f"{name}.{k}", v, problems)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_meta(where, f"{name}.{i}", v, problems)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def parse_items(
    path: Path, cmap: ColumnMap | None = None, progress: Progress | None = None
) -> list[ItemRecord]:
    """Every item of `path`, validated; ImportProblem listing each bad row otherwise."""
    cmap = cmap or ColumnMap()
    records: list[ItemRecord] = []
    problems: list[str] = []
    seen: dict[str, tuple[int, str]] = {}
    resolved: dict[str, str] | None = None
    for n, (line, row) in enumerate(read_rows(path), start=1):
        if resolved is None:
            resolved = _resolve_columns(path, list(row), cmap)
        where = f"{path}:{line}"
        rec = _item_from_row(where, row, resolved, cmap, problems)
        if rec is not None:
            rec = with_system_turn(rec)
            rec.line = line
            digest = rec.content_hash()
            prior = seen.get(rec.external_id)
            if prior is not None and prior[1] != digest:
                problems.append(
                    f"{where}: field `id`: `{rec.external_id}` already appears on line "
                    f"{prior[0]} with different content"
                )
            elif prior is None:
                seen[rec.external_id] = (line, digest)
                records.append(rec)
        if progress is not None and n % 1000 == 0:
            progress(1000)
    if resolved is None:
        raise ImportProblem([f"{path}: no rows to import"])
    if problems:
        raise ImportProblem(problems)
    return records


def with_system_turn(record: ItemRecord) -> ItemRecord:
    """`record` with its `system_prompt` column as the conversation's leading `system` turn.

    A system prompt changes what is right, so annotators must see it: it is part of the
    conversation, not hidden metadata.
    """
    system = record.meta.get("system_prompt")
    if not isinstance(system, str) or not system.strip():
        return record
    turns = record.conversation or [Turn(role="user", content=record.prompt or "")]
    meta = {k: v for k, v in record.meta.items() if k != "system_prompt"}
    return ItemRecord(
        external_id=record.external_id,
        conversation=[Turn(role="system", content=system), *turns],
        response=record.response,
        model=record.model,
        source=record.source,
        category=record.category,
        group_id=record.group_id,
        meta=meta,
        line=record.line,
    )


def _resolve_columns(path: Path, header: list[str], cmap: ColumnMap) -> dict[str, str]:
    """Item field -> file column, checking that what is needed is there."""
    resolved: dict[str, str] = {}
    problems = []
    for fld in ITEM_FIELDS:
        col = cmap.columns.get(fld)
        if col is not None:
            if col not in header:
                problems.append(
                    f"{path}: column `{col}` (mapped to `{fld}`) is missing; "
                    f"the file has {', '.join(header)}"
                )
            resolved[fld] = col
        elif fld in header and fld not in cmap.constants and fld not in cmap.drop:
            resolved[fld] = fld
    if "response" not in resolved and "response" not in cmap.constants:
        problems.append(
            f"{path}: missing column `response` (map another with --column response=COLUMN); "
            f"the file has {', '.join(header)}"
        )
    if "prompt" not in resolved and "conversation" not in resolved:
        problems.append(
            f"{path}: missing column `prompt` or `conversation` (map with --column prompt=COLUMN)"
            f"; the file has {', '.join(header)}"
        )
    if problems:
        raise ImportProblem(problems)
    return resolved


def _item_from_row(
    where: str,
    row: Mapping[str, Any],
    resolved: dict[str, str],
    cmap: ColumnMap,
    problems: list[str],
) -> ItemRecord | None:
    values: dict[str, Any] = {f: cmap.constants[f] for f in cmap.constants}
    for fld, col in resolved.items():
        values[fld] = row.get(col)
    used = set(resolved.values()) | cmap.drop
    meta = {str(k): _jsonable(v) for k, v in row.items() if k not in used}
    before = len(problems)
    for key, value in meta.items():
        _check_meta(where, key, value, problems)
    texts = {f: _text(values.get(f)) for f in ITEM_FIELDS if f != "conversation"}
    for name, text in texts.items():
        _check_text(where, name, text, problems)
    conversation = None
    raw_conv = values.get("conversation")
    if isinstance(raw_conv, float) and raw_conv != raw_conv:
        raw_conv = None
    has_conv = (
        raw_conv is not None
        and raw_conv != ""
        and not (isinstance(raw_conv, str) and not raw_conv.strip())
    )
    if has_conv and isinstance(raw_conv, str):
        try:
            raw_conv = json.loads(raw_conv)
        except (json.JSONDecodeError, RecursionError) as exc:
            deep = isinstance(exc, RecursionError)
            problems.append(
                f"{where}: field `conversation`: " + (TOO_DEEP if deep else "not valid JSON")
            )
            raw_conv = None
        else:
            if too_deep(raw_conv):
                problems.append(f"{where}: field `conversation`: {TOO_DEEP}")
                raw_conv = None
    if has_conv and raw_conv is not None:
        if not isinstance(raw_conv, list) or not raw_conv:
            problems.append(
                f"{where}: field `conversation`: expected a non-empty list of {{role, content}}"
            )
        else:
            conversation = raw_conv
            for turn in raw_conv:
                if isinstance(turn, dict):
                    _check_text(where, "conversation", _text(turn.get("content")), problems)
    prompt = texts["prompt"]
    if not has_conv and (prompt is None or not prompt.strip()):
        problems.append(f"{where}: field `prompt`: is empty")
    if texts["response"] is None or not texts["response"].strip():
        problems.append(f"{where}: field `response`: is empty")
    ext_id = texts["id"]
    if ext_id is not None and not ext_id.strip():
        problems.append(f"{where}: field `id`: is empty")
    if len(problems) > before:
        return None
    try:
        rec = ItemRecord(
            external_id=(ext_id or "").strip() or "pending",
            prompt=prompt if prompt and prompt.strip() else None,
            conversation=conversation,  # type: ignore[arg-type]
            response=texts["response"] or "",
            model=texts["model"],
            source=texts["source"],
            category=texts["category"],
            group_id=texts["group"],
            meta=meta,
        )
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            problems.append(f"{where}: field `{loc}`: {err['msg']}")
        return None
    if ext_id is None:
        # No id column: derive a stable id from the content so that re-imports match up.
        rec.external_id = "h-" + rec.content_hash()[:16]
    return rec
