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
  strict majority (a tie gives None); failure categories ticked by a strict majority of the
  annotators who gave the field. A field no annotator gave (and the lead left unset) is None:
  missing, never the empty selection `[]`, which says that people looked and ticked nothing.
- The band is the lead's band when the adjudication has one, else `bands.suggest_band`: the
  schema's credits around the right action, widened by how annotators split. For a unanimous
  item that is exactly the schema's default band; with `accept="majority"` an action chosen by
  a third or more of the annotators earns at least 0.5.
- `soft_labels` give, per choice field, the share of the human annotators who gave that field
  choosing each value (values nobody chose are left out; for failure categories, the share
  ticking each); `disagreement` is the expected pairwise band distance between annotators'
  right actions (1 - credit), from `stats.disagreement_scores`.
- Records under refusal-v2 also carry its label fields, `resolution` and `disagreement_cause`
  (see schema_keys.py).

Records come out as JSON-ready dicts in `GoldRecord` field order (what the writers need, and
fast for 100,000 items); `GoldSelection.records` validates them into `GoldRecord`s on demand.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from annotate import stats
from annotate.errors import ValidationProblem
from annotate.release.record import GoldRecord
from annotate.release.schema_keys import add_schema_keys
from annotate.schema import LabelSchema
from annotate.stats import bands

if TYPE_CHECKING:
    from annotate.table import LabelTable

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


@dataclass
class GoldSelection:
    """The outcome of selection: gold rows and held-back items, both sorted by id."""

    rows: list[dict[str, Any]]
    held_back: list[HeldBack]
    policy: InclusionPolicy
    min_annotations: int

    @property
    def records(self) -> list[GoldRecord]:
        """The gold rows validated as `GoldRecord`s."""
        return [GoldRecord.model_validate(r) for r in self.rows]


def _clean(value: Any) -> Any:
    """pandas hands missing values back as None or NaN; files want None."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value


def _column(frame: pd.DataFrame, name: str) -> list[Any]:
    """A column as a list with None for missing values (pandas may give NaN)."""
    if name not in frame:
        return [None] * len(frame)
    column = frame[name].astype(object)
    return column.where(column.notna(), None).tolist()


def _option_codes(values: pd.Series, options: Sequence[str]) -> npt.NDArray[np.int64]:
    """Per value the index of its option, -1 for a missing value or one that is no option."""
    found, distinct = pd.factorize(values.to_numpy(dtype=object))
    index = {o: i for i, o in enumerate(options)}
    # One slot more, for factorize's -1 (missing).
    lookup = np.array([index.get(v, -1) for v in distinct] + [-1], dtype=np.int64)
    return lookup[found]


def _single_counts(
    values: pd.Series, options: Sequence[str], position: npt.NDArray[np.int64], n_items: int
) -> npt.NDArray[np.int64]:
    """items x options: how many human annotators chose each option of a single-choice field."""
    codes = _option_codes(values, options)
    given = codes >= 0
    flat = np.bincount(
        position[given] * len(options) + codes[given], minlength=n_items * len(options)
    )
    return flat.reshape(n_items, len(options))


def _multi_counts(
    values: pd.Series, options: Sequence[str], position: npt.NDArray[np.int64], n_items: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(items x options ticks, items: annotators who gave the field) of a multi-choice field."""
    bit = {o: 1 << i for i, o in enumerate(options)}
    # Few distinct selections per campaign: turn each into a bit mask once.
    masks: dict[Any, int] = {}
    coded = np.empty(len(values), dtype=np.int64)
    for row, selection in enumerate(values.tolist()):
        if selection not in masks:
            masks[selection] = (
                sum(bit.get(v, 0) for v in selection)
                if isinstance(selection, frozenset | set | list | tuple)
                else -1
            )
        coded[row] = masks[selection]
    given = coded >= 0
    ticks = np.stack(
        [
            np.bincount(position[given], weights=(coded[given] >> i) & 1, minlength=n_items)
            for i in range(len(options))
        ],
        axis=1,
    ).astype(np.int64)
    return ticks, np.bincount(position[given], minlength=n_items)


