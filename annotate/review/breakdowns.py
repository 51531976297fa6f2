"""The lead's breakdowns: annotators, kappa pairs, distributions, confusion, items, trend."""

from __future__ import annotations

import weakref
from datetime import datetime
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
from sqlalchemy import func
from sqlmodel import Session, select

from annotate import stats as ag
from annotate.accounts.auth import require_role
from annotate.errors import ValidationProblem
from annotate.review.blas import one_blas_thread
from annotate.review.figures import (
    PERSONAL_FIELDS,
    ReportFilters,
    _consensus,
    _credit,
    _gold,
    _Grid,
    _labelled_units,
    _metric,
    _select_items,
    item_fields,
)
from annotate.schema import LabelField, LabelSchema
from annotate.stats import report as rep
from annotate.stats.agreement import DENSE_MAX_VALUES
from annotate.stats.distances import _distance
from annotate.storage.models import Adjudication, Annotation, Campaign, User
from annotate.table import LabelTable


def _single_field(table: LabelTable, field_name: str) -> LabelField:
    spec = table.schema.field(field_name)
    if spec.kind != "single":
        raise ValidationProblem(f"`{field_name}` is not a single-choice field")
    return spec


@one_blas_thread
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
    # Positions by index look-ups (mapping the names' Arrow column through a dict went
    # element by element: a third of a second at 300,000 labels).
    codes, names = pd.factorize(humans["annotator"])
    rows = pd.Index(annotators, dtype=object).get_indexer(pd.Index(list(names), dtype=object))
    rows = rows[codes]
    cols = pd.Index(units).get_indexer(pd.Index(humans["item_id"].to_numpy()))
    keep = (rows >= 0) & (cols >= 0)
    seconds = pd.to_numeric(humans["duration_s"], errors="coerce").to_numpy(dtype=float)
    out[rows[keep], cols[keep]] = seconds[keep]
    return out


@one_blas_thread
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


@one_blas_thread
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


@one_blas_thread
def item_disagreement(
    table: LabelTable, *, actor: User, filters: ReportFilters | None = None
) -> pd.DataFrame:
    """One row per filtered item with human labels: how far its annotators disagree.

    `disagreement` is the mean distance between two annotators' right actions under the band
    distance (0 unanimous, up to 1); `d_<field>` the same per item field (nominal; MASI for
    failure categories) and `other_disagreement` their mean over the fields other than the
    right action. `unanimous` is True when every human gave the same value of every item
    field and all of them gave each required one. Also: n_labels (humans), majority (right
    action chosen by more than half), flagged (any annotator flagged it), noted (any
    annotator left a note for the lead or wrote in a text field such as the rationale),
    adjudicated, method.
    """
    require_role(actor, "lead", "see agreement figures")
    schema = table.schema
    units = _labelled_units(table, _select_items(table, filters))
    humans = table.humans()
    humans = humans[humans["item_id"].isin(set(units))]
    n_labels = humans.groupby("item_id").size().reindex(units, fill_value=0).to_numpy()
    flagged = humans.groupby("item_id")["flagged"].any().reindex(units, fill_value=False)
    texts = ["flag_note", *(f.name for f in schema.fields if f.kind == "text")]
    wrote = np.zeros(len(humans), dtype=bool)
    for column in texts:
        if column in humans:
            cells = humans[column].to_numpy(dtype=object)
            # Most cells are empty: look at the text of the others only.
            given = np.flatnonzero(pd.notna(cells))
            wrote[given] |= np.array(
                [isinstance(v, str) and bool(v.strip()) for v in cells[given]], dtype=bool
            )
    noted = (
        pd.Series(wrote, index=humans.index)
        .groupby(humans["item_id"])
        .any()
        .reindex(units, fill_value=False)
    )
    frame = table.items.loc[units, ["item_id", "external_id", "model", "category", "group_id"]]
    frame = frame.reset_index(drop=True)
    frame["n_labels"] = n_labels
    unanimous = n_labels > 0
    other: list[np.ndarray] = []
    grid = _Grid(table, units)
    for spec in item_fields(schema):
        domain: list[Any]
        if spec.kind == "multi":
            counts, domain = _set_counts(grid, spec.name)
            metric: ag.Metric = ag.masi_distance_matrix(cast(list[frozenset[str]], domain))
        else:
            counts, domain = grid.counts(spec.name, spec.values)
            metric = _metric(schema, spec.name)
        if len(domain) < 2:
            scores = np.zeros(len(units))
        elif len(domain) <= DENSE_MAX_VALUES:
            scores = _disagreement(counts, metric)
        else:  # many distinct sets: pair by pair, as `disagreement_scores` does them
            scores = ag.disagreement_scores(grid.encoded(spec.name), metric, domain)
        frame[f"d_{spec.name}"] = scores
        if not units:
            counts = np.zeros((0, 1))
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
    frame["noted"] = noted.to_numpy()
    adj = table.adjudications.set_index("item_id") if not table.adjudications.empty else None
    frame["adjudicated"] = frame["item_id"].isin(adj.index) if adj is not None else False
    frame["method"] = frame["item_id"].map(adj["method"]) if adj is not None else None
    frame["intent"] = (
        _consensus(table, "intent", units, grid) if "intent" in _names(schema) else None
    )
    return frame


