"""Campaign agreement figures for the lead: per field, per category, judges, summary rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from sqlmodel import Session
from threadpoolctl import threadpool_limits

from annotate import stats as ag
from annotate.accounts.auth import require_role
from annotate.errors import ValidationProblem
from annotate.schema import LabelField, LabelSchema
from annotate.stats import report as rep
from annotate.stats.gwet import GwetEstimate
from annotate.stats.intervals import AlphaInterval
from annotate.storage.models import Campaign, User
from annotate.storage.queries import load_labels
from annotate.table import LabelTable

# Fields that describe the annotator's own state rather than the item: they get an agreement
# figure like any other, but never decide whether an item is unanimous or what its gold is.
PERSONAL_FIELDS = frozenset({"confidence"})

# Krippendorff's (2004) reading: >= .800 reliable, >= .667 tentative conclusions only.
RELIABLE, TENTATIVE = 0.8, 0.667


def reading(alpha: float | None) -> str:
    """Krippendorff's plain-words reading of an alpha: reliable, tentative or unreliable."""
    if alpha is None or not math.isfinite(alpha):
        return "not enough data"
    if alpha >= RELIABLE:
        return "reliable"
    if alpha >= TENTATIVE:
        return "tentative: draw conclusions with care"
    return "unreliable: revisit guidelines or training"


def item_fields(schema: LabelSchema) -> list[LabelField]:
    """Choice fields that describe the item (every choice field but the personal ones)."""
    return [f for f in schema.choice_fields if f.name not in PERSONAL_FIELDS]


class ReportFilters(BaseModel):
    """Which items a figure covers; an empty tuple means no restriction on that attribute.

    `intents` match an item's intent: the adjudicated one if the item is adjudicated, else
    the single most frequent human label (items with a tie match no intent filter).
    """

    model_config = ConfigDict(frozen=True)

    categories: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    intents: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return bool(self.categories or self.models or self.groups or self.intents)


def _consensus_codes(codes: np.ndarray, n_values: int) -> np.ndarray:
    """Per unit, the code of the unique most frequent label, or -1 (none, or a tie)."""
    return _consensus_of_counts(ag.value_counts_from_codes(codes, n_values))


def _consensus_of_counts(counts: np.ndarray) -> np.ndarray:
    """`_consensus_codes` from the units x values counts of the labels."""
    if counts.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    top = counts.max(axis=1)
    unique = ((counts == top[:, None]).sum(axis=1) == 1) & (top > 0)
    return np.where(unique, counts.argmax(axis=1), -1)


def _consensus(
    table: LabelTable, field_name: str, item_ids: Sequence[int], grid: _Grid | None = None
) -> list[Any]:
    """Per item: the adjudicated value of a single field, else the human plurality (or None).

    `grid` (a `_Grid` over `item_ids`, when the caller has one) saves placing the labels again.
    """
    spec = table.schema.field(field_name)
    if grid is not None:
        counts, _ = grid.counts(field_name, spec.values)
        top = _consensus_of_counts(counts)
    else:
        _, _, matrix = table.matrix(field_name, item_ids=list(item_ids))
        codes, _ = ag.encode_labels(matrix, spec.values)
        top = _consensus_codes(codes, len(spec.values))
    values = _named(spec.values, top)
    gold = _gold(table, field_name, item_ids)
    return [g if g is not None else v for g, v in zip(gold, values, strict=True)]


def _named(domain: Sequence[Any], codes: np.ndarray) -> list[Any]:
    """The value of each code, None for -1 (`spec.values` builds a new list per call: once)."""
    named = np.empty(len(domain) + 1, dtype=object)  # the last slot, None, is code -1's
    for code, value in enumerate(domain):
        named[code] = value
    return list(named[codes])


def _gold(table: LabelTable, field_name: str, item_ids: Sequence[int]) -> list[Any]:
    adj = table.adjudications
    if adj.empty:
        return [None] * len(item_ids)
    spec = table.schema.field(field_name)
    # The few adjudicated items' values first, then one look-up per item.
    by_item: dict[Any, Any] = {}
    for item_id, labels in zip(adj["item_id"], adj["labels"], strict=True):
        value = (labels or {}).get(field_name)
        if spec.kind == "multi" and value is not None:
            value = frozenset(value)
        by_item[item_id] = value
    return [by_item.get(item_id) for item_id in item_ids]


def _select_items(table: LabelTable, filters: ReportFilters | None) -> list[int]:
    """Ids of the items that pass `filters` (every item of the table when None)."""
    items = table.items
    keep = np.ones(len(items), dtype=bool)
    if filters is not None:
        for column, wanted in (
            ("category", filters.categories),
            ("model", filters.models),
            ("group_id", filters.groups),
        ):
            if wanted:
                keep &= items[column].isin(list(wanted)).to_numpy()
    ids = [int(i) for i in items["item_id"].to_numpy()[keep]]
    if filters is not None and filters.intents and ids:
        intents = _consensus(table, "intent", ids)
        ids = [i for i, v in zip(ids, intents, strict=True) if v in filters.intents]
    return ids


