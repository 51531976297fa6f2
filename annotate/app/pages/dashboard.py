"""Dashboard: how reliable a campaign's labels are, and where the lead should look first.

Leads only (the figures come from `annotate.review`, which checks the role). The headline
figures come first with a plain-words reading; the heavier views (confusion between
annotators, the annotator table, alpha over time) are fragments, so changing one of their
controls reruns that part alone. Every figure is kept warm (`warm_figures`): while annotators
submit, a large campaign's page is served the figures already computed, with their age, and
newer ones are computed in the background. On a large campaign's first load a figure not
computed yet shows as a placeholder and the page reruns itself once it is ready; the point
figures (no intervals) are asked for first, so the headline comes before the intervals.
The figures themselves are named and built in `app/dashboard_figures.py`.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from annotate import review
from annotate.app import attention, charts, lead, warm_figures
from annotate.app.attention import ANNOTATOR_PARAM, FIELD_PARAM
from annotate.app.charts import VERDICT_COLORS, heatmap
from annotate.app.context import AppContext, fragment, fragment_run
from annotate.app.controls_view import Drift, controls_view, credit_columns
from annotate.app.dashboard_figures import (
    RESAMPLES,
    RESAMPLES_DEFAULT,
    annotators,
    confusion_of,
    drift_of,
    fig,
    items_of,
    over_time_of,
    report_of,
)
from annotate.app.render import plain
from annotate.app.warm_figures import Served
from annotate.review.figures import CampaignReport, ReportFilters
from annotate.table import LabelTable

# -- the page --------------------------------------------------------------------------------


def render(ctx: AppContext) -> None:
    """The dashboard of one campaign."""
    with warm_figures.rendering():  # the figure worker lets this run go first
        _render(ctx)


def _render(ctx: AppContext) -> None:
    st.title("Dashboard")
    campaign = lead.pick_campaign(ctx, key="dash-campaign")
    if campaign is None:
        return
    got = lead.label_table_or_loading(ctx, campaign)
    if got is None:  # a large campaign's first load: the page shows at once, then reruns
        warm_figures.show_loading(ctx, campaign, adjudications=True)
        return
    table, key = got
    age = st.empty()  # filled last: the age of the oldest figure shown
    served: list[Served[Any]] = []
    try:
        _sections(ctx, table, key, served)
    finally:
        warm_figures.end_exact_run()
    with age.container():
        warm_figures.show_age(ctx, campaign, served, adjudications=True)
    warm_figures.keep_updated(ctx, served)


def _sections(ctx: AppContext, table: LabelTable, key: str, served: list[Served[Any]]) -> None:
    with st.expander("Filters", expanded=False):
        filters = lead.filter_bar(ctx, table, key="dash")
        resamples = st.segmented_control(
            "Bootstrap resamples for the intervals",
            RESAMPLES,
            default=RESAMPLES_DEFAULT,
            key="dash-resamples",
            help="More resamples: steadier intervals, slower page. 0: no intervals.",
        )
    fkey = lead.filters_key(filters)
    n = int(resamples or 0)
    # Until the intervals are computed, the point figures (far cheaper, asked for first so
    # that the worker computes them first) are shown.
    full: Served[CampaignReport] | None
    if n and warm_figures.kept(ctx, table.campaign, "report", (fkey, n)):
        full = fig(ctx, table, served, "report", (fkey, n), key, report_of(ctx, table, fkey, n))
        shown = full
    else:
        shown = fig(ctx, table, served, "report", (fkey, 0), key, report_of(ctx, table, fkey, 0))
        full = None
        if n:
            full = fig(ctx, table, served, "report", (fkey, n), key, report_of(ctx, table, fkey, n))
            shown = full if full.ready else shown
    report = shown.value if shown.ready else None
    if report is not None and report.n_items == 0:
        st.info("No items match." if filters.active else "This campaign has no items yet.")
        return
    items = fig(ctx, table, served, "items", (fkey,), key, items_of(ctx, table, fkey))
    # Leave-one-out alpha per annotator: for the annotator table and the controls section.
    drift = fig(ctx, table, served, "drift", (), key, drift_of(ctx, table))
    if report is None:
        warm_figures.show_waiting(shown, "the agreement figures")
    else:
        _headline(ctx, report, items, table, served, key, fkey)
        _alphas(report)
        if full is not None and not full.ready:
            warm_figures.show_waiting(full, f"the intervals ({n} resamples)")
        _judges(report)
    confusion_view(ctx, table, served, key, fkey, filters)
    annotator_view(ctx, table, served, key, fkey, drift)
    time_view(ctx, table, served, key, fkey)
    controls_view(ctx, table, key, drift, served)


def _headline(
    ctx: AppContext,
    report: CampaignReport,
    items: Served[pd.DataFrame],
    table: LabelTable,
    served: list[Served[Any]],
    key: str,
    fkey: str,
) -> None:
    cols = st.columns(5)
    cols[0].metric("Items", f"{report.n_items:,}")
    cols[1].metric(
        f"With {report.overlap}+ labels",
        f"{report.complete_items:,}",
        help="Items labeled by at least the campaign's overlap k of human annotators.",
    )
    cols[2].metric("Human annotators", report.n_annotators)
    if items.ready:
        frame = items.value
        adjudicated = int(frame["adjudicated"].sum()) if not frame.empty else 0
        cols[3].metric("Adjudicated", f"{adjudicated:,}")
    else:
        cols[3].metric("Adjudicated", "…", help="Being computed.")
    cols[4].metric("Judges (reported apart)", len(report.machine_annotators))
    st.markdown("**Where to look first**")
    people = annotators(ctx, table, served, key, fkey, table.schema.right_action_field)
    if not items.ready:
        warm_figures.show_waiting(items, "the items' disagreement")
    elif not people.ready:
        warm_figures.show_waiting(people, "the annotator tables")
    else:
        for line, target in attention.lines(report, items.value, people.value[0]):
            attention.show(ctx, report.campaign, line, target)
    coverage = pd.DataFrame(
        {"labels": [str(k) for k in report.coverage], "items": list(report.coverage.values())}
    )
    charts.show(
        st,
        report,
        "coverage",
        lambda: (
            alt.Chart(coverage)
            .mark_bar()
            .encode(
                x=alt.X("labels:O", title="Human labels per item", sort=None),
                y=alt.Y("items:Q", title="Items"),
                tooltip=["labels", "items"],
            )
            .properties(title="Coverage")
        ),
        height=200,
    )


def _alphas(report: CampaignReport) -> None:
    st.subheader("Agreement")
    st.caption(
        "Krippendorff's alpha on human labels: 1 is perfect agreement, 0 what chance gives. "
        f"Reliable when alpha is below {review.RELIABLE} with a probability under 5% (P<.8); "
        f"tentative when that holds for {review.TENTATIVE}; uncertain when the interval "
        "reaches below it; unreliable when alpha itself is below it. Banded: near-miss "
        "actions count as near-agreement (1 - the schema's credit). Intervals: 95% BCa "
        f"bootstrap over items ({report.n_resamples} resamples asked; the table gives the "
        "number where alpha was defined). No interval where items are too few, every label "
        "is the same (alpha undefined) or resamples do not vary: the reading says which. "
        "AC: Gwet's AC1 (AC2 on the banded row), steadier than alpha when labels are skewed."
    )
    rows = pd.DataFrame(review.summary_rows(report))
    rows["colour"] = [v if v in VERDICT_COLORS else "other" for v in rows["verdict"]]
    defined = rows.dropna(subset=["alpha"])
    if not defined.empty:
        charts.show(
            st,
            report,
            "alphas",
            lambda: charts.alpha_chart(defined),
            height=max(180, 28 * len(defined) + 90),
        )
    st.dataframe(
        rows.drop(columns=["verdict", "colour", "note"]),
        hide_index=True,
        key="dash-alpha-table",
        column_config={
            "measure": "Measure",
            "alpha": st.column_config.NumberColumn("alpha", format="%.3f"),
            "ci_low": st.column_config.NumberColumn("95% low", format="%.3f"),
            "ci_high": st.column_config.NumberColumn("95% high", format="%.3f"),
            "p_below_tentative": st.column_config.NumberColumn("P<.667", format="%.2f"),
            "p_below_reliable": st.column_config.NumberColumn("P<.8", format="%.2f"),
            "resamples": st.column_config.NumberColumn("Resamples used", format="%d"),
            "n_units": st.column_config.NumberColumn("Items (2+ labels)", format="%d"),
            "gwet": st.column_config.NumberColumn("AC", format="%.3f"),
            "gwet_se": st.column_config.NumberColumn("AC s.e.", format="%.3f"),
            "reading": "Reading",
        },
    )
    for note in sorted({n for n in rows["note"] if n}):
        st.caption(note)


def _judges(report: CampaignReport) -> None:
    if not report.machine_annotators:
        return
    st.subheader("Automatic judges")
    st.caption(
        "Each judge against the human majority (items whose single most common human label "
        "exists). Judges never enter the figures above."
    )
    rows = [
        {
            "judge": judge,
            "field": name,
            "items": f.n_items,
            "matches majority": f.agreement,
            "alpha vs majority": f.alpha,
            "mean credit": f.mean_credit,
        }
        for judge, figures in report.machine_annotators.items()
        for name, f in figures.fields.items()
    ]
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        key="dash-judges",
        column_config={
            "matches majority": st.column_config.NumberColumn(format="percent"),
            "alpha vs majority": st.column_config.NumberColumn(format="%.3f"),
            "mean credit": st.column_config.NumberColumn(format="%.3f"),
        },
    )


def _single_fields(table: LabelTable) -> list[str]:
    return [f.name for f in table.schema.choice_fields if f.kind == "single"]


@fragment
def confusion_view(
    ctx: AppContext,
    table: LabelTable,
    served: list[Served[Any]],
    key: str,
    fkey: str,
    filters: ReportFilters,
) -> None:
    """How annotators' labels meet on the same items, per field (a fragment)."""
    st.subheader("Confusion between annotators")
    names = _single_fields(table)
    wanted = st.query_params.get(FIELD_PARAM)
    if wanted in names:  # from a "Where to look first" link: show that field once
        st.session_state["dash-conf-field"] = wanted
        del st.query_params[FIELD_PARAM]
    field = st.segmented_control(
        "Field", names, default=table.schema.right_action_field, key="dash-conf-field"
    )
    if field is None:
        return
    start = len(served)
    tables = annotators(ctx, table, served, key, fkey, field)
    if not tables.ready:
        _waiting(ctx, served[start:], tables, "the annotator tables")
        return
    names = [str(n) for n in tables.value[0].index]
    # Options are pairs of positions in `names`, never "a vs b" strings: a name may hold
    # " vs " itself, and only the labels shown are built from the names.
    options: list[tuple[int, int] | None] = [None] + [
        (i, j) for i in range(len(names)) for j in range(i + 1, len(names))
    ]
    chosen = st.selectbox(
        "Between",
        options,
        format_func=lambda o: (
            "all annotators (pooled)" if o is None else f"{names[o[0]]} vs {names[o[1]]}"
        ),
        key="dash-conf-pair",
    )
    pair = None if chosen is None else (names[chosen[0]], names[chosen[1]])
    got = fig(
        ctx,
        table,
        served,
        "confusion",
        (fkey, field, pair),
        key,
        confusion_of(ctx, table, fkey, field, pair),
    )
    if not got.ready:
        _waiting(ctx, served[start:], got, "the confusion table")
        return
    frame = got.value
    if frame["count"].sum() == 0:
        st.info("No item has two labels of this field yet.")
        return
    x, y = ("first", "second") if pair is None else pair
    title = (
        "Pairs of labels on the same item (coincidences); off the diagonal: disagreements"
        if pair is None
        else f"{x}'s label (across) against {y}'s (down)"
    )
    # The chart's fields stay `first` and `second`; the names are only axis titles (Vega-Lite
    # reads a `.` in a field name as a nested lookup: `ann.smith` drew an "undefined" row).
    charts.show(
        st,
        frame,
        "confusion",
        lambda: heatmap(frame, "first", "second", "count", title, ".1f", titles=(x, y)),
        height=360,
    )


