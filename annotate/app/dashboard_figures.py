"""The Dashboard's figures: each named with its arguments and its computation built here, so
that the page (`pages/dashboard.py`) and `lead_figures`, which `annotate serve` warms at start,
ask for the same figure (`warm_figures` keeps them per process). Each builder is a
`figure_process.recipe`: its figure can be computed in the figure process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd

from annotate import review
from annotate.app import figure_process, lead, warm_figures
from annotate.app.context import AppContext
from annotate.app.controls_view import Drift
from annotate.app.warm_figures import Served, Wanted
from annotate.review.controls import leave_one_out_drift
from annotate.review.figures import CampaignReport, ReportFilters
from annotate.table import LabelTable

T = TypeVar("T")

RESAMPLES = (0, 200, 1000)

RESAMPLES_DEFAULT = 200
TIME_DEFAULT = ("day", 100)


def fig(
    ctx: AppContext,
    table: LabelTable,
    served: list[Served[Any]],
    name: str,
    args: tuple[Any, ...],
    key: str,
    compute: Callable[[], T],
) -> Served[T]:
    got = warm_figures.figure(ctx, table.campaign, name, args, key, compute)
    served.append(got)
    return got


@figure_process.recipe
def report_of(
    ctx: AppContext, table: LabelTable, fkey: str, n: int
) -> Callable[[], CampaignReport]:
    filters = ReportFilters.model_validate_json(fkey)
    return lambda: review.agreement_report(table, actor=ctx.user, filters=filters, n_resamples=n)


@figure_process.recipe
def items_of(ctx: AppContext, table: LabelTable, fkey: str) -> Callable[[], pd.DataFrame]:
    filters = ReportFilters.model_validate_json(fkey)
    return lambda: review.item_disagreement(table, actor=ctx.user, filters=filters)


@figure_process.recipe
def drift_of(ctx: AppContext, table: LabelTable) -> Callable[[], Drift]:
    return lambda: leave_one_out_drift(table, actor=ctx.user)


Annotators = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]


@figure_process.recipe
def annotator_tables(
    ctx: AppContext, table: LabelTable, fkey: str, field: str
) -> Callable[[], Annotators]:
    parsed = ReportFilters.model_validate_json(fkey)

    def compute() -> Annotators:
        people = review.annotator_table(table, actor=ctx.user, field=field, filters=parsed)
        models = review.competence(table, actor=ctx.user, field=field)
        if not models.empty:
            people = people.join(models)
        return (
            people,
            review.kappa_matrix(table, actor=ctx.user, field=field, filters=parsed),
            review.label_distribution(table, actor=ctx.user, field=field, filters=parsed),
        )

    return compute


@figure_process.recipe
def confusion_of(
    ctx: AppContext, table: LabelTable, fkey: str, field: str, pair: tuple[str, str] | None
) -> Callable[[], pd.DataFrame]:
    filters = ReportFilters.model_validate_json(fkey)
    return lambda: review.confusion(table, actor=ctx.user, field=field, pair=pair, filters=filters)


@figure_process.recipe
def over_time_of(
    ctx: AppContext, table: LabelTable, fkey: str, per: str, size: int
) -> Callable[[], pd.DataFrame]:
    filters = ReportFilters.model_validate_json(fkey)
    return lambda: review.alpha_over_time(
        table,
        actor=ctx.user,
        by=per,  # type: ignore[arg-type]
        batch_size=size,
        filters=filters,
    )


def annotators(
    ctx: AppContext, table: LabelTable, served: list[Served[Any]], key: str, fkey: str, field: str
) -> Served[Annotators]:
    compute = annotator_tables(ctx, table, fkey, field)
    return fig(ctx, table, served, "annotators", (fkey, field), key, compute)


def lead_figures(ctx: AppContext, table: LabelTable) -> list[Wanted]:
    """The figures the dashboard shows first (no filter, the default controls), cheapest
    first: what `annotate serve` computes before a lead opens the page."""
    fkey = lead.filters_key(ReportFilters())
    field = table.schema.right_action_field
    return [
        Wanted("report", (fkey, 0), report_of(ctx, table, fkey, 0)),
        Wanted("items", (fkey,), items_of(ctx, table, fkey)),
        Wanted("annotators", (fkey, field), annotator_tables(ctx, table, fkey, field)),
        Wanted("confusion", (fkey, field, None), confusion_of(ctx, table, fkey, field, None)),
        Wanted("drift", (), drift_of(ctx, table)),
        Wanted("over_time", (fkey, *TIME_DEFAULT), over_time_of(ctx, table, fkey, *TIME_DEFAULT)),
        Wanted("report", (fkey, RESAMPLES_DEFAULT), report_of(ctx, table, fkey, RESAMPLES_DEFAULT)),
    ]