def _sparse_shares(
    counts: npt.NDArray[np.int64], totals: npt.NDArray[np.int64], options: Sequence[str]
) -> list[dict[str, float]]:
    """Per item `{option: share}` for the options with a share > 0, in schema order."""
    # Items repeat few count rows: work out each distinct one once, copy it per item.
    keyed = np.concatenate([counts, totals[:, None]], axis=1)
    first, inverse = _distinct_rows(keyed)
    counts, totals = counts[first], totals[first]
    templates: list[dict[str, float]] = [{} for _ in range(len(counts))]
    rows, cols = np.nonzero(counts)
    shares = np.round(counts[rows, cols] / np.maximum(totals[rows], 1), DIGITS)
    for r, c, share in zip(rows.tolist(), cols.tolist(), shares.tolist(), strict=True):
        templates[r][options[c]] = share
    return [templates[i].copy() for i in inverse.tolist()]


def _distinct_rows(
    matrix: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(first row of each distinct row, each row's index among those) of a count matrix.

    Rows of small counts are read as the digits of one integer, which numpy sorts fast (rows
    compared as records sort a hundred times slower); every row is its own when they do not
    fit in 63 bits.
    """
    n_rows, n_cols = matrix.shape
    base = int(matrix.max(initial=0)) + 1
    if n_cols * math.log2(base) >= 63 or matrix.min(initial=0) < 0:
        return np.arange(n_rows), np.arange(n_rows)
    keys = matrix @ (base ** np.arange(n_cols, dtype=np.int64))
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def _majority(counts: npt.NDArray[np.int64], options: Sequence[str]) -> list[str | None]:
    """Per item the option more than half the annotators chose (bands.majority), else None."""
    top = counts.argmax(axis=1)
    wins = counts.max(axis=1) * 2 > counts.sum(axis=1)
    return [options[t] if w else None for t, w in zip(top.tolist(), wins.tolist(), strict=True)]


def _split(row: npt.NDArray[np.int64], options: Sequence[str]) -> dict[str, int]:
    """`{option: votes}` for the options someone chose."""
    return {options[j]: n for j, n in enumerate(row.tolist()) if n}


def select_gold(table: LabelTable, policy: InclusionPolicy | None = None) -> GoldSelection:
    """Apply `policy` to every item of `table`: gold rows and held-back items, sorted by id.

    `table` must be loaded `with_text=True`. Raises ValidationProblem when a stored
    adjudication band breaks the schema (unknown action, right action not at 1).
    """
    policy = policy or InclusionPolicy()
    schema = table.schema
    k = policy.min_annotations or int(table.campaign.overlap)
    humans = table.humans()
    items = table.items
    n_items = len(items)
    ra_field = schema.right_action_field
    position = (
        pd.Index(items["item_id"]).get_indexer(humans["item_id"]).astype(np.int64)
        if len(humans)
        else np.zeros(0, dtype=np.int64)
    )
    humans, position = humans[position >= 0], position[position >= 0]
    n_annotators = np.bincount(position, minlength=n_items)
    votes = np.zeros((n_items, len(schema.right_actions)), dtype=np.int64)

    soft: dict[str, list[dict[str, float]]] = {}
    majority: dict[str, list[Any]] = {}
    for f in schema.choice_fields:
        if f.kind == "multi":
            ticks, given = _multi_counts(humans[f.name], f.values, position, n_items)
            soft[f.name] = _sparse_shares(ticks, given, f.values)
            ticked: list[list[str] | None] = [[] if g else None for g in given.tolist()]
            rows_, cols_ = np.nonzero(ticks * 2 > given[:, None])
            for r, c in zip(rows_.tolist(), cols_.tolist(), strict=True):
                ticked[r].append(f.values[c])  # type: ignore[union-attr]  # given > 0 here
            majority[f.name] = ticked
        else:
            counts = _single_counts(humans[f.name], f.values, position, n_items)
            soft[f.name] = _sparse_shares(counts, counts.sum(axis=1), f.values)
            majority[f.name] = _majority(counts, f.values)
            if f.name == ra_field:
                votes = counts
    n_votes = votes.sum(axis=1)
    unanimous = (votes.max(axis=1) == n_votes) & (n_votes > 0)

    _, _, matrix = table.matrix(ra_field, item_ids=items["item_id"].tolist())
    disagreement = (
        stats.disagreement_scores(
            matrix,
            stats.band_distance(schema.symmetric_credit_matrix()),  # annotators: symmetrised
            labels=schema.action_labels,
        )
        if matrix.size
        else np.zeros(n_items)
    )
    item_ids = items["item_id"].tolist()
    at = {item_id: pos for pos, item_id in enumerate(item_ids)}
    adjudications: dict[int, dict[str, Any]] = {
        at[int(row["item_id"])]: {str(k): v for k, v in row.items()}
        for row in table.adjudications.to_dict("records")
        if int(row["item_id"]) in at
    }
    text = {
        c: _column(items, c)
        for c in ("external_id", "prompt", "conversation", "response", "model", "source")
        + ("category", "group_id", "meta")
    }
    ids = [str(v) for v in text["external_id"]]
    soft_names = list(soft)
    soft_rows = [
        dict(zip(soft_names, shares, strict=True)) for shares in zip(*soft.values(), strict=True)
    ]
    no_value = [None] * n_items
    intent, epistemic, observed = (
        majority.get(name, no_value)
        for name in ("intent", "epistemic_status", schema.observed_action_field)
    )
    top = majority[ra_field]

    # Which items are gold, decided for all items at once; the reasons for the rest.
    lead_right: list[str | None] = [None] * n_items
    for pos, decided in adjudications.items():
        lead_right[pos] = (decided.get("labels") or {}).get(ra_field) or None
    named = np.array([r is not None for r in lead_right], dtype=bool)
    has_top = np.array([t is not None for t in top], dtype=bool)
    too_few = n_annotators < k
    no_right = ~too_few & ~named & (n_votes < k)
    voted = unanimous | (has_top & (policy.accept == "majority"))
    split = ~too_few & ~named & ~no_right & ~voted
    reasons: list[HeldBackReason] = ["too_few_labels", "no_right_action", "unresolved_disagreement"]
    reason_at = np.select([too_few, no_right, split], [0, 1, 2], default=-1)
    held = [
        _held_back(
            ids[pos],
            reasons[int(reason_at[pos])],
            int(n_annotators[pos]),
            int(n_votes[pos]),
            k,
            votes[pos],
            schema,
        )
        for pos in np.flatnonzero(reason_at >= 0).tolist()
    ]
    gold = np.flatnonzero(reason_at < 0).tolist()
    right = [lead_right[pos] or top[pos] for pos in gold]

    default_bands = {
        a: {b: round(c, DIGITS) for b, c in schema.default_band(a).items()}
        for a in schema.right_actions
    }
    unanimous_at = unanimous.tolist()
    band_of: list[dict[str, float]] = []
    for pos, action in zip(gold, right, strict=True):
        adj = adjudications.get(pos)
        if adj is None and unanimous_at[pos]:
            band_of.append(dict(default_bands[action]))  # already rounded
            continue
        stored = (adj or {}).get("band") or {}
        if stored:
            try:
                band = bands.check_band(schema, action, stored)
            except ValidationProblem as exc:
                raise ValidationProblem(f"Item `{ids[pos]}`: adjudication band: {exc}") from None
        else:
            band = bands.suggest_band(
                schema,
                action,
                _split(votes[pos], schema.right_actions),
                split_credit=policy.split_credit,
            )
        band_of.append({a: round(float(c), DIGITS) for a, c in band.items()})

    # Gold rows column by column (Python lists: indexing numpy arrays one element at a time is
    # slow over 100,000 items), then the lead's values over the adjudicated ones.
    n_annotators_at = n_annotators.tolist()
    disagreement_at = np.round(disagreement, DIGITS).tolist()
    failure_majority = majority[schema.failure_field]
    prompt, conversation, response = text["prompt"], text["conversation"], text["response"]
    model, source, category, group = (text[c] for c in ("model", "source", "category", "group_id"))
    meta = text["meta"]
    rows = [
        {
            "id": ids[pos],
            "prompt": prompt[pos],
            "conversation": _turns(conversation[pos]),
            "response": str(response[pos] or ""),
            "model": model[pos],
            "source": source[pos],
            "category": category[pos],
            "group": group[pos],
            "right_action": action,
            "band": band,
            "intent": intent[pos],
            "epistemic_status": epistemic[pos],
            "observed_action": observed[pos],
            "failure_categories": failure_majority[pos],
            "soft_labels": soft_rows[pos],
            "n_annotators": n_annotators_at[pos],
            "disagreement": disagreement_at[pos],
            "adjudicated": False,
            "adjudicated_by": None,
            "adjudication_note": None,
            "guideline_gap": False,
            "metadata": meta[pos] or {},
        }
        for pos, action, band in zip(gold, right, band_of, strict=True)
    ]
    for pos, row in zip(gold, rows, strict=True):
        if pos in adjudications:
            _apply_adjudication(row, adjudications[pos], schema)
    rows = add_schema_keys(rows, gold, schema, majority, adjudications, votes)
    order = sorted(range(len(rows)), key=lambda i: rows[i]["id"])
    held.sort(key=lambda h: h.id)
    return GoldSelection(
        rows=[rows[i] for i in order], held_back=held, policy=policy, min_annotations=k
    )


def _turns(conversation: Any) -> list[dict[str, str]] | None:
    """A conversation as the record holds it: role and content of each turn, as text."""
    if not conversation:
        return None
    return [{"role": str(t["role"]), "content": str(t["content"])} for t in conversation]


def _held_back(
    ext: str,
    reason: HeldBackReason,
    n_annotators: int,
    n_votes: int,
    k: int,
    votes: npt.NDArray[np.int64],
    schema: LabelSchema,
) -> HeldBack:
    """Item `ext`, held back for `reason`, with the counts that say why."""
    if reason == "too_few_labels":
        detail = f"{n_annotators} of {k} required human annotations"
    elif reason == "no_right_action":
        detail = f"{n_votes} of {k} required annotations name a right action"
    else:
        listed = sorted(_split(votes, schema.right_actions).items(), key=lambda x: -x[1])
        detail = (
            f"annotators split ({', '.join(f'{v} {n}' for v, n in listed)}) and no lead adjudicated"
        )
    return HeldBack(id=ext, reason=reason, detail=detail)


def _apply_adjudication(row: dict[str, Any], adj: Mapping[str, Any], schema: LabelSchema) -> None:
    """A gold row of an adjudicated item: the lead's single-choice values and failure
    categories where the adjudication has them, and who adjudicated."""
    labels: Mapping[str, Any] = adj.get("labels") or {}
    singles = {f.name for f in schema.choice_fields if f.kind == "single"}
    for key, name in (
        ("intent", "intent"),
        ("epistemic_status", "epistemic_status"),
        ("observed_action", schema.observed_action_field),
    ):
        if name in singles and labels.get(name) not in (None, ""):
            row[key] = labels[name]
    failures = labels.get(schema.failure_field)
    # A lead who left the field unset (None) leaves the annotators' value in place.
    if isinstance(failures, list | tuple):
        values = schema.field(schema.failure_field).values
        row["failure_categories"] = [v for v in values if v in failures]
    row["adjudicated"] = True
    row["adjudicated_by"] = _clean(adj.get("lead"))
    row["adjudication_note"] = _clean(adj.get("note"))
    row["guideline_gap"] = bool(adj.get("guideline_gap") or False)


def gold_counts(selection: GoldSelection, schema: LabelSchema) -> dict[str, Any]:
    """Counts for the manifest and the card: totals, and gold items by intent/action/category."""
    rows = selection.rows

    def tally(values: Sequence[str | None], order: Sequence[str] = ()) -> dict[str, int]:
        counts = Counter("(none)" if v is None else v for v in values)
        known = [o for o in order if o in counts]
        rest = sorted(k for k in counts if k not in known)
        return {k: counts[k] for k in [*known, *rest]}

    return {
        "gold": len(rows),
        "held_back": len(selection.held_back),
        "items": len(rows) + len(selection.held_back),
        "adjudicated": sum(bool(r["adjudicated"]) for r in rows),
        "held_back_by_reason": tally([h.reason for h in selection.held_back]),
        "by_intent": tally([r["intent"] for r in rows], _values(schema, "intent")),
        "by_right_action": tally([r["right_action"] for r in rows], schema.right_actions),
        "by_category": tally([r["category"] for r in rows]),
    }


def _values(schema: LabelSchema, name: str) -> list[str]:
    return next((f.values for f in schema.fields if f.name == name), [])
