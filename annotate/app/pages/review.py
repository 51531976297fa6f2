"""Review queue: items with complete labels, most disagreed first; unanimous ones in bulk.

Leads only (`annotate.review` checks the role). Items an annotator flagged or left a note on
(a flag note or a rationale) come first and are never accepted in bulk: the lead reads them.
Then the most disagreed; adjudicated items come after every open one. Disagreement is the
mean band distance between two annotators' right actions (0 unanimous, 1 far apart), so a
near miss such as answer / answer_with_caveat ranks below answer / refuse. Where items carry
three or more labels, the annotator model's right action (Dawid-Skene) and its posterior are
shown beside the majority's. Choosing a row, or "Adjudicate
next", opens the item on the Adjudicate page.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from annotate import review
from annotate.app import figure_process, lead, warm_figures
from annotate.app.context import AppContext
from annotate.app.dashboard_figures import items_of
from annotate.app.render import plain
from annotate.app.warm_figures import Served, Wanted
from annotate.review.figures import ReportFilters
from annotate.storage.models import Campaign
from annotate.table import LabelTable

FLASH_KEY = "annotate.review.flash"
# The picker offers the top of the queue; the table holds all of it, a page at a time (sending
# 100,000 rows to the browser took seconds and 8 MB on every load).
PICK_LIMIT = 200
PAGE_ROWS = 500
COLUMNS = {
    "external_id": "Item",
    "disagreement": "Disagreement",
    "majority": "Majority action",
    "model_label": "Model suggests",
    "posterior": "Posterior",
    "n_labels": "Labels",
    "flagged": "Flagged",
    "noted": "Note",
    "adjudicated": "Adjudicated",
    "method": "How",
}
# Shown with "More columns": the item's attributes and the other fields' disagreement.
MORE_COLUMNS = {
    "intent": "Intent",
    "category": "Category",
    "model": "Model",
    "group_id": "Group",
    "other_disagreement": "Other fields",
    "unanimous": "Unanimous",
}
MODEL_COLUMNS = ("model_label", "posterior")


def render(ctx: AppContext) -> None:
    """The review queue of one campaign."""
    with warm_figures.rendering():  # the figure worker lets this run go first
        _render(ctx)


def _render(ctx: AppContext) -> None:
    st.title("Review queue")
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash:
        st.success(flash)
    campaign = lead.pick_campaign(ctx, key="rev-campaign")
    if campaign is None:
        return
    got = lead.label_table_or_loading(ctx, campaign, adjudications=False)
    if got is None:  # a large campaign's first load: the page shows at once, then reruns
        warm_figures.show_loading(ctx, campaign, adjudications=False)
        return
    table, key = got
    age = st.empty()  # filled once the figures are known: their age
    with st.expander("Filters", expanded=False):
        filters = lead.filter_bar(ctx, table, key="rev")
        cols = st.columns(3)
        min_labels = cols[0].number_input(
            "At least this many labels",
            min_value=1,
            value=campaign.overlap,
            key="rev-min-labels",
            help="Defaults to the campaign's overlap k.",
        )
        flagged_only = cols[1].toggle("Flagged by an annotator only", key="rev-flagged")
        show_done = cols[2].toggle("Show adjudicated items", value=True, key="rev-show-done")
        differs_only = cols[1].toggle(
            "Where the annotator model and the majority differ",
            key="rev-differs",
            help="Dawid-Skene, fitted when items carry three or more labels.",
        )
    try:
        served = [order(ctx, table, key, filters), suggestions(ctx, table, key)]
    finally:
        warm_figures.end_exact_run()
    with age.container():
        warm_figures.show_age(ctx, campaign, served, adjudications=False)
    warm_figures.keep_updated(ctx, served)
    if not served[0].ready:
        warm_figures.show_waiting(served[0], "the queue's order (each item's disagreement)")
        return
    frame = _queue(
        ctx,
        table,
        served,
        filters=filters,
        min_labels=int(min_labels),
        flagged_only=flagged_only,
        include_adjudicated=show_done,
    )
    if not served[1].ready:
        warm_figures.show_waiting(served[1], "the annotator model's suggestions")
    if differs_only:
        frame = frame[frame["model_differs"]].reset_index(drop=True)
    if frame.empty:
        st.info(f"No item has {int(min_labels)} or more labels with these filters yet.")
        return
    waiting = frame[~frame["adjudicated"]]
    agreed = waiting[waiting["unanimous"]]
    said = agreed["flagged"] | agreed["noted"]
    unanimous = agreed[~said]
    st.caption(
        f"{len(frame):,} items · {int(frame['adjudicated'].sum()):,} adjudicated · "
        f"{len(waiting):,} waiting, {len(agreed):,} of them unanimous"
        + (f" ({int(said.sum()):,} flagged or with a note: read those)" if said.any() else "")
    )
    _next_and_pick(ctx, campaign, frame, waiting)
    _table(ctx, campaign, frame)
    _bulk(ctx, campaign, unanimous)


def order(
    ctx: AppContext, table: LabelTable, key: str, filters: ReportFilters, *, block: bool = False
) -> Served[pd.DataFrame]:
    """Each item's disagreement under `filters`, which orders the queue (kept warm:
    `warm_figures`; `block`: computed here if it never was, for a page that needs it now)."""
    return warm_figures.figure(
        ctx,
        table.campaign,
        "queue_items",
        (lead.filters_key(filters),),
        key,
        items_of(ctx, table, lead.filters_key(filters)),
        adjudications=False,
        spinner="Ordering the queue…",
        block=block,
    )


def suggestions(
    ctx: AppContext, table: LabelTable, key: str, *, block: bool = False
) -> Served[pd.DataFrame]:
    """The annotator model's right action per item (empty below three labels per item),
    kept warm like `order`."""
    return warm_figures.figure(
        ctx,
        table.campaign,
        "suggestions",
        (),
        key,
        suggestions_of(ctx, table),
        adjudications=False,
        spinner="Fitting the annotator model…",
        block=block,
    )


def lead_figures(ctx: AppContext, table: LabelTable) -> list[Wanted]:
    """The figures the queue shows first (no filter): what `annotate serve` computes before
    a lead opens the page."""
    fkey = lead.filters_key(ReportFilters())
    return [
        Wanted("queue_items", (fkey,), items_of(ctx, table, fkey), adjudications=False),
        Wanted("suggestions", (), suggestions_of(ctx, table), adjudications=False),
    ]


@figure_process.recipe
def suggestions_of(ctx: AppContext, table: LabelTable) -> Callable[[], pd.DataFrame]:
    """The annotator model's right action per item."""
    return lambda: review.model_suggestions(table, actor=ctx.user)


