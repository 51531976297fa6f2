"""The keys of a gold record beyond version 1's: refusal-v2's label fields, `resolution` and
`disagreement_cause` (pure: rows in, rows out; see selection.select_gold).

- Each label field of `record.V2_LABEL_FIELDS` the schema has comes, like `intent`, from the
  current adjudication where the lead set it, else from a strict majority of the human
  annotators who gave it (a tie or nobody gives None).
- A field whose `show_when` does not hold for the record's own labels (e.g. `answer_quality`
  when the gold observed action is `refuse`) is None, as on the label form: the field does not
  apply. When a field its condition names is itself None (a tie), the value is kept.
- `resolution` (a gold attribute) is how the gold right action was reached, from the human
  annotators' right-action votes: `unanimous` when every one of them chose it, `majority` when
  more than half did, else `adjudicated` (the lead decided: a tie, a minority view or an action
  nobody chose). A lead who accepts the majority keeps `majority`.
- `disagreement_cause` (an adjudication field) is the current adjudication's, else None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from annotate.release.record import SCHEMA_KEYS, V2_LABEL_FIELDS, record_fields
from annotate.schema import LabelField, LabelSchema


def resolution(votes: npt.NDArray[np.int64], right: int) -> str:
    """`unanimous`, `majority` or `adjudicated` for right action index `right` given the
    human annotators' votes per right action."""
    total, chosen = int(votes.sum()), int(votes[right])
    if total and chosen == total:
        return "unanimous"
    if chosen * 2 > total:
        return "majority"
    return "adjudicated"


def _present(value: Any) -> Any:
    """A stored value, with pandas' missing values (NaN) as None."""
    if value is None or (isinstance(value, float) and value != value) or value == "":
        return None
    return value


def add_schema_keys(
    rows: list[dict[str, Any]],
    positions: Sequence[int],
    schema: LabelSchema,
    majority: Mapping[str, Sequence[Any]],
    adjudications: Mapping[int, Mapping[str, Any]],
    votes: npt.NDArray[np.int64],
) -> list[dict[str, Any]]:
    """`rows` (gold rows of the items at `positions`) with the schema's extra keys, in record
    order; the rows unchanged when the schema has none (version 1)."""
    keys = record_fields(schema)
    if not any(k in SCHEMA_KEYS for k in keys):
        return rows
    labels = [k for k in V2_LABEL_FIELDS if k in keys]
    singles = {f.name for f in schema.fields if f.kind == "single"}
    right_index = {a: i for i, a in enumerate(schema.right_actions)}
    visible = _Visibility(schema, labels)
    out = []
    for pos, row in zip(positions, rows, strict=True):
        adj = adjudications.get(pos) or {}
        lead: Mapping[str, Any] = adj.get("labels") or {}
        values: dict[str, Any] = {}
        for name in labels:
            given = _present(lead.get(name)) if name in singles else None
            values[name] = given if given is not None else majority[name][pos]
        visible.apply(row, values)
        if "resolution" in keys:
            values["resolution"] = resolution(votes[pos], right_index[row["right_action"]])
        if "disagreement_cause" in keys:
            values["disagreement_cause"] = _present(adj.get("disagreement_cause"))
        out.append({k: values[k] if k in values else row[k] for k in keys})
    return out


class _Visibility:
    """Applies `show_when` to the extra label fields of one record at a time; the outcome
    is cached per combination of the values conditions look at (few distinct ones)."""

    def __init__(self, schema: LabelSchema, labels: Sequence[str]) -> None:
        self.schema = schema
        self.conditional: list[LabelField] = [
            f for f in schema.fields if f.name in labels and f.show_when
        ]
        self.names = sorted({k for f in self.conditional for k in f.show_when})
        self.record_keys = {
            schema.right_action_field: "right_action",
            schema.observed_action_field: "observed_action",
            schema.failure_field: "failure_categories",
            "intent": "intent",
            "epistemic_status": "epistemic_status",
        }
        self.cache: dict[tuple[Any, ...], list[str]] = {}

    def apply(self, row: Mapping[str, Any], values: dict[str, Any]) -> None:
        """Set the fields of `values` that do not apply to the record `row` to None."""
        if not self.conditional:
            return
        seen = {
            n: values[n] if n in values else row.get(self.record_keys.get(n, n)) for n in self.names
        }
        key = tuple(tuple(v) if isinstance(v, list) else v for v in seen.values())
        hidden = self.cache.get(key)
        if hidden is None:
            hidden = [
                f.name
                for f in self.conditional
                if all(seen[k] is not None for k in f.show_when)
                and not self.schema.is_shown(f, seen)
            ]
            self.cache[key] = hidden
        for name in hidden:
            values[name] = None