def _set_counts(grid: _Grid, field_name: str) -> tuple[np.ndarray, list[Any]]:
    """`grid.counts` of a multi-choice field, its distinct sets as the value domain in the
    order `encode_labels` gives the matrix's (sets are only partly ordered, so the order
    they are met in, annotator by annotator, decides their sorted order)."""
    values = grid.frame[field_name].to_numpy(dtype=object)
    met = np.argsort(grid.rows * grid.shape[1] + grid.cols, kind="stable")
    codes, domain = ag.encode_labels(values[met][None, :])
    given = codes[0] >= 0
    n_values = len(domain)
    flat = np.bincount(
        grid.cols[met][given] * n_values + codes[0][given], minlength=grid.shape[1] * n_values
    )
    return flat.reshape(grid.shape[1], n_values), domain


def _disagreement(counts: np.ndarray, metric: ag.Metric) -> np.ndarray:
    """`disagreement_scores` of a label matrix from its units x values counts (at most
    DENSE_MAX_VALUES values): the same sums in the same order, so the same figures."""
    n_values = counts.shape[1]
    labelled = counts.sum(axis=1)
    marginals = counts[labelled >= 2].sum(axis=0).astype(np.float64)
    dist = _distance(metric, n_values, np.arange(n_values, dtype=np.float64), marginals)
    dense = counts.astype(np.float64)
    sums = ((dense @ dist) * dense).sum(axis=1) - dense @ np.diag(dist)
    pairs = (labelled * (labelled - 1)).astype(np.float64)
    scores: np.ndarray = np.divide(sums, pairs, out=np.zeros_like(sums), where=pairs > 0)
    return scores


def _names(schema: LabelSchema) -> set[str]:
    return {f.name for f in schema.fields}


@one_blas_thread
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
    periods, order = _periods(done, by, batch_size)
    measures: list[tuple[str, np.ndarray, ag.Metric]] = []
    grid = _Grid(table, units)
    for spec in schema.choice_fields:
        if spec.kind != "single" or spec.name in PERSONAL_FIELDS:
            continue
        counts, _ = grid.counts(spec.name, spec.values)
        measures.append((spec.name, counts, "nominal"))
        if spec.name == schema.right_action_field:
            banded = ag.band_distance(_credit(schema, spec.name))
            measures.append((f"{spec.name} (banded)", counts, banded))
    rows: list[dict[str, Any]] = []
    # Each period's units in unit order, periods in time order (that of their first unit).
    by_period = np.argsort(periods, kind="stable")
    bounds = np.flatnonzero(np.diff(periods[by_period])) + 1
    starts = periods[by_period[np.r_[0, bounds]]]
    members = dict(zip(starts, np.split(by_period, bounds), strict=True))
    for period in pd.unique(periods[order]):
        cols = members[period]
        start, end = _extremes(done, cols)
        for name, counts, metric in measures:
            value = ag.alpha_from_counts(counts[cols], metric)
            rows.append(
                {
                    "period": _period_name(done, cols, by, period),
                    "start": _timestamp(start),
                    "end": _timestamp(end),
                    "n_items": len(cols),
                    "measure": name,
                    "alpha": value,
                }
            )
    return pd.DataFrame(rows, columns=columns)


def _periods(done: pd.Series, by: str, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(each unit's period number, the units in time order): per UTC day, or per batch of
    `batch_size` units in time order. From the stamps as integers (sorting an object array of
    Timestamps took half a second at 100,000 items); the same order, ties kept in unit order.
    """
    stamps = _naive_utc(done)
    order = np.argsort(stamps.view(np.int64), kind="stable")
    if by == "day":
        return stamps.astype("datetime64[D]").view(np.int64), order
    periods = np.empty(len(done), dtype=np.int64)
    periods[order] = np.arange(len(done)) // batch_size
    return periods, order


def _naive_utc(done: pd.Series) -> np.ndarray:
    """The stamps of a UTC datetime series as numpy datetime64 (no time zone)."""
    return np.asarray(done.dt.tz_convert(None).to_numpy())


def _extremes(done: pd.Series, cols: np.ndarray) -> tuple[Any, Any]:
    """The earliest and latest stamps (as `done` holds them) among its positions `cols`."""
    stamps = _naive_utc(done).view(np.int64)[cols]
    return done.iloc[cols[stamps.argmin()]], done.iloc[cols[stamps.argmax()]]


def _period_name(done: pd.Series, cols: np.ndarray, by: str, period: Any) -> str:
    if by == "day":
        return str(done.iloc[cols[0]].strftime("%Y-%m-%d"))
    return f"#{int(period) + 1}"


def _timestamp(value: Any) -> datetime:
    return pd.Timestamp(value).to_pydatetime()


def labels_version(
    *, session: Session, actor: User, campaign: Campaign, adjudications: bool = True
) -> tuple[Any, ...]:
    """A cheap fingerprint of a campaign's labels (and adjudications), for caching reports.

    Changes whenever an annotation is added or edited, and with `adjudications` whenever an
    adjudication is recorded.
    """
    require_role(actor, "lead", "see agreement figures", session=session)
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


# campaign_filters per LabelTable while it lives: a lead page asks on every load, and at
# 100,000 items the distinct values took tens of milliseconds each time.
_FILTERS: dict[int, tuple[weakref.ref[LabelTable], dict[str, list[str]]]] = {}


def campaign_filters(table: LabelTable, *, actor: User) -> dict[str, list[str]]:
    """The values each filter can take in this campaign (categories, models, groups, intents)."""
    require_role(actor, "lead", "see agreement figures")
    kept = _FILTERS.get(id(table))
    if kept is not None and kept[0]() is table:
        return {k: list(v) for k, v in kept[1].items()}
    found = _campaign_filters(table)
    slot = id(table)
    _FILTERS[slot] = (weakref.ref(table, lambda _: _FILTERS.pop(slot, None)), found)
    return {k: list(v) for k, v in found.items()}


def _campaign_filters(table: LabelTable) -> dict[str, list[str]]:
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
