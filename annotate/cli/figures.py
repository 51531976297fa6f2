"""`annotate agreement`: a campaign's agreement figures."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from annotate.accounts.auth import system_actor
from annotate.cli.common import CampaignOpt, DbOpt, JsonOpt, _session, _table, handle_errors, out
from annotate.storage.campaigns import (
    get_campaign,
)
from annotate.storage.releases import dumps


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _prob(value: float | None) -> str:
    if value is None:
        return "-"
    return "<0.01" if value < 0.01 else f"{value:.2f}"


def _agreement_row(row: dict[str, Any], requested: int) -> dict[str, str]:
    """One line of the agreement table: the interval, or a dash when the reading says why not."""
    interval = "-"
    if row["ci_low"] is not None:
        interval = f"{row['ci_low']:.3f} to {row['ci_high']:.3f}"
        if row["resamples"] < requested:
            interval += f" ({row['resamples']}/{requested})"
    return {
        "measure": row["measure"],
        "alpha": _num(row["alpha"]),
        "95% interval": interval,
        "P<.667": _prob(row["p_below_tentative"]),
        "P<.8": _prob(row["p_below_reliable"]),
        "AC": _num(row["gwet"]),
        "items": str(row["n_units"]),
        "reading": row["verdict"],
    }


@handle_errors
def agreement_cmd(
    campaign: CampaignOpt,
    as_json: JsonOpt = False,
    bootstrap: Annotated[
        int,
        typer.Option("--bootstrap", min=0, help="Bootstrap resamples for the intervals; 0: none."),
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap resampling.")] = 0,
    dbu: DbOpt = None,
) -> None:
    """Krippendorff's alpha per field, banded and per failure category; judges apart."""
    from annotate.review.figures import campaign_report, summary_rows

    with _session(dbu) as (_s, session):
        target = get_campaign(session=session, name=campaign)
        report = campaign_report(
            session=session,
            actor=system_actor(),
            campaign=target,
            n_resamples=bootstrap,
            seed=seed,
        )
    if as_json:
        out.print(dumps(report.to_json_dict()), markup=False)
        return
    out.print(
        f"{report.campaign}: {report.n_items} items, {report.complete_items} with "
        f"{report.overlap}+ labels, {report.n_annotators} human annotators",
        markup=False,
    )
    rows = summary_rows(report)
    _table(
        [_agreement_row(r, report.n_resamples) for r in rows], empty="no labels yet", compact=True
    )
    out.print(
        "interval: 95% BCa bootstrap over items (resamples used, where fewer than "
        f"{report.n_resamples} had alpha defined); P<.667 / P<.8: probability that alpha is "
        "below Krippendorff's smallest acceptable values; AC: Gwet's AC1 (AC2 on banded rows).",
        markup=False,
    )
    for reading in sorted({r["reading"] for r in rows if r["reading"] != r["verdict"]}):
        out.print(f"reading: {reading}", markup=False)
    for note in sorted({r["note"] for r in rows if r["note"]}):
        out.print(f"note: {note}", markup=False)
    for judge, figures in report.machine_annotators.items():
        for name, f in figures.fields.items():
            share = "-" if f.agreement is None else f"{f.agreement:.0%}"
            out.print(
                f"judge {judge}: {name} matches the human majority on {share} of {f.n_items}",
                markup=False,
            )