def whole_queue(
    ctx: AppContext, campaign: Campaign, *, include_adjudicated: bool = True
) -> pd.DataFrame:
    """The queue with no filter, now: its order computed here if it never was (the Adjudicate
    page's "next" needs it), the annotator model's suggestions where they are computed."""
    table, key = lead.label_table(ctx, campaign, adjudications=False)
    served = [order(ctx, table, key, ReportFilters(), block=True), suggestions(ctx, table, key)]
    return _queue(
        ctx,
        table,
        served,
        filters=ReportFilters(),
        min_labels=None,
        flagged_only=False,
        include_adjudicated=include_adjudicated,
    )


def _queue(
    ctx: AppContext,
    table: LabelTable,
    served: list[Served[pd.DataFrame]],
    *,
    filters: ReportFilters,
    min_labels: int | None,
    flagged_only: bool,
    include_adjudicated: bool,
) -> pd.DataFrame:
    """The queue from the labels served (its order and the annotator model's suggestions,
    `served`, kept warm) and the adjudications as they are now."""
    items, model = served
    with ctx.session() as s:
        current = review.current_adjudications(session=s, actor=ctx.user, campaign=table.campaign)
    return review.queue_from_table(
        table,
        actor=ctx.user,
        filters=filters,
        min_labels=min_labels,
        flagged_only=flagged_only,
        include_adjudicated=include_adjudicated,
        current=current,
        items=items.value,
        suggestions=model.value if model.ready else None,
    )