@fragment
def annotator_view(
    ctx: AppContext,
    table: LabelTable,
    served: list[Served[Any]],
    key: str,
    fkey: str,
    drift: Served[Drift],
) -> None:
    """Per annotator: volume, pace, label mix, agreement with the rest and with gold."""
    st.subheader("Annotators")
    field = st.segmented_control(
        "Field",
        _single_fields(table),
        default=table.schema.right_action_field,
        key="dash-ann-field",
    )
    if field is None:
        return
    start = len(served)
    tables = annotators(ctx, table, served, key, fkey, field)
    if not tables.ready:
        _waiting(ctx, served[start:], tables, "the annotator tables")
        return
    people, kappa, shares = tables.value
    if people.empty:
        st.info("No human labels of this field yet.")
        return
    st.caption(
        "alpha_delta: alpha of everyone minus alpha without this annotator (negative: they "
        "lower agreement; banded on the right action). tvd: how far their label mix is from "
        "the campaign's (0 same, 1 disjoint). vs gold: mean credit against adjudicated labels. "
        "Competence (where items carry three or more labels): Dawid-Skene's probability that "
        "their label is right, MACE's that they know the answer rather than guess."
    )
    shown = people.reset_index()
    chosen = st.query_params.get(ANNOTATOR_PARAM)
    if chosen in set(shown["annotator"]):  # from a "Where to look first" link: their row first
        st.caption(f"{plain(chosen)} first, as asked by the link you followed.")
        first = shown["annotator"] == chosen
        shown = pd.concat([shown[first], shown[~first]], ignore_index=True)
    for count in ("n_labeled", "n_gold"):
        shown[count] = shown[count].astype("Int64")
    controls = credit_columns(ctx, table, key, drift, served)
    if not controls.empty:
        shown = shown.merge(controls, left_on="annotator", right_index=True, how="left")
    st.dataframe(
        shown,
        hide_index=True,
        key="dash-ann-table",
        column_config={
            "annotator": "Annotator",
            "n_labeled": "Labeled",
            "tvd": st.column_config.NumberColumn("Mix vs campaign (tvd)", format="%.2f"),
            "alpha_without": st.column_config.NumberColumn("alpha without", format="%.3f"),
            "alpha_delta": st.column_config.NumberColumn("alpha_delta", format="%+.3f"),
            "n_gold": "Adjudicated items",
            "gold_agreement": st.column_config.NumberColumn("vs gold", format="%.2f"),
            "seconds_per_item": st.column_config.NumberColumn("Median s/item", format="%.0f"),
            "mean_kappa": st.column_config.NumberColumn("Mean kappa", format="%.2f"),
            "ds_competence": st.column_config.NumberColumn("Competence (DS)", format="%.2f"),
            "mace_competence": st.column_config.NumberColumn("Competence (MACE)", format="%.2f"),
            "control_answers": st.column_config.NumberColumn("Control answers", format="%d"),
            "control_credit": st.column_config.NumberColumn("Control credit", format="%.2f"),
            "control_ci": "Control 95%",
            "control_trend": st.column_config.NumberColumn("Control trend", format="%+.2f"),
            "drift": "Drift",
        },
    )
    left, right = st.columns(2)
    long_kappa = (
        pd.Series(
            kappa.rename_axis(index="annotator", columns="other").stack(future_stack=True),
            name="kappa",
        )
        .reset_index()
        .dropna()
    )
    if not long_kappa.empty:
        charts.show(
            left,
            kappa,
            "kappa",
            lambda: heatmap(
                long_kappa, "other", "annotator", "kappa", "Pairwise Cohen's kappa", ".2f"
            ),
            height=320,
        )
    long_shares = pd.Series(
        shares.rename_axis(index="annotator", columns="value").stack(future_stack=True),
        name="share",
    ).reset_index()
    charts.show(
        right,
        shares,
        "mix",
        lambda: heatmap(long_shares, "value", "annotator", "share", "Label mix", ".0%"),
        height=320,
    )


