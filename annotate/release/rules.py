"""The schema's consistency rules over gold records: which records break which rule (pure).

A release refuses gold records that break a rule unless a lead recorded an override at
adjudication (the adjudication's note says why); `create_release` lists the rest.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from annotate.release.record import V2_LABEL_FIELDS
from annotate.schema import LabelSchema


class GoldViolation(BaseModel):
    """A gold record that breaks a consistency rule nobody overrode."""

    id: str
    rule: str
    message: str


def gold_labels(
    row: Mapping[str, Any], schema: LabelSchema, adjudicated: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The record's labels under the schema's field names, as selection decided them.

    The record's own fields first (refusal-v2's harm area, severity... where the record
    carries them and they are not null); single-choice fields it does not carry come from
    the lead's `adjudicated` labels where given, else from a strict majority of
    `soft_labels` (None without one).
    """
    out: dict[str, Any] = {}
    for f in schema.choice_fields:
        if f.kind == "single":
            shares = row["soft_labels"].get(f.name) or {}
            out[f.name] = next((v for v, share in shares.items() if share > 0.5), None)
    for name, value in (adjudicated or {}).items():
        if name in out and value not in (None, ""):
            out[name] = value
    out[schema.right_action_field] = row["right_action"]
    out[schema.observed_action_field] = row["observed_action"]
    out[schema.failure_field] = row["failure_categories"]
    for name in ("intent", "epistemic_status"):
        if name in out:
            out[name] = row[name]
    for name in V2_LABEL_FIELDS:
        if name in out and row.get(name) is not None:
            out[name] = row[name]
    return out


def _checkable(schema: LabelSchema) -> LabelSchema:
    """`schema` with only the rules a gold record can be held to: those on single-choice
    fields and the failure field (rationales are per annotator; a lead's note stands in)."""
    kinds = {f.name: f.kind for f in schema.fields}

    def fits(name: str) -> bool:
        return kinds.get(name) == "single" or name == schema.failure_field

    rules = tuple(
        r for r in schema.rules if all(fits(n) for part in (r.when, r.expect) for n in part)
    )
    return schema if len(rules) == len(schema.rules) else schema.model_copy(update={"rules": rules})


def gold_violations(
    rows: Sequence[Mapping[str, Any]],
    schema: LabelSchema,
    overridden: Mapping[str, Collection[str]] | None = None,
    adjudicated: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[GoldViolation]:
    """Every (record, rule) where the record's labels break the rule, less the overridden ones.

    `overridden` maps a record id to the rules its adjudication overrode, `adjudicated` to the
    lead's final labels. A field nobody labeled (null) does not meet a rule's expectation: the
    record does not say what the rule asks for. Rules on text fields are left to the label
    page and adjudication.
    """
    overridden = overridden or {}
    adjudicated = adjudicated or {}
    checked = _checkable(schema)
    if not checked.rules:
        return []
    out: list[GoldViolation] = []
    for row in rows:
        waived = overridden.get(row["id"], ())
        labels = gold_labels(row, schema, adjudicated.get(row["id"]))
        for warning in checked.check_consistency(labels):
            if warning.rule not in waived:
                out.append(GoldViolation(id=row["id"], rule=warning.rule, message=warning.message))
    return out


def describe(violations: Sequence[GoldViolation], *, limit: int = 20) -> str:
    """The violations, one per line (at most `limit`, then how many more)."""
    lines = [f"  {v.id}: {v.rule}: {v.message}" for v in violations[:limit]]
    if len(violations) > limit:
        lines.append(f"  ... and {len(violations) - limit} more")
    return "\n".join(lines)
