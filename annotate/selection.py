"""Gold selection: which items of a campaign become gold, with which labels, and why not.

Pure module: a `LabelTable` (see queries.load_labels) in, `GoldRecord`s and held-back items out;
no database, no files. The rules, with their defaults (see `InclusionPolicy`):

- An item is gold when at least k human annotators labeled it (k = the campaign's overlap) and
  it is either adjudicated or unanimous on the right action (all of at least k annotations name
  the same right action). Automatic judges never count.
- Everything else is held back with one reason: `too_few_labels`, `no_right_action` (fewer
  than k annotations name a right action and no lead named one), `unresolved_disagreement`.
- Labels of a gold item come from the current adjudication where it has the field, else from
  the human annotators: the right action from the rule above; other single-choice fields by
  strict majority (a tie gives None); failure categories ticked by a strict majority.
- The band is the lead's band when the adjudication has one, else `bands.suggest_band`: the
  schema's credits around the right action, widened by how annotators split. For a unanimous
  item that is exactly the schema's default band; with `accept="majority"` an action chosen by
  a third or more of the annotators earns at least 0.5.
- `soft_labels` give, per choice field, the share of human annotators choosing each value
  (every schema value listed, zeros included); `disagreement` is the expected pairwise band
  distance between annotators' right actions (1 - credit), from `agreement.disagreement_scores`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from annotate import agreement, bands
from annotate.errors import ValidationProblem
from annotate.gold import GoldRecord, Turn
from annotate.schema import LabelSchema

if TYPE_CHECKING:
    from annotate.queries import LabelTable

HeldBackReason = Literal["too_few_labels", "no_right_action", "unresolved_disagreement"]
DIGITS = 6  # shares and scores are rounded so that files do not carry float noise


class InclusionPolicy(BaseModel):
    """Which items become gold; recorded in every manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_annotations: int | None = Field(
        default=None,
        ge=1,
        description="Human annotations an item needs (k); None means the campaign's overlap.",
    )
    accept: Literal["unanimous", "majority"] = Field(
        default="unanimous",
        description="Without adjudication, the right action must be unanimous (default) or "
        "chosen by a strict majority of the annotators.",
    )
    split_credit: float = Field(
        default=bands.SPLIT_CREDIT,
        gt=0,
        le=1,
        description="Least credit for an action a third or more of the annotators chose "
        "(only matters for non-unanimous items, i.e. with accept=majority).",
    )

    @classmethod
    def from_pairs(cls, pairs: Sequence[str]) -> InclusionPolicy:
        """Build from `KEY=VALUE` strings (the CLI's `--policy`); ValidationProblem on bad ones."""
        values: dict[str, Any] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in cls.model_fields:
                raise ValidationProblem(
                    f"--policy `{pair}`: expected KEY=VALUE with KEY one of "
                    f"{', '.join(cls.model_fields)}"
                )
            values[key] = value.strip()
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = [
                f"--policy {'.'.join(map(str, e['loc']))}=`{values.get(str(e['loc'][0]))}`: "
                f"{e['msg']}"
                for e in exc.errors()
            ]
            raise ValidationProblem("\n".join(problems)) from None


class HeldBack(BaseModel):
    """An item that is not gold, and why."""

    id: str
    reason: HeldBackReason
    detail: str


class GoldSelection(BaseModel):
    """The outcome of selection: gold records and held-back items, both sorted by id."""

    records: list[GoldRecord]
    held_back: list[HeldBack]
    policy: InclusionPolicy
    min_annotations: int


def _shares(values: Sequence[Any], options: Sequence[str]) -> dict[str, float]:
    counts = Counter(values)
    total = len(values)
    return {o: round(counts[o] / total, DIGITS) if total else 0.0 for o in options}


def _set_shares(values: Sequence[frozenset[str]], options: Sequence[str]) -> dict[str, float]:
    total = len(values)
    return {
        o: round(sum(o in v for v in values) / total, DIGITS) if total else 0.0 for o in options
    }