class _Grid:
    """Where each human annotation sits in an annotators x units matrix, worked out once.

    `LabelTable.matrix` redoes the lookups for every field; a report needs six or seven fields
    over the same units, and at 500,000 annotations the lookups are most of its time. Rows are
    every human with an annotation among the units (one with no value of a field is an empty
    row, which changes no figure).
    """

    def __init__(self, table: LabelTable, units: Sequence[int]) -> None:
        humans = table.humans()
        cols = pd.Index(units).get_indexer(pd.Index(humans["item_id"]))
        keep = cols >= 0
        self.frame = humans[keep]
        rows, names = pd.factorize(self.frame["annotator"], sort=True)
        self.annotators = [str(n) for n in names]
        self.rows, self.cols = rows, cols[keep]
        self.shape = (len(self.annotators), len(units))
        self.table = table  # which holds the label codes, of these rows of its annotations:
        self.positions = np.flatnonzero(~table.annotations["is_machine"].to_numpy(bool))[keep]

    def counts(
        self, field_name: str, labels: Sequence[Any] | None = None
    ) -> tuple[np.ndarray, list[Any]]:
        """(units x values label counts, the value domain) of one field: what
        `value_counts_from_codes(*encode_labels(self.encoded(field_name), labels))` gives, from
        the labels' column without placing them in a matrix first."""
        values = self.frame[field_name].to_numpy(dtype=object)
        codes, domain = ag.encode_labels(values[None, :], labels)
        given = codes[0] >= 0
        n_values = len(domain)
        flat = np.bincount(
            self.cols[given] * n_values + codes[0][given], minlength=self.shape[1] * n_values
        )
        return flat.reshape(self.shape[1], n_values), domain

    def encoded(self, field_name: str) -> ag.EncodedLabels:
        """One field's labels, annotators x units, as codes into its values (-1: missing)."""
        codes, values = self.table.field_codes(field_name)
        out = np.full(self.shape, -1, dtype=np.int64)
        out[self.rows, self.cols] = codes[self.positions]
        return ag.EncodedLabels(out, values)


def _labelled_units(table: LabelTable, item_ids: Sequence[int]) -> list[int]:
    """The items among `item_ids` that at least one human labeled, in id order."""
    ids = np.asarray(item_ids, dtype=np.int64)
    labelled = np.isin(ids, table.humans()["item_id"].to_numpy(dtype=np.int64))
    found: list[int] = np.sort(ids[labelled]).tolist()
    return found


class JudgeFieldAgreement(BaseModel):
    """One automatic judge against the human majority on one field."""

    n_items: int
    agreement: float | None
    alpha: rep.OptionalAlpha = None
    mean_credit: float | None = None


class JudgeAgreement(BaseModel):
    """An automatic judge's labels compared with the human majority, field by field."""

    n_labeled: int
    fields: dict[str, JudgeFieldAgreement]


class CampaignReport(BaseModel):
    """Agreement of a campaign's human annotators; judges apart (`machine_annotators`)."""

    campaign: str
    schema_id: str
    n_items: int
    n_annotators: int
    annotators: list[str]
    overlap: int
    complete_items: int
    coverage: dict[int, int]
    filters: ReportFilters
    n_resamples: int
    fields: dict[str, rep.FieldAgreement]
    failure_categories: rep.FailureCategoryAgreement | None
    machine_annotators: dict[str, JudgeAgreement]

    def to_json_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (alphas that are undefined are None)."""
        return self.model_dump(mode="json")


def campaign_report(
    *,
    session: Session,
    actor: User,
    campaign: Campaign,
    filters: ReportFilters | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> CampaignReport:
    """Load `campaign`'s labels and report their agreement; leads and admins only."""
    require_role(actor, "lead", "see agreement figures", session=session)
    needed = filters is not None and filters.active  # only filters read item attributes
    table = load_labels(session=session, actor=actor, campaign=campaign, with_attributes=needed)
    return agreement_report(
        table,
        actor=actor,
        filters=filters,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )


def agreement_report(
    table: LabelTable,
    *,
    actor: User,
    filters: ReportFilters | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> CampaignReport:
    """Agreement per field with bootstrap intervals, for the items that pass `filters`.

    Every single-choice field gets nominal alpha; the right action also alpha under the band
    distance (1 - the schema's credit), and fields the schema marks `ordered` (intent,
    confidence) ordinal alpha; failure categories get a binary alpha each and a MASI alpha
    over whole sets (empty set = "fine", a label). Units are the filtered items with at least
    one human label; `n_resamples=0` skips intervals. Raises ValidationProblem for a
    negative `n_resamples`, PermissionDenied below the lead role.
    """
    require_role(actor, "lead", "see agreement figures")
    if n_resamples < 0:
        raise ValidationProblem(f"Bootstrap resamples must be 0 or more, got {n_resamples}")
    schema = table.schema
    scope = _select_items(table, filters)
    units = _labelled_units(table, scope)
    singles = [f for f in schema.choice_fields if f.kind == "single"]
    grid = _Grid(table, units)
    matrices = {f.name: grid.encoded(f.name) for f in singles}
    failure = schema.field(schema.failure_field)
    # One BLAS thread, as the bootstrap already had: the products here are small, and on a
    # busy machine a second thread spins rather than helps (half a CPU second at 100,000
    # items; the figures are the same).
    with threadpool_limits(limits=1, user_api="blas"):
        summary = rep.summarize(
            matrices,
            {f.name: f.values for f in singles},
            credit={schema.right_action_field: _credit(schema, schema.right_action_field)},
            # Fields the schema marks as ordered (intent: benign < ambiguous < harmful).
            ordinal=[f.name for f in singles if f.ordered],
            failure_categories=grid.encoded(failure.name),
            categories=failure.values,
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
            annotators=grid.annotators,
            # Annotator models where a suggested gold matters: the right action and the intent.
            models=[f.name for f in singles if f.name in (schema.right_action_field, "intent")],
        )
    humans = table.humans()
    humans = humans[humans["item_id"].isin(set(scope))]
    per_item = humans.groupby("item_id").size()
    coverage = {int(k): int(v) for k, v in per_item.value_counts().items()}  # type: ignore[call-overload]
    coverage[0] = len(scope) - len(per_item)
    return CampaignReport(
        campaign=table.campaign.name,
        schema_id=schema.id,
        n_items=len(scope),
        n_annotators=int(humans["annotator"].nunique()),
        annotators=sorted(humans["annotator"].unique().tolist()),
        overlap=table.campaign.overlap,
        complete_items=int((per_item >= table.campaign.overlap).sum()),
        coverage=dict(sorted(coverage.items())),
        filters=filters or ReportFilters(),
        n_resamples=n_resamples,
        fields=summary.fields,
        failure_categories=summary.failure_categories,
        machine_annotators=_judges(table, scope),
    )


def _credit(schema: LabelSchema, field_name: str) -> np.ndarray:
    """The schema's symmetrised credits restricted to the options of `field_name`, in order.

    Agreement between annotators uses `(credit[a][b] + credit[b][a]) / 2`: neither annotator
    is the reference. For a version 1 schema (symmetric pairs) this is the credit matrix itself.
    """
    actions = schema.action_labels
    index = [actions.index(v) for v in schema.field(field_name).values]
    full = schema.symmetric_credit_matrix()
    return full[np.ix_(index, index)]


def _metric(schema: LabelSchema, field_name: str) -> ag.Metric:
    """The distance a field's per-item and per-annotator figures use."""
    if field_name == schema.right_action_field:
        return ag.band_distance(_credit(schema, field_name))
    return "nominal"


def _judges(table: LabelTable, scope: Sequence[int]) -> dict[str, JudgeAgreement]:
    """Each automatic judge against the human plurality label, per single-choice field."""
    machines = table.machines()
    machines = machines[machines["item_id"].isin(set(scope))]
    if machines.empty:
        return {}
    schema = table.schema
    units = sorted(set(machines["item_id"].tolist()))
    out: dict[str, JudgeAgreement] = {}
    majority: dict[str, list[Any]] = {}
    for spec in schema.choice_fields:
        if spec.kind != "single":
            continue
        _, _, human = table.matrix(spec.name, item_ids=units)
        codes, _ = ag.encode_labels(human, spec.values)
        majority[spec.name] = _named(spec.values, _consensus_codes(codes, len(spec.values)))
    for judge in sorted(machines["annotator"].unique().tolist()):
        mine = machines[machines["annotator"] == judge]
        fields: dict[str, JudgeFieldAgreement] = {}
        for name, human_values in majority.items():
            given = mine[mine[name].notna()]
            by_item = dict(zip(given["item_id"], given[name], strict=True))
            judged = [by_item.get(u) for u in units]
            both = [
                (j, h)
                for j, h in zip(judged, human_values, strict=True)
                if j is not None and h is not None
            ]
            if not both:
                continue
            spec = schema.field(name)
            pair = [[j for j, _ in both], [h for _, h in both]]
            entry = JudgeFieldAgreement(
                n_items=len(both),
                agreement=sum(j == h for j, h in both) / len(both),
                alpha=ag.alpha(pair, "nominal", spec.values),
            )
            if name == schema.right_action_field:
                entry.mean_credit = sum(schema.credit(h, j) for j, h in both) / len(both)
            fields[name] = entry
        out[judge] = JudgeAgreement(n_labeled=len(mine), fields=fields)
    return out


# The interval's reading (annotate.stats.intervals) in the words the pages and the CLI show.
INTERVAL_READINGS = {
    "reliable": "reliable",
    "tentative": "tentative: draw conclusions with care",
    "uncertain": f"uncertain: may well be below {TENTATIVE}; label more items",
    "unreliable": "unreliable: revisit guidelines or training",
}
NO_INTERVAL = {
    "no_variation": "no variation: alpha undefined (everyone chose the same value)",
    "too_few_units": "not enough items with two labels",
    "degenerate": "no spread across resamples: label more items",
}


def interval_reading(
    interval: AlphaInterval | None, alpha: float | None, units: int | None = None
) -> str:
    """The plain-words reading of an alpha, from its interval when there is one.

    "reliable" needs P(alpha < 0.8) under 5%, not only a point above 0.8; without an
    interval the point's reading is given and says it stands alone.
    """
    if units == 0:
        return NO_INTERVAL["too_few_units"]
    if interval is not None and interval.status in NO_INTERVAL:
        return NO_INTERVAL[interval.status]
    if interval is not None and interval.status == "ok":
        return INTERVAL_READINGS[interval.reading]
    if alpha is None or not math.isfinite(alpha):
        return reading(alpha)
    return f"{reading(alpha)} (point only: no interval)"


NO_INTERVAL_VERDICTS = {
    "no_variation": "no variation",
    "too_few_units": "too few items",
    "degenerate": "no spread",
}


def verdict(interval: AlphaInterval | None, alpha: float | None, units: int | None = None) -> str:
    """The reading in a word or two (the table's column; `interval_reading` spells it out)."""
    if units == 0:
        return NO_INTERVAL_VERDICTS["too_few_units"]
    if interval is not None and interval.status in NO_INTERVAL_VERDICTS:
        return NO_INTERVAL_VERDICTS[interval.status]
    if interval is not None and interval.status == "ok":
        return str(interval.reading)
    if alpha is None or not math.isfinite(alpha):
        return "no data"
    return reading(alpha).split(":")[0] + " (point)"


def summary_rows(report: CampaignReport) -> list[dict[str, Any]]:
    """The report's headline figures as rows: what the CLI's table and the dashboard show.

    One row per field (and its banded / ordinal variant), per failure category and for MASI:
    the measure, alpha, its BCa interval (None when there is none, and the reading says why),
    the probabilities that alpha is below 0.667 and 0.8, the resamples used, the items with
    two or more labels, Gwet's AC1 (AC2 on the banded row) and the reading.
    """
    rows: list[dict[str, Any]] = []

    def add(
        measure: str,
        alpha: float | None,
        interval: AlphaInterval | None,
        units: int,
        gwet: GwetEstimate | None = None,
    ) -> None:
        ci = interval.ci if interval is not None else None
        p_below = (interval.p_below or {}) if interval is not None else {}
        rows.append(
            {
                "measure": measure,
                "alpha": alpha,
                "ci_low": ci[0] if ci else None,
                "ci_high": ci[1] if ci else None,
                "p_below_tentative": p_below.get(f"{TENTATIVE:g}"),
                "p_below_reliable": p_below.get(f"{RELIABLE:g}"),
                "resamples": interval.n_used if interval is not None else 0,
                "n_units": int(units),
                "gwet": None if gwet is None else gwet.coefficient,
                "gwet_se": None if gwet is None else gwet.se,
                "verdict": verdict(interval, alpha, units),
                "reading": interval_reading(interval, alpha, units),
                "note": interval.note if interval is not None else "",
            }
        )

    for name, entry in report.fields.items():
        add(name, entry.alpha, entry.interval, entry.n_units, entry.ac1)
        if "banded_alpha" in entry.model_fields_set:
            add(
                f"{name} (banded)",
                entry.banded_alpha,
                entry.banded_interval,
                entry.n_units,
                entry.ac2,
            )
        if "ordinal_alpha" in entry.model_fields_set:
            add(f"{name} (ordinal)", entry.ordinal_alpha, entry.ordinal_interval, entry.n_units)
    failure = report.failure_categories
    if failure is not None:
        add("failure categories (MASI)", failure.masi_alpha, failure.masi_interval, failure.n_units)
        for category, value in failure.per_category.items():
            add(f"failure: {category}", value.alpha, value.interval, failure.n_units)
    return rows
