"""Dashboard: how reliable a campaign's labels are, and where the lead should look first.

Leads only (the figures come from `annotate.review`, which checks the role). The headline
figures come first with a plain-words reading; the heavier views (confusion between
annotators, the annotator table, alpha over time) are fragments, so changing one of their
controls reruns that part alone.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from annotate import review
from annotate.app import lead
from annotate.app.context import AppContext, fragment
from annotate.app.controls_view import controls_view
from annotate.app.render import plain
from annotate.review.figures import CampaignReport, ReportFilters
from annotate.storage.models import User
from annotate.table import LabelTable

RESAMPLES = (0, 200, 1000)
READING_COLORS = {
    review.reading(0.9): "#2e7d32",
    review.reading(0.7): "#ef8f00",
    review.reading(0.0): "#c62828",
}
THRESHOLDS = pd.DataFrame(
    {"alpha": [review.TENTATIVE, review.RELIABLE], "line": ["tentative", "reliable"]}
)


# -- cached computations (keyed by the labels' version, so never stale) ----------------------


@st.cache_data(max_entries=16, show_spinner="Computing agreement…")
def _report(
    key: str, filters: str, n_resamples: int, _table: LabelTable, _actor: User
) -> CampaignReport:
    return review.agreement_report(
        _table,
        actor=_actor,
        filters=ReportFilters.model_validate_json(filters),
        n_resamples=n_resamples,
    )


@st.cache_data(max_entries=16, show_spinner=False)
def _items(key: str, filters: str, _table: LabelTable, _actor: User) -> pd.DataFrame:
    return review.item_disagreement(
        _table, actor=_actor, filters=ReportFilters.model_validate_json(filters)
    )


@st.cache_data(max_entries=32, show_spinner=False)
def _annotators(
    key: str, filters: str, field: str, _table: LabelTable, _actor: User
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    parsed = ReportFilters.model_validate_json(filters)
    return (
        review.annotator_table(_table, actor=_actor, field=field, filters=parsed),
        review.kappa_matrix(_table, actor=_actor, field=field, filters=parsed),
        review.label_distribution(_table, actor=_actor, field=field, filters=parsed),
    )


@st.cache_data(max_entries=32, show_spinner=False)
def _over_time(
    key: str, filters: str, by: str, batch: int, _table: LabelTable, _actor: User
) -> pd.DataFrame:
    return review.alpha_over_time(
        _table,
        actor=_actor,
        by=by,  # type: ignore[arg-type]
        batch_size=batch,
        filters=ReportFilters.model_validate_json(filters),
    )


# -- the page --------------------------------------------------------------------------------


def render(ctx: AppContext) -> None:
    """The dashboard of one campaign."""
    st.title("Dashboard")
    campaign = lead.pick_campaign(ctx, key="dash-campaign")
    if campaign is None:
        return
    table, key = lead.label_table(ctx, campaign)
    with st.expander("Filters", expanded=False):
        filters = lead.filter_bar(ctx, table, key="dash")
        resamples = st.segmented_control(
            "Bootstrap resamples for the intervals",
            RESAMPLES,
            default=200,
            key="dash-resamples",
            help="More resamples: steadier intervals, slower page. 0: no intervals.",
        )
    fkey = lead.filters_key(filters)
    report = _report(key, fkey, int(resamples or 0), table, ctx.user)
    if report.n_items == 0:
        st.info("No items match." if filters.active else "This campaign has no items yet.")
        return
    items = _items(key, fkey, table, ctx.user)
    _headline(ctx, report, items, table, key, fkey)
    _alphas(report)
    _judges(report)
    confusion_view(ctx, table, key, fkey, filters)
    annotator_view(ctx, table, key, fkey)
    time_view(ctx, table, key, fkey)
    controls_view(ctx, campaign, table)


def _headline(
    ctx: AppContext,
    report: CampaignReport,
    items: pd.DataFrame,
    table: LabelTable,
    key: str,
    fkey: str,
) -> None:
    adjudicated = int(items["adjudicated"].sum()) if not items.empty else 0
    cols = st.columns(5)
    cols[0].metric("Items", f"{report.n_items:,}")
    cols[1].metric(
        f"With {report.overlap}+ labels",
        f"{report.complete_items:,}",
        help="Items labeled by at least the campaign's overlap k of human annotators.",
    )
    cols[2].metric("Human annotators", report.n_annotators)
    cols[3].metric("Adjudicated", f"{adjudicated:,}")
    cols[4].metric("Judges (reported apart)", len(report.machine_annotators))
    st.markdown("**Where to look first**")
    people = _annotators(key, fkey, table.schema.right_action_field, table, ctx.user)[0]
    st.markdown("\n".join(f"- {line}" for line in _attention(report, items, people)))
    coverage = pd.DataFrame(
        {"labels": [str(k) for k in report.coverage], "items": list(report.coverage.values())}
    )
    chart = (
        alt.Chart(coverage)
        .mark_bar()
        .encode(
            x=alt.X("labels:O", title="Human labels per item", sort=None),
            y=alt.Y("items:Q", title="Items"),
            tooltip=["labels", "items"],
        )
        .properties(title="Coverage")
    )
    st.altair_chart(chart, width="stretch", height=200)


def _attention(report: CampaignReport, items: pd.DataFrame, people: pd.DataFrame) -> list[str]:
    """One line each: the weakest field, category and annotator, and the top item."""
    lines: list[str] = []
    rows = [r for r in review.summary_rows(report) if r["alpha"] is not None]
    fields = [r for r in rows if not r["measure"].startswith("failure")]
    if fields:
        worst = min(fields, key=lambda r: r["alpha"])
        lines.append(
            f"Field: **{plain(worst['measure'])}**, alpha {lead.fmt(worst['alpha'])} "
            f"({worst['reading']})"
        )
    categories = [r for r in rows if r["measure"].startswith("failure: ")]
    if categories:
        worst = min(categories, key=lambda r: r["alpha"])
        lines.append(
            f"Failure category: **{plain(worst['measure'][9:])}**, alpha "
            f"{lead.fmt(worst['alpha'])} ({worst['reading']})"
        )
    deltas = people["alpha_delta"].dropna() if not people.empty else pd.Series(dtype=float)
    if not deltas.empty and deltas.min() < 0:
        who = str(deltas.idxmin())
        lines.append(
            f"Annotator: **{plain(who)}**: the right-action alpha rises by "
            f"{-deltas.min():.3f} without their labels"
        )
    open_items = items[~items["adjudicated"]] if not items.empty else items
    if not open_items.empty:
        top = open_items.sort_values("disagreement", ascending=False, kind="stable").iloc[0]
        if top["disagreement"] > 0:
            lines.append(
                f"Item: **{plain(top['external_id'])}**, disagreement "
                f"{top['disagreement']:.2f} (top of the Review queue)"
            )
    return lines or ["Nothing stands out yet."]


def _alphas(report: CampaignReport) -> None:
    st.subheader("Agreement")
    st.caption(
        "Krippendorff's alpha on human labels: 1 is perfect agreement, 0 what chance gives. "
        f"At least {review.RELIABLE} is reliable; {review.TENTATIVE} to {review.RELIABLE} "
        "supports tentative conclusions only; below that, revisit the guidelines. Banded: "
        "near-miss actions count as near-agreement (1 - the schema's credit). Intervals: "
        f"95% bootstrap over items ({report.n_resamples} resamples)."
    )
    rows = pd.DataFrame(review.summary_rows(report))
    defined = rows.dropna(subset=["alpha"])
    if not defined.empty:
        base = alt.Chart(defined).encode(
            y=alt.Y("measure:N", sort=None, title=None),
            tooltip=["measure", "alpha", "ci_low", "ci_high", "n_units", "reading"],
        )
        bars = base.mark_rule().encode(x=alt.X("ci_low:Q", title="alpha"), x2="ci_high:Q")
        points = base.mark_point(filled=True, size=60).encode(
            x="alpha:Q",
            color=alt.Color(
                "reading:N",
                scale=alt.Scale(domain=list(READING_COLORS), range=list(READING_COLORS.values())),
                legend=alt.Legend(title="Reading", orient="bottom", labelLimit=400),
            ),
        )
        rules = alt.Chart(THRESHOLDS).mark_rule(strokeDash=[4, 4]).encode(x="alpha:Q")
        st.altair_chart(
            rules + bars + points, width="stretch", height=max(180, 28 * len(defined) + 90)
        )
    st.dataframe(
        rows,
        hide_index=True,
        key="dash-alpha-table",
        column_config={
            "measure": "Measure",
            "alpha": st.column_config.NumberColumn("alpha", format="%.3f"),
            "ci_low": st.column_config.NumberColumn("95% low", format="%.3f"),
            "ci_high": st.column_config.NumberColumn("95% high", format="%.3f"),
            "n_units": st.column_config.NumberColumn("Items (2+ labels)"),
            "reading": "Reading",
        },
    )


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


def _heatmap(
    frame: pd.DataFrame,
    x: str,
    y: str,
    value: str,
    title: str,
    fmt: str,
    *,
    titles: tuple[str, str] | None = None,
) -> Any:
    """Cells of `value` over columns `x` and `y` (plain column names), axes titled `titles`."""
    x_title, y_title = titles or (x, y)
    base = alt.Chart(frame).encode(
        x=alt.X(f"{x}:N", sort=None, title=x_title),
        y=alt.Y(f"{y}:N", sort=None, title=y_title),
    )
    rect = base.mark_rect().encode(
        color=alt.Color(f"{value}:Q", title=value, scale=alt.Scale(scheme="blues")),
        tooltip=[
            alt.Tooltip(f"{x}:N", title=x_title),
            alt.Tooltip(f"{y}:N", title=y_title),
            alt.Tooltip(f"{value}:Q", format=fmt),
        ],
    )
    # Dark cells get white text: the threshold is half the largest value shown.
    middle = float(frame[value].max() or 0) / 2
    text = base.mark_text(baseline="middle").encode(
        text=alt.Text(f"{value}:Q", format=fmt),
        color=alt.condition(f"datum['{value}'] > {middle}", alt.value("white"), alt.value("#333")),
    )
    return (rect + text).properties(title=title)


@fragment
def confusion_view(
    ctx: AppContext, table: LabelTable, key: str, fkey: str, filters: ReportFilters
) -> None:
    """How annotators' labels meet on the same items, per field (a fragment)."""
    st.subheader("Confusion between annotators")
    names = _single_fields(table)
    field = st.segmented_control(
        "Field", names, default=table.schema.right_action_field, key="dash-conf-field"
    )
    if field is None:
        return
    people = _annotators(key, fkey, field, table, ctx.user)[0]
    names = [str(n) for n in people.index]
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
    frame = review.confusion(table, actor=ctx.user, field=field, pair=pair, filters=filters)
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
    chart = _heatmap(frame, "first", "second", "count", title, ".1f", titles=(x, y))
    st.altair_chart(chart, width="stretch", height=360)


