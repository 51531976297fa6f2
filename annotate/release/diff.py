"""What changed between two gold releases: items added, removed, and changed field by field.

Pure module: two lists of gold records (as JSON-ready dicts, or as the lines of `gold.jsonl`)
in, a `ReleaseDiff` out.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from annotate.release.record import GoldRecord


class FieldChange(BaseModel):
    """One field of one item, before and after.

    For `band`, `band_changes` lists every action whose credit moved as `[old, new]`
    (None where the action was not in the band).
    """

    field: str
    old: Any
    new: Any
    band_changes: dict[str, tuple[float | None, float | None]] | None = None


class ItemChange(BaseModel):
    """Every changed field of one item present in both releases."""

    id: str
    changes: list[FieldChange]


class DiffSummary(BaseModel):
    """Counts of a diff: what the manifest of a release carries about its parent."""

    added: int
    removed: int
    changed: int
    unchanged: int
    changed_fields: dict[str, int]


class ReleaseDiff(BaseModel):
    """Items added, removed and changed from one release (`old`) to another (`new`)."""

    old: str
    new: str
    added: list[str]
    removed: list[str]
    changed: list[ItemChange]
    summary: DiffSummary


def _band_changes(
    old: dict[str, float], new: dict[str, float]
) -> dict[str, tuple[float | None, float | None]]:
    actions = [*old, *(a for a in new if a not in old)]
    return {a: (old.get(a), new.get(a)) for a in actions if old.get(a) != new.get(a)}


def diff_records(
    old: Sequence[Mapping[str, Any]],
    new: Sequence[Mapping[str, Any]],
    *,
    old_name: str = "old",
    new_name: str = "new",
) -> ReleaseDiff:
    """Compare two releases' records by id; every field of `GoldRecord` is compared.

    Records are `GoldRecord.model_dump(mode="json")` dicts. Lists come sorted by id; changes
    within an item follow the record's field order.
    """
    return _diff({r["id"]: r for r in old}, {r["id"]: r for r in new}, dict, old_name, new_name)


def diff_lines(
    old: Sequence[str], new: Sequence[str], *, old_name: str = "old", new_name: str = "new"
) -> ReleaseDiff:
    """`diff_records` over gold.jsonl lines: identical lines are not even decoded.

    Lines that differ are decoded and compared field by field, so a line written differently
    (another key order, say) but with equal content does not count as a change.
    """
    return _diff(_by_id(old), _by_id(new), json.loads, old_name, new_name)


_DECODER = json.JSONDecoder()
_ID_PREFIX = '{"id":'


def _by_id(lines: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        if line.startswith(_ID_PREFIX):
            # The writers put the id first: read just that string, not the whole record.
            rid = _DECODER.raw_decode(line, len(_ID_PREFIX))[0]
        else:
            rid = json.loads(line)["id"]
        out[str(rid)] = line
    return out


def _diff(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    load: Callable[[Any], Mapping[str, Any]],
    old_name: str,
    new_name: str,
) -> ReleaseDiff:
    fields = list(GoldRecord.model_fields)
    changed: list[ItemChange] = []
    per_field: Counter[str] = Counter()
    shared = before.keys() & after.keys()
    for rid in sorted(shared):
        if before[rid] == after[rid]:
            continue
        a, b = load(before[rid]), load(after[rid])
        changes = [
            FieldChange(
                field=name,
                old=a.get(name),
                new=b.get(name),
                band_changes=_band_changes(a.get(name) or {}, b.get(name) or {})
                if name == "band"
                else None,
            )
            for name in fields
            if a.get(name) != b.get(name)
        ]
        for change in changes:
            per_field[change.field] += 1
        if changes:
            changed.append(ItemChange(id=rid, changes=changes))
    added = sorted(after.keys() - before.keys())
    removed = sorted(before.keys() - after.keys())
    return ReleaseDiff(
        old=old_name,
        new=new_name,
        added=added,
        removed=removed,
        changed=changed,
        summary=DiffSummary(
            added=len(added),
            removed=len(removed),
            changed=len(changed),
            unchanged=len(shared) - len(changed),
            changed_fields={f: per_field[f] for f in fields if per_field[f]},
        ),
    )
