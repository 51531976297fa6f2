"""The campaign agreement report a lead reads: figures per field, annotator, item and period.

Every public function checks the lead role itself (labeling is blind: annotators never see
agreement figures or other people's labels), then works on a `LabelTable` from
`queries.load_labels`. The statistics come from the pure `agreement` and `agreement_report`
modules; this module only chooses the units, fields and distances from the campaign's schema.

Human annotators give the headline figures. Automatic judges (`User.is_machine`) are reported
apart, each against the human majority (the single most common human label of the item), so
that a judge can neither raise nor lower them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func
from sqlmodel import Session, select
from threadpoolctl import threadpool_limits

from annotate import agreement as ag
from annotate import agreement_report as rep
from annotate.auth import require_role
from annotate.errors import ValidationProblem
from annotate.models import Adjudication, Annotation, Campaign, User
from annotate.queries import LabelTable, load_labels
from annotate.schema import LabelField, LabelSchema

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


# -- filters ---------------------------------------------------------------------------------


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
    counts = ag.value_counts_from_codes(codes, n_values)
    if counts.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    top = counts.max(axis=1)
    unique = ((counts == top[:, None]).sum(axis=1) == 1) & (top > 0)
    return np.where(unique, counts.argmax(axis=1), -1)


def _consensus(table: LabelTable, field_name: str, item_ids: Sequence[int]) -> list[Any]:
    """Per item: the adjudicated value of a single field, else the human plurality (or None)."""
    spec = table.schema.field(field_name)
    _, _, matrix = table.matrix(field_name, item_ids=list(item_ids))
    codes, _ = ag.encode_labels(matrix, spec.values)
    top = _consensus_codes(codes, len(spec.values))
    values: list[Any] = [spec.values[c] if c >= 0 else None for c in top]
    gold = _gold(table, field_name, item_ids)
    return [g if g is not None else v for g, v in zip(gold, values, strict=True)]


def _gold(table: LabelTable, field_name: str, item_ids: Sequence[int]) -> list[Any]:
    adj = table.adjudications
    if adj.empty:
        return [None] * len(item_ids)
    by_item = dict(zip(adj["item_id"], adj["labels"], strict=True))
    spec = table.schema.field(field_name)
    out: list[Any] = []
    for item_id in item_ids:
        value = (by_item.get(item_id) or {}).get(field_name)
        if spec.kind == "multi" and value is not None:
            value = frozenset(value)
        out.append(value)
    return out


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

    def matrix(self, field_name: str) -> np.ndarray:
        """Annotators x units object array of one field; None where missing."""
        out = np.full(self.shape, None, dtype=object)
        values = self.frame[field_name].to_numpy(dtype=object)
        given = pd.notna(values)
        out[self.rows[given], self.cols[given]] = values[given]
        return out


def _labelled_units(table: LabelTable, item_ids: Sequence[int]) -> list[int]:
    """The items among `item_ids` that at least one human labeled, in id order."""
    labelled = set(table.humans()["item_id"].tolist())
    return sorted(i for i in item_ids if i in labelled)


# -- the campaign report ---------------------------------------------------------------------


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
    require_role(actor, "lead", "see agreement figures")
    table = load_labels(session=session, actor=actor, campaign=campaign)
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
    matrices = {f.name: grid.matrix(f.name) for f in singles}
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
            failure_categories=grid.matrix(failure.name),
            categories=failure.values,
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
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
    """The schema's credit matrix restricted to the options of `field_name`, in their order."""
    actions = schema.action_labels
    index = [actions.index(v) for v in schema.field(field_name).values]
    full = schema.credit_matrix()
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
        majority[spec.name] = [
            spec.values[c] if c >= 0 else None for c in _consensus_codes(codes, len(spec.values))
        ]
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


def summary_rows(report: CampaignReport) -> list[dict[str, Any]]:
    """The report's headline figures as rows (measure, alpha, interval, units, reading).

    One row per field (and its banded / ordinal variant), per failure category and for MASI:
    what the CLI's table and the dashboard show, so that both read the same.
    """
    rows: list[dict[str, Any]] = []

    def add(measure: str, alpha: float | None, ci: Any, units: int) -> None:
        rows.append(
            {
                "measure": measure,
                "alpha": alpha,
                "ci_low": ci[0] if ci else None,
                "ci_high": ci[1] if ci else None,
                "n_units": units,
                "reading": reading(alpha),
            }
        )

    for name, entry in report.fields.items():
        add(name, entry.alpha, entry.ci, entry.n_units)
        if "banded_alpha" in entry.model_fields_set:
            add(f"{name} (banded)", entry.banded_alpha, entry.banded_ci, entry.n_units)
        if "ordinal_alpha" in entry.model_fields_set:
            add(f"{name} (ordinal)", entry.ordinal_alpha, entry.ordinal_ci, entry.n_units)
    failure = report.failure_categories
    if failure is not None:
        add("failure categories (MASI)", failure.masi_alpha, failure.masi_ci, failure.n_units)
        for category, value in failure.per_category.items():
            add(f"failure: {category}", value.alpha, value.ci, failure.n_units)
    return rows


