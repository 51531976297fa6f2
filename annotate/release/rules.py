"""The schema's consistency rules over gold records: which records break which rule (pure).

A release refuses gold records that break a rule unless a lead recorded an override at
adjudication (the adjudication's note says why); `create_release` lists the rest.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from annotate.schema import LabelSchema


class GoldViolation(BaseModel):
    """A gold record that breaks a consistency rule nobody overrode."""

    id: str
    rule: str
    message: str


def gold_labels(row: Mapping[str, Any], schema: LabelSchema) -> dict[str, Any]:
    """The schema fields a gold record carries, under the schema's field names."""
    names = {f.name for f in schema.fields}
    out: dict[str, Any] = {
        schema.right_action_field: row["right_action"],
        schema.observed_action_field: row["observed_action"],
        schema.failure_field: row["failure_categories"],
    }
    for name in ("intent", "epistemic_status"):
        if name in names:
            out[name] = row[name]
    return out


def gold_violations(
    rows: Sequence[Mapping[str, Any]],
    schema: LabelSchema,
    overridden: Mapping[str, Collection[str]] | None = None,
) -> list[GoldViolation]:
    """Every (record, rule) where the record's labels break the rule, less the overridden ones.

    `overridden` maps a record id to the rules its adjudication overrode. A field nobody
    labeled (null) does not meet a rule's expectation: the record does not say what the rule
    asks for.
    """
    overridden = overridden or {}
    if not schema.rules:
        return []
    out: list[GoldViolation] = []
    for row in rows:
        waived = overridden.get(row["id"], ())
        for warning in schema.check_consistency(gold_labels(row, schema)):
            if warning.rule not in waived:
                out.append(GoldViolation(id=row["id"], rule=warning.rule, message=warning.message))
    return out


def describe(violations: Sequence[GoldViolation], *, limit: int = 20) -> str:
    """The violations, one per line (at most `limit`, then how many more)."""
    lines = [f"  {v.id}: {v.rule}: {v.message}" for v in violations[:limit]]
    if len(violations) > limit:
        lines.append(f"  ... and {len(violations) - limit} more")
    return "\n".join(lines)