@fragment
def annotator_view(ctx: AppContext, table: LabelTable, key: str, fkey: str) -> None:
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
    people, kappa, shares = _annotators(key, fkey, field, table, ctx.user)
    if people.empty:
        st.info("No human labels of this field yet.")
        return
    st.caption(
        "alpha_delta: alpha of everyone minus alpha without this annotator (negative: they "
        "lower agreement). tvd: how far their label mix is from the campaign's (0 same, 1 "
        "disjoint). gold_agreement: mean credit against adjudicated labels."
    )
    st.dataframe(
        people.reset_index(),
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
        },
    )
    left, right = st.columns(2)
    long_kappa = (
        kappa.rename_axis(index="annotator", columns="other")
        .stack(future_stack=True)
        .rename("kappa")
        .reset_index()
        .dropna()
    )
    if not long_kappa.empty:
        left.altair_chart(
            _heatmap(long_kappa, "other", "annotator", "kappa", "Pairwise Cohen's kappa", ".2f"),
            width="stretch",
            height=320,
        )
    long_shares = (
        shares.rename_axis(index="annotator", columns="value")
        .stack(future_stack=True)
        .rename("share")
        .reset_index()
    )
    right.altair_chart(
        _heatmap(long_shares, "value", "annotator", "share", "Label mix", ".0%"),
        width="stretch",
        height=320,
    )