@fragment
def time_view(
    ctx: AppContext, table: LabelTable, served: list[Served[Any]], key: str, fkey: str
) -> None:
    """Alpha per day or per batch of items, so a guideline change shows its effect."""
    st.subheader("Alpha over time")
    left, right = st.columns([2, 1])
    by = left.segmented_control(
        "Per", ["day", "batch"], default="day", key="dash-time-by", format_func=_per
    )
    batch = right.number_input(
        "Items per batch", min_value=2, value=100, step=50, key="dash-time-batch"
    )
    per, size = by or "day", int(batch)
    start = len(served)
    got = fig(
        ctx,
        table,
        served,
        "over_time",
        (fkey, per, size),
        key,
        over_time_of(ctx, table, fkey, per, size),
    )
    if not got.ready:
        _waiting(ctx, served[start:], got, "alpha over time")
        return
    kept = got.value
    frame = kept.dropna(subset=["alpha"])
    if frame.empty:
        st.info("Not enough labeled items per period yet.")
        return
    charts.show(st, kept, "over_time", lambda: charts.time_chart(frame, per), height=320)


def _per(value: str) -> str:
    return {"day": "Day", "batch": "Batch of items"}[value]


def _waiting(ctx: AppContext, mine: list[Served[Any]], got: Served[Any], what: str) -> None:
    """A fragment's figure is not computed yet: say so; on a run of the fragment alone (a
    control changed) it checks for the figure itself, as the page does on a full run."""
    warm_figures.show_waiting(got, what)
    if fragment_run():
        warm_figures.keep_updated(ctx, mine)