def _ticked_by_majority(values: Sequence[frozenset[str]], options: Sequence[str]) -> list[str]:
    return [o for o in options if sum(o in v for v in values) * 2 > len(values)]


def _clean(value: Any) -> Any:
    """pandas hands missing text back as None or NaN; files want None."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value


def _split(votes: Sequence[str]) -> str:
    return ", ".join(f"{v} {n}" for v, n in sorted(Counter(votes).items(), key=lambda x: -x[1]))


def select_gold(table: LabelTable, policy: InclusionPolicy | None = None) -> GoldSelection:
    """Apply `policy` to every item of `table`: gold records and held-back items, sorted by id.

    `table` must be loaded `with_text=True`. Raises ValidationProblem when a stored
    adjudication band breaks the schema (unknown action, right action not at 1).
    """
    policy = policy or InclusionPolicy()
    schema = table.schema
    k = policy.min_annotations or int(table.campaign.overlap)
    humans = table.humans()
    items = table.items
    choice = schema.choice_fields
    ra_field = schema.right_action_field

    # Per item, the row positions of its human annotations (rows come sorted by item id).
    item_col = humans["item_id"].to_numpy()
    # pandas may hand missing labels back as NaN (string columns): None from here on.
    columns = {f.name: [_clean(v) for v in humans[f.name].tolist()] for f in choice}
    order = np.argsort(item_col, kind="stable")
    sorted_items = item_col[order]
    starts = np.searchsorted(sorted_items, items["item_id"].to_numpy(), side="left")
    ends = np.searchsorted(sorted_items, items["item_id"].to_numpy(), side="right")

    item_ids = items["item_id"].tolist()
    _, _, matrix = table.matrix(ra_field, item_ids=item_ids)
    disagreement = (
        agreement.disagreement_scores(
            matrix,
            agreement.band_distance(schema.credit_matrix()),
            labels=schema.action_labels,
        )
        if matrix.size
        else np.zeros(len(item_ids))
    )
    adjudications: dict[int, dict[str, Any]] = {
        int(row["item_id"]): {str(k): v for k, v in row.items()}
        for row in table.adjudications.to_dict("records")
    }

    records: list[GoldRecord] = []
    held: list[HeldBack] = []
    for pos, raw in enumerate(items.to_dict("records")):
        item = {str(k): v for k, v in raw.items()}
        rows = order[starts[pos] : ends[pos]]
        ext = str(item["external_id"])
        values = {name: [columns[name][r] for r in rows] for name in columns}
        given = {
            f.name: [v for v in values[f.name] if v is not None and (f.kind == "multi" or v)]
            for f in choice
        }
        n_annotators = len(rows)
        votes = given[ra_field]
        adj = adjudications.get(int(item["item_id"]))
        adj_labels: Mapping[str, Any] = (adj or {}).get("labels") or {}
        right: str | None = adj_labels.get(ra_field) or None
        if n_annotators < k:
            held.append(
                HeldBack(
                    id=ext,
                    reason="too_few_labels",
                    detail=f"{n_annotators} of {k} required human annotations",
                )
            )
            continue
        if right is None:
            if len(votes) < k:
                held.append(
                    HeldBack(
                        id=ext,
                        reason="no_right_action",
                        detail=f"{len(votes)} of {k} required annotations name a right action",
                    )
                )
                continue
            top = bands.majority(votes)
            unanimous = len(set(votes)) == 1
            if unanimous or (policy.accept == "majority" and top is not None):
                right = top
            else:
                held.append(
                    HeldBack(
                        id=ext,
                        reason="unresolved_disagreement",
                        detail=f"annotators split ({_split(votes)}) and no lead adjudicated",
                    )
                )
                continue
        assert right is not None
        records.append(
            _record(
                schema,
                item,
                right,
                given,
                adj,
                adj_labels,
                policy,
                n_annotators,
                round(float(disagreement[pos]), DIGITS),
            )
        )
    records.sort(key=lambda r: r.id)
    held.sort(key=lambda h: h.id)
    return GoldSelection(records=records, held_back=held, policy=policy, min_annotations=k)


def _record(
    schema: LabelSchema,
    item: Mapping[str, Any],
    right: str,
    given: Mapping[str, list[Any]],
    adj: Mapping[str, Any] | None,
    adj_labels: Mapping[str, Any],
    policy: InclusionPolicy,
    n_annotators: int,
    disagreement: float,
) -> GoldRecord:
    """One gold record from an item's human labels and its adjudication (if any)."""
    ext = str(item["external_id"])
    labels: dict[str, Any] = {}
    soft: dict[str, dict[str, float]] = {}
    for f in schema.choice_fields:
        if f.kind == "multi":
            soft[f.name] = _set_shares(given[f.name], f.values)
            stored = adj_labels.get(f.name)
            labels[f.name] = (
                [v for v in f.values if v in stored]
                if isinstance(stored, list | tuple)
                else _ticked_by_majority(given[f.name], f.values)
            )
        else:
            soft[f.name] = _shares(given[f.name], f.values)
            labels[f.name] = adj_labels.get(f.name) or bands.majority(given[f.name])
    labels[schema.right_action_field] = right
    stored_band = (adj or {}).get("band") or {}
    if stored_band:
        try:
            band = bands.check_band(schema, right, stored_band)
        except ValidationProblem as exc:
            raise ValidationProblem(f"Item `{ext}`: adjudication band: {exc}") from None
    else:
        band = bands.suggest_band(
            schema, right, given[schema.right_action_field], split_credit=policy.split_credit
        )
    conversation = _clean(item.get("conversation"))
    meta = _clean(item.get("meta")) or {}
    return GoldRecord(
        id=ext,
        prompt=_clean(item.get("prompt")),
        conversation=[Turn(role=t["role"], content=t["content"]) for t in conversation]
        if conversation
        else None,
        response=str(item.get("response") or ""),
        model=_clean(item.get("model")),
        source=_clean(item.get("source")),
        category=_clean(item.get("category")),
        group=_clean(item.get("group_id")),
        right_action=right,
        band={a: round(float(c), DIGITS) for a, c in band.items()},
        intent=labels.get("intent"),
        epistemic_status=labels.get("epistemic_status"),
        observed_action=labels.get(schema.observed_action_field),
        failure_categories=list(labels.get(schema.failure_field) or []),
        soft_labels=soft,
        n_annotators=n_annotators,
        disagreement=disagreement,
        adjudicated=adj is not None,
        adjudicated_by=_clean((adj or {}).get("lead")),
        adjudication_note=_clean((adj or {}).get("note")),
        guideline_gap=bool((adj or {}).get("guideline_gap") or False),
        metadata=dict(meta),
    )


def gold_counts(selection: GoldSelection, schema: LabelSchema) -> dict[str, Any]:
    """Counts for the manifest and the card: totals, and gold items by intent/action/category."""
    records = selection.records

    def tally(values: Sequence[str | None], order: Sequence[str] = ()) -> dict[str, int]:
        counts = Counter("(none)" if v is None else v for v in values)
        known = [o for o in order if o in counts]
        rest = sorted(k for k in counts if k not in known)
        return {k: counts[k] for k in [*known, *rest]}

    return {
        "gold": len(records),
        "held_back": len(selection.held_back),
        "items": len(records) + len(selection.held_back),
        "adjudicated": sum(r.adjudicated for r in records),
        "held_back_by_reason": tally([h.reason for h in selection.held_back]),
        "by_intent": tally([r.intent for r in records], _values(schema, "intent")),
        "by_right_action": tally([r.right_action for r in records], schema.right_actions),
        "by_category": tally([r.category for r in records]),
    }


def _values(schema: LabelSchema, name: str) -> list[str]:
    return next((f.values for f in schema.fields if f.name == name), [])
