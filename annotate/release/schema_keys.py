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
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from annotate.release.record import SCHEMA_KEYS, V2_LABEL_FIELDS, record_fields
from annotate.schema import LabelField, LabelSchema


def resolutions(votes: npt.NDArray[np.int64], right: npt.NDArray[np.int64]) -> list[str]:
    """Per item `unanimous`, `majority` or `adjudicated`, for right action index `right[i]`
    given the human annotators' votes per right action (items x right actions)."""
    total = votes.sum(axis=1)
    chosen = votes[np.arange(len(votes)), right] if len(votes) else np.zeros(0, np.int64)
    code = np.where((total > 0) & (chosen == total), 0, np.where(chosen * 2 > total, 1, 2))
    names = ("unanimous", "majority", "adjudicated")
    return [names[c] for c in code.tolist()]


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
    at = {pos: i for i, pos in enumerate(positions)}
    columns: dict[str, list[Any]] = {
        name: list(map(majority[name].__getitem__, positions)) for name in labels
    }
    causes: list[Any] = [None] * len(positions)
    # Only adjudicated items (a few) need a look at the lead's values.
    for pos, adj in adjudications.items():
        i = at.get(pos)
        if i is None:
            continue
        lead: Mapping[str, Any] = adj.get("labels") or {}
        for name in labels:
            given = _present(lead.get(name)) if name in singles else None
            if given is not None:
                columns[name][i] = given
        causes[i] = _present(adj.get("disagreement_cause"))
    if "resolution" in keys:
        index = {a: i for i, a in enumerate(schema.right_actions)}
        right = np.array([index[r["right_action"]] for r in rows], dtype=np.int64)
        columns["resolution"] = resolutions(votes[np.asarray(positions, dtype=np.int64)], right)
    if "disagreement_cause" in keys:
        columns["disagreement_cause"] = causes
    _Visibility(schema, labels).apply(rows, columns)
    names = list(columns)
    pick = itemgetter(*keys)
    out = []
    # C-level dict work per row: the extra values merged in, then every key in record order.
    for row, values in zip(rows, zip(*columns.values(), strict=True), strict=True):
        row.update(zip(names, values, strict=True))
        out.append(dict(zip(keys, pick(row), strict=True)))
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

    def apply(self, rows: Sequence[Mapping[str, Any]], columns: dict[str, list[Any]]) -> None:
        """Set the values of `columns` that do not apply to their record in `rows` to None."""
        if not self.conditional:
            return
        looked_at = [
            columns[n] if n in columns else [row.get(self.record_keys.get(n, n)) for row in rows]
            for n in self.names
        ]
        # Multi-choice values are lists: as tuples they can key the cache.
        looked_at = [
            [tuple(v) if isinstance(v, list) else v for v in values]
            if any(isinstance(v, list) for v in values)
            else values
            for values in looked_at
        ]
        cache: dict[tuple[Any, ...], list[str]] = {}
        for i, key in enumerate(zip(*looked_at, strict=True)):
            hidden = cache.get(key)
            if hidden is None:
                seen = {
                    n: list(v) if isinstance(v, tuple) else v
                    for n, v in zip(self.names, key, strict=True)
                }
                hidden = cache[key] = [
                    f.name
                    for f in self.conditional
                    if all(seen[k] is not None for k in f.show_when)
                    and not self.schema.is_shown(f, seen)
                ]
            for name in hidden:
                columns[name][i] = None
