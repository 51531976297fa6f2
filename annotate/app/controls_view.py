"""The dashboard's Controls section: each annotator's credit on control items, and drift."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import streamlit as st

from annotate.app import figure_process, warm_figures
from annotate.app.context import AppContext, fragment, fragment_run, show_error
from annotate.app.warm_figures import Served
from annotate.errors import AnnotateError
from annotate.labeling.qualify import reset_qualification
from annotate.review.controls import (
    RECENT,
    ControlCredit,
    control_report,
    controls_version,
    list_controls,
)
from annotate.storage import db
from annotate.storage.users import get_user
from annotate.table import LabelTable

# Annotator -> leave-one-out alpha over their last items and over those before.
Drift = Mapping[str, tuple[float | None, float | None]]


def control_credit(
    ctx: AppContext, table: LabelTable, key: str, drift: Drift
) -> Served[list[ControlCredit]]:
    """Each annotator's control credit, kept warm (`warm_figures`) with the labels' version
    `key` (control answers and adjudications are in it) and `controls_version` (marks,
    qualification resets, settings), which is read afresh on every call."""
    with ctx.session() as s:
        version = controls_version(session=s, actor=ctx.user, campaign=table.campaign)
    compute = credit_of(ctx, table, dict(drift))
    return warm_figures.figure(ctx, table.campaign, "controls", version, key, compute)


@figure_process.recipe
def credit_of(
    ctx: AppContext, table: LabelTable, drift: Drift
) -> Callable[[], list[ControlCredit]]:
    """Each annotator's control credit (read from the database) with `drift`."""

    def compute() -> list[ControlCredit]:
        with db.session_scope(ctx.engine) as s:
            return control_report(session=s, actor=ctx.user, campaign=table.campaign, drift=drift)

    return compute


def credit_columns(
    ctx: AppContext, table: LabelTable, key: str, drift: Served[Drift], served: list[Served[Any]]
) -> pd.DataFrame:
    """Per annotator: control answers, banded credit, its interval, trend and drift, for the
    annotator table (empty when the campaign has no control items, or while `drift` or the
    credit are computing for the first time: the Controls section says so). `drift` is
    `review.leave_one_out_drift` of the labels shown (the dashboard keeps it warm)."""
    with ctx.session() as s:
        marked = list_controls(session=s, actor=ctx.user, campaign=table.campaign)
    if not marked or not drift.ready:
        return pd.DataFrame(index=pd.Index([], name="annotator"))
    got = control_credit(ctx, table, key, drift.value)
    served.append(got)
    if not got.ready:
        return pd.DataFrame(index=pd.Index([], name="annotator"))
    report = got.value
    return pd.DataFrame(
        {
            "control_answers": [r.answers for r in report],
            "control_credit": [r.credit for r in report],
            "control_ci": ["" if r.ci is None else f"{r.ci[0]:.2f}-{r.ci[1]:.2f}" for r in report],
            "control_trend": [r.trend for r in report],
            "drift": ["; ".join(r.drift_reasons) if r.drift else "" for r in report],
        },
        index=pd.Index([r.annotator for r in report], name="annotator"),
    )


def controls_frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    """The table the dashboard shows (one row per annotator)."""
    return pd.DataFrame(
        rows,
        columns=[
            "Annotator",
            "Control answers",
            "Credit (banded)",
            "95% interval",
            "Trend",
            "Drift",
            "Qualification",
        ],
    )


@fragment
def controls_view(
    ctx: AppContext,
    table: LabelTable,
    key: str,
    drift: Served[Drift],
    served: list[Served[Any]],
) -> None:
    """Control credit per annotator with its interval, trend and drift flag (`drift`:
    `review.leave_one_out_drift` of the labels of version `key`)."""
    st.subheader("Controls")
    campaign = table.campaign
    if not drift.ready:
        warm_figures.show_waiting(drift, "each annotator's drift")
        return
    start = len(served)
    try:
        with ctx.session() as s:
            marked = list_controls(session=s, actor=ctx.user, campaign=campaign)
        got = control_credit(ctx, table, key, drift.value)
        served.append(got)
    except AnnotateError as exc:
        show_error(exc)
        return
    if not got.ready:
        warm_figures.show_waiting(got, "the control credit")
        if fragment_run():
            warm_figures.keep_updated(ctx, served[start:])
        return
    report = got.value
    qual = (
        f"{campaign.qualification_items} qualification items at mean credit "
        f"{campaign.qualification_threshold:.2f}"
        if campaign.qualification_items
        else "no qualification"
    )
    st.caption(
        f"{len(marked)} control items · control rate {campaign.control_rate:.0%} · {qual} · "
        f"drift: a fall of more than {campaign.drift_margin:.2f} in control credit or "
        f"leave-one-out alpha over an annotator's last {RECENT} items. Mark controls on the "
        "Adjudicate page or with `annotate controls mark`."
    )
    rows: list[dict[str, object]] = [
        {
            "Annotator": r.annotator,
            "Control answers": r.answers,
            "Credit (banded)": None if r.credit is None else round(r.credit, 3),
            "95% interval": "" if r.ci is None else f"{r.ci[0]:.2f} to {r.ci[1]:.2f}",
            "Trend": None if r.trend is None else round(r.trend, 3),
            "Drift": "; ".join(r.drift_reasons) or "no",
            "Qualification": r.qualification,
        }
        for r in report
    ]
    if not rows:
        st.info("No annotator has labeled in this campaign yet.")
        return
    st.dataframe(
        controls_frame(rows),
        hide_index=True,
        key="dash-controls",
        column_config={
            "Credit (banded)": st.column_config.NumberColumn(format="%.2f"),
            "Trend": st.column_config.NumberColumn(
                format="%+.2f", help=f"Mean credit over the last {RECENT} answers minus before"
            ),
        },
    )
    failed = [r.annotator for r in report if r.qualification == "failed"]
    if failed:
        who = st.selectbox("Did not qualify", failed, key="dash-requalify-who")
        if st.button("Let them take the qualification again", key="dash-requalify") and who:
            try:
                with ctx.session(immediate=True) as s:
                    reset_qualification(
                        session=s,
                        actor=ctx.user,
                        campaign=campaign,
                        annotator=get_user(session=s, name=who),
                    )
            except AnnotateError as exc:
                show_error(exc)
                return
            st.success(f"{who} may take the qualification again.")