# -- per annotator ---------------------------------------------------------------------------


def _single_field(table: LabelTable, field_name: str) -> LabelField:
    spec = table.schema.field(field_name)
    if spec.kind != "single":
        raise ValidationProblem(f"`{field_name}` is not a single-choice field")
    return spec


def annotator_table(
    table: LabelTable,
    *,
    actor: User,
    field: str = "right_action",
    filters: ReportFilters | None = None,
) -> pd.DataFrame:
    """One row per human annotator on one field: volume, pace, label mix, agreement.

    Columns: n_labeled, tvd (label mix against the campaign's, 0 same to 1 disjoint),
    alpha_without and alpha_delta (leave-one-out: positive when the annotator raises
    agreement), n_gold and gold_agreement (mean credit against adjudicated labels, under the
    band for the right action), seconds_per_item (median), mean_kappa (mean pairwise Cohen's
    kappa with the others).
    """
    require_role(actor, "lead", "see agreement figures")
    spec = _single_field(table, field)
    units = _labelled_units(table, _select_items(table, filters))
    annotators, _, matrix = table.matrix(field, item_ids=units)
    columns = [
        "n_labeled",
        "tvd",
        "alpha_without",
        "alpha_delta",
        "n_gold",
        "gold_agreement",
        "seconds_per_item",
        "mean_kappa",
    ]
    if not annotators:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="annotator"))
    frame = rep.annotator_report(
        matrix,
        spec.values,
        level=_metric(table.schema, field),
        annotators=annotators,
        gold=_gold(table, field, units),
        durations=_durations(table, annotators, units),
    )
    kappa = rep.pairwise_kappa(matrix, spec.values, annotators=annotators)
    off = kappa.where(~np.eye(len(annotators), dtype=bool))
    frame["mean_kappa"] = off.mean(axis=1, skipna=True)
    return frame[columns]


def _durations(table: LabelTable, annotators: list[str], units: list[int]) -> np.ndarray:
    out = np.full((len(annotators), len(units)), np.nan)
    humans = table.humans()
    a_index = {a: i for i, a in enumerate(annotators)}
    u_index = {u: i for i, u in enumerate(units)}
    rows = humans["annotator"].map(a_index)
    cols = humans["item_id"].map(u_index)
    keep = (rows.notna() & cols.notna()).to_numpy()
    seconds = pd.to_numeric(humans["duration_s"], errors="coerce").to_numpy(dtype=float)
    out[rows[keep].astype(int).to_numpy(), cols[keep].astype(int).to_numpy()] = seconds[keep]
    return out


def kappa_matrix(
    table: LabelTable, *, actor: User, field: str, filters: ReportFilters | None = None
) -> pd.DataFrame:
    """Cohen's kappa between every two human annotators on `field` (NaN without overlap)."""
    require_role(actor, "lead", "see agreement figures")
    spec = _single_field(table, field)
    units = _labelled_units(table, _select_items(table, filters))
    annotators, _, matrix = table.matrix(field, item_ids=units)
    return rep.pairwise_kappa(matrix, spec.values, annotators=annotators)


def label_distribution(
    table: LabelTable, *, actor: User, field: str, filters: ReportFilters | None = None
) -> pd.DataFrame:
    """Share of each value per human annotator, with a last row `(campaign)` for everyone.

    For the multi-choice field the share is of labels ticking each category.
    """
    require_role(actor, "lead", "see agreement figures")
    spec = table.schema.field(field)
    scope = set(_select_items(table, filters))
    humans = table.humans()
    humans = humans[humans["item_id"].isin(scope) & humans[field].notna()]
    if spec.kind == "multi":
        ticks = pd.DataFrame(
            {v: humans[field].map(lambda s, v=v: v in s) for v in spec.values},
            index=humans.index,
        ).astype(float)
        ticks["annotator"] = humans["annotator"]
        shares = ticks.groupby("annotator").mean()
        shares.loc["(campaign)"] = ticks[spec.values].mean()
        return shares.fillna(0.0)
    counts = pd.crosstab(humans["annotator"], humans[field]).reindex(
        columns=spec.values, fill_value=0
    )
    counts.loc["(campaign)"] = counts.sum()
    totals = counts.sum(axis=1).replace(0, 1)
    return counts.div(totals, axis=0)