@fragment
def time_view(ctx: AppContext, table: LabelTable, key: str, fkey: str) -> None:
    """Alpha per day or per batch of items, so a guideline change shows its effect."""
    st.subheader("Alpha over time")
    left, right = st.columns([2, 1])
    by = left.segmented_control(
        "Per", ["day", "batch"], default="day", key="dash-time-by", format_func=_per
    )
    batch = right.number_input(
        "Items per batch", min_value=2, value=100, step=50, key="dash-time-batch"
    )
    frame = _over_time(key, fkey, by or "day", int(batch), table, ctx.user)
    frame = frame.dropna(subset=["alpha"])
    if frame.empty:
        st.info("Not enough labeled items per period yet.")
        return
    lines = (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("period:N", sort=None, title="Day" if by == "day" else "Batch (in time order)"),
            y=alt.Y("alpha:Q", title="alpha"),
            color=alt.Color("measure:N", title="Measure"),
            tooltip=["period", "measure", alt.Tooltip("alpha:Q", format=".3f"), "n_items"],
        )
    )
    rules = alt.Chart(THRESHOLDS).mark_rule(strokeDash=[4, 4]).encode(y="alpha:Q")
    st.altair_chart(rules + lines, width="stretch", height=320)


def _per(value: str) -> str:
    return {"day": "Day", "batch": "Batch of items"}[value]