def _next_and_pick(
    ctx: AppContext, campaign: Campaign, frame: pd.DataFrame, waiting: pd.DataFrame
) -> None:
    with st.container(horizontal=True, vertical_alignment="bottom"):
        if st.button(
            "Adjudicate next",
            key="rev-next",
            type="primary",
            disabled=waiting.empty,
            icon=":material/gavel:",
            help="The most disagreed item that is not adjudicated yet.",
        ):
            lead.open_item(ctx, campaign.name, str(waiting.iloc[0]["external_id"]))
        choices = [str(x) for x in frame["external_id"].head(PICK_LIMIT)]
        picked = st.selectbox("Or open", choices, index=None, key="rev-pick", placeholder="item")
        if st.button("Open", key="rev-open", disabled=picked is None):
            lead.open_item(ctx, campaign.name, str(picked))


def _table(ctx: AppContext, campaign: Campaign, frame: pd.DataFrame) -> None:
    more = st.toggle("More columns", key="rev-more-columns")
    columns = dict(COLUMNS)
    if frame["model_label"].isna().all():
        for name in MODEL_COLUMNS:
            columns.pop(name)
    if more:
        columns |= MORE_COLUMNS
    start = _page_start(len(frame))
    page = frame.iloc[start : start + PAGE_ROWS]
    shown = page[list(columns)].rename(columns=columns)
    shown["Majority action"] = shown["Majority action"].fillna("no majority")
    shown["How"] = shown["How"].astype(object).fillna("")
    event = st.dataframe(
        shown,
        hide_index=True,
        key="rev-table",
        on_select="rerun",
        selection_mode="single-row",
        width="stretch",
        column_config={
            "Disagreement": st.column_config.ProgressColumn(
                "Disagreement", min_value=0.0, max_value=1.0, format="%.2f", width="small"
            ),
            "Posterior": st.column_config.NumberColumn(format="%.2f", width="small"),
            "Labels": st.column_config.NumberColumn(format="%d", width="small"),
            "Other fields": st.column_config.NumberColumn(format="%.2f"),
        },
    )
    rows = event.selection.rows if event is not None else []
    if rows:
        external_id = str(page.iloc[rows[0]]["external_id"])
        if st.button(f"Adjudicate {plain(external_id)}", key="rev-open-selected", type="primary"):
            lead.open_item(ctx, campaign.name, external_id)


def _page_start(n_rows: int) -> int:
    """The first row of the page of the table shown (a page picker past PAGE_ROWS rows)."""
    pages = -(-n_rows // PAGE_ROWS)
    if pages <= 1:
        return 0
    if int(st.session_state.get("rev-page", 1)) > pages:  # the queue got shorter
        st.session_state["rev-page"] = pages
    number = st.number_input(
        "Page",
        min_value=1,
        max_value=pages,
        value=1,
        key="rev-page",
        help=f"{PAGE_ROWS:,} items a page, in queue order.",
    )
    st.caption(f"Page {int(number):,} of {pages:,}, {PAGE_ROWS:,} items a page.")
    return (int(number) - 1) * PAGE_ROWS


def _bulk(ctx: AppContext, campaign: Campaign, unanimous: pd.DataFrame) -> None:
    st.subheader("Unanimous items")
    if unanimous.empty:
        st.caption("No unanimous item is waiting.")
        return
    st.caption(
        "Every annotator gave the same value of every field, nobody flagged the item or left "
        "a note on it. Accepting records those labels as the adjudication (method "
        "`bulk_unanimous`) with the schema's default band; items whose labels break a "
        "consistency rule are skipped."
    )
    sure = st.checkbox(
        f"Accept the {len(unanimous):,} unanimous items shown above as labeled",
        key="rev-bulk-sure",
    )
    if st.button("Accept unanimous items", key="rev-bulk", disabled=not sure):
        result = None
        with ctx.guard(), ctx.session(immediate=True) as s:
            result = review.bulk_accept_unanimous(
                session=s,
                actor=ctx.user,
                campaign=campaign,
                item_ids=[int(i) for i in unanimous["item_id"]],
            )
        if result is not None:
            reasons = sorted(set(result.skipped.values()))
            skipped = f"; {len(result.skipped):,} skipped ({'; '.join(reasons[:3])})"
            st.session_state[FLASH_KEY] = f"Accepted {len(result.accepted):,} unanimous items" + (
                skipped if result.skipped else ""
            )
            st.session_state.pop("rev-bulk-sure", None)
            st.rerun()
