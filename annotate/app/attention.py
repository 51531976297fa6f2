"""The dashboard's "Where to look first": one line per weak spot, each a link to where to act.

The weakest field links to its confusion view, the annotator whose labels lower agreement most
to their row in the annotator table (both on the dashboard, through query parameters), and
the most disagreed open item to its adjudication.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from annotate import review
from annotate.app import lead
from annotate.app.context import AppContext
from annotate.app.render import plain
from annotate.review.figures import CampaignReport

# Query parameters the links set: the field whose confusion to show, the annotator to put first.
FIELD_PARAM = "field"
ANNOTATOR_PARAM = "annotator"

Target = tuple[str, dict[str, str]] | None  # (page, query parameters) a line links to


def lines(
    report: CampaignReport, items: pd.DataFrame, people: pd.DataFrame
) -> list[tuple[str, Target]]:
    """One line each, with where it links: the weakest field (its confusion view), category,
    annotator (their row in the annotator table) and the top item (its adjudication)."""
    lines: list[tuple[str, Target]] = []
    rows = [r for r in review.summary_rows(report) if r["alpha"] is not None]
    fields = [r for r in rows if not r["measure"].startswith("failure")]
    if fields:
        worst = min(fields, key=lambda r: r["alpha"])
        field = worst["measure"].split(" (")[0]
        lines.append(
            (
                f"Field: {plain(worst['measure'])}, alpha {lead.fmt(worst['alpha'])} "
                f"({worst['reading']}): see how annotators confuse its values",
                ("dashboard", {FIELD_PARAM: field}),
            )
        )
    categories = [r for r in rows if r["measure"].startswith("failure: ")]
    if categories:
        worst = min(categories, key=lambda r: r["alpha"])
        lines.append(
            (
                f"Failure category: {plain(worst['measure'][9:])}, alpha "
                f"{lead.fmt(worst['alpha'])} ({worst['reading']})",
                None,
            )
        )
    deltas = people["alpha_delta"].dropna() if not people.empty else pd.Series(dtype=float)
    if not deltas.empty and deltas.min() < 0:
        who = str(deltas.idxmin())
        lines.append(
            (
                f"Annotator: {plain(who)}: the banded right-action alpha rises by "
                f"{-deltas.min():.3f} without their labels (the headline row above is nominal)",
                ("dashboard", {ANNOTATOR_PARAM: who}),
            )
        )
    open_items = items[~items["adjudicated"]] if not items.empty else items
    if not open_items.empty:
        top = open_items.sort_values("disagreement", ascending=False, kind="stable").iloc[0]
        if top["disagreement"] > 0:
            lines.append(
                (
                    f"Item: {plain(top['external_id'])}, disagreement "
                    f"{top['disagreement']:.2f} (top of the Review queue): adjudicate it",
                    ("adjudicate", {lead.ITEM_PARAM: str(top["external_id"])}),
                )
            )
    return lines or [("Nothing stands out yet.", None)]


def show(ctx: AppContext, campaign: str, line: str, target: Target) -> None:
    """A link where the page is registered (the app), else the line as text."""
    page = ctx.pages.get(target[0]) if target is not None else None
    if target is None or page is None:
        st.markdown(f"- {line}")
        return
    query = {lead.CAMPAIGN_PARAM: campaign, **target[1]}
    st.page_link(page, label=line, query_params=query, icon=":material/arrow_forward:")