def confusion(
    table: LabelTable,
    *,
    actor: User,
    field: str,
    pair: tuple[str, str] | None = None,
    filters: ReportFilters | None = None,
) -> pd.DataFrame:
    """Long frame (first, second, count) of how annotators' labels meet on the same items.

    Without `pair`: Krippendorff's coincidence matrix over every two human annotators (each
    item weighted 1 / (labels - 1), symmetric). With `pair=(a, b)`: a's label against b's on
    the items both labeled.
    """
    require_role(actor, "lead", "see agreement figures")
    spec = _single_field(table, field)
    units = _labelled_units(table, _select_items(table, filters))
    annotators, _, matrix = table.matrix(field, item_ids=units)
    if pair is None:
        counts = ag.coincidence_matrix(matrix, spec.values)
    else:
        missing = [a for a in pair if a not in annotators]
        if missing:
            raise ValidationProblem(f"No labels of `{field}` by `{missing[0]}` here")
        first, second = (matrix[annotators.index(a)] for a in pair)
        counts = np.zeros((len(spec.values), len(spec.values)))
        index = {v: i for i, v in enumerate(spec.values)}
        for x, y in zip(first, second, strict=True):
            if x is not None and y is not None:
                counts[index[x], index[y]] += 1
    rows = [
        {"first": a, "second": b, "count": float(counts[i, j])}
        for i, a in enumerate(spec.values)
        for j, b in enumerate(spec.values)
    ]
    return pd.DataFrame(rows, columns=["first", "second", "count"])


# -- per item --------------------------------------------------------------------------------


def item_disagreement(
    table: LabelTable, *, actor: User, filters: ReportFilters | None = None
) -> pd.DataFrame:
    """One row per filtered item with human labels: how far its annotators disagree.

    `disagreement` is the mean distance between two annotators' right actions under the band
    distance (0 unanimous, up to 1); `d_<field>` the same per item field (nominal; MASI for
    failure categories) and `other_disagreement` their mean over the fields other than the
    right action. `unanimous` is True when every human gave the same value of every item
    field and all of them gave each required one. Also: n_labels (humans), majority (right
    action chosen by more than half), flagged (any annotator flagged it), adjudicated, method.
    """
    require_role(actor, "lead", "see agreement figures")
    schema = table.schema
    units = _labelled_units(table, _select_items(table, filters))
    humans = table.humans()
    humans = humans[humans["item_id"].isin(set(units))]
    n_labels = humans.groupby("item_id").size().reindex(units, fill_value=0).to_numpy()
    flagged = humans.groupby("item_id")["flagged"].any().reindex(units, fill_value=False)
    frame = table.items.loc[units, ["item_id", "external_id", "model", "category", "group_id"]]
    frame = frame.reset_index(drop=True)
    frame["n_labels"] = n_labels
    unanimous = n_labels > 0
    other: list[np.ndarray] = []
    grid = _Grid(table, units)
    for spec in item_fields(schema):
        matrix = grid.matrix(spec.name)
        domain: list[Any]
        if spec.kind == "multi":
            codes, domain = ag.encode_labels(matrix)
            metric: ag.Metric = ag.masi_distance_matrix(cast(list[frozenset[str]], domain))
        else:
            codes, domain = ag.encode_labels(matrix, spec.values)
            metric = _metric(schema, spec.name)
        scores = (
            ag.disagreement_scores(matrix, metric, domain)
            if len(domain) >= 2
            else np.zeros(len(units))
        )
        frame[f"d_{spec.name}"] = scores
        counts = ag.value_counts_from_codes(codes, len(domain)) if units else np.zeros((0, 1))
        labelled = counts.sum(axis=1)
        top = counts.max(axis=1) if counts.shape[1] else np.zeros(len(units))
        agreed = (labelled == n_labels) & (top == n_labels)
        unanimous &= agreed if spec.required else (agreed | (labelled == 0))
        if spec.name == schema.right_action_field:
            frame["disagreement"] = scores
            majority = np.where(top * 2 > labelled, counts.argmax(axis=1), -1)
            frame["majority"] = [domain[m] if m >= 0 else None for m in majority]
        else:
            other.append(scores)
    frame["other_disagreement"] = np.mean(other, axis=0) if other else 0.0
    frame["unanimous"] = unanimous
    frame["flagged"] = flagged.to_numpy()
    adj = table.adjudications.set_index("item_id") if not table.adjudications.empty else None
    frame["adjudicated"] = frame["item_id"].isin(adj.index) if adj is not None else False
    frame["method"] = frame["item_id"].map(adj["method"]) if adj is not None else None
    frame["intent"] = _consensus(table, "intent", units) if "intent" in _names(schema) else None
    return frame


def _names(schema: LabelSchema) -> set[str]:
    return {f.name for f in schema.fields}


# -- over time -------------------------------------------------------------------------------


def alpha_over_time(
    table: LabelTable,
    *,
    actor: User,
    by: Literal["day", "batch"] = "day",
    batch_size: int = 100,
    filters: ReportFilters | None = None,
) -> pd.DataFrame:
    """Alpha per period, so that a guideline change shows its effect.

    Items are placed by when their last human label was made (when they became complete):
    per UTC day (`by="day"`), or in consecutive batches of `batch_size` items in that order
    (`by="batch"`). Long frame: period, start, end, n_items, measure (a field, or
    "right_action (banded)"), alpha (NaN where undefined, e.g. one label per item).
    """
    require_role(actor, "lead", "see agreement figures")
    if by not in ("day", "batch"):
        raise ValidationProblem(f"Alpha over time is per `day` or `batch`, not `{by}`")
    if batch_size < 2:
        raise ValidationProblem(f"Batches need at least 2 items, got {batch_size}")
    schema = table.schema
    units = _labelled_units(table, _select_items(table, filters))
    columns = ["period", "start", "end", "n_items", "measure", "alpha"]
    if not units:
        return pd.DataFrame(columns=columns)
    humans = table.humans()
    humans = humans[humans["item_id"].isin(set(units))]
    done = pd.to_datetime(humans["created_at"], utc=True).groupby(humans["item_id"]).max()
    done = done.reindex(units)
    order = np.argsort(done.to_numpy(), kind="stable")
    if by == "day":
        keys = done.dt.strftime("%Y-%m-%d").to_numpy()
    else:
        keys = np.empty(len(units), dtype=object)
        keys[order] = [f"#{i // batch_size + 1}" for i in range(len(units))]
    measures: list[tuple[str, np.ndarray, int, ag.Metric]] = []
    grid = _Grid(table, units)
    for spec in schema.choice_fields:
        if spec.kind != "single" or spec.name in PERSONAL_FIELDS:
            continue
        codes, _ = ag.encode_labels(grid.matrix(spec.name), spec.values)
        measures.append((spec.name, codes, len(spec.values), "nominal"))
        if spec.name == schema.right_action_field:
            banded = ag.band_distance(_credit(schema, spec.name))
            measures.append((f"{spec.name} (banded)", codes, len(spec.values), banded))
    rows: list[dict[str, Any]] = []
    stamps = done.to_numpy()
    for key in dict.fromkeys(keys[order].tolist()):  # periods in time order
        cols = np.flatnonzero(keys == key)
        start, end = stamps[cols].min(), stamps[cols].max()
        for name, codes, n_values, metric in measures:
            value = ag.alpha_from_counts(
                ag.value_counts_from_codes(codes[:, cols], n_values), metric
            )
            rows.append(
                {
                    "period": key,
                    "start": _timestamp(start),
                    "end": _timestamp(end),
                    "n_items": len(cols),
                    "measure": name,
                    "alpha": value,
                }
            )
    return pd.DataFrame(rows, columns=columns)


def _timestamp(value: Any) -> datetime:
    return pd.Timestamp(value).to_pydatetime()


# -- cache key -------------------------------------------------------------------------------


def labels_version(
    *, session: Session, actor: User, campaign: Campaign, adjudications: bool = True
) -> tuple[Any, ...]:
    """A cheap fingerprint of a campaign's labels (and adjudications), for caching reports.

    Changes whenever an annotation is added or edited, and with `adjudications` whenever an
    adjudication is recorded.
    """
    require_role(actor, "lead", "see agreement figures")
    ann = session.exec(
        select(func.count(), func.max(Annotation.updated_at), func.max(Annotation.id)).where(
            Annotation.campaign_id == campaign.id
        )
    ).one()
    version: tuple[Any, ...] = (campaign.id, *(str(v) for v in ann))
    if adjudications:
        adj = session.exec(
            select(func.count(), func.max(Adjudication.id)).where(
                Adjudication.campaign_id == campaign.id
            )
        ).one()
        version += tuple(str(v) for v in adj)
    return version


def campaign_filters(table: LabelTable, *, actor: User) -> dict[str, list[str]]:
    """The values each filter can take in this campaign (categories, models, groups, intents)."""
    require_role(actor, "lead", "see agreement figures")
    items = table.items

    def distinct(column: str) -> list[str]:
        return sorted(str(v) for v in items[column].dropna().unique())

    intents = table.schema.field("intent").values if "intent" in _names(table.schema) else []
    return {
        "categories": distinct("category"),
        "models": distinct("model"),
        "groups": distinct("group_id"),
        "intents": list(intents),
    }
