"""`annotate agreement`: a campaign's agreement figures."""

from __future__ import annotations

from typing import Annotated

import typer

from annotate.accounts.auth import system_actor
from annotate.cli.common import CampaignOpt, DbOpt, JsonOpt, _session, _table, handle_errors, out
from annotate.storage.campaigns import (
    get_campaign,
)
from annotate.storage.releases import dumps


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


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
    _table(
        [
            {
                "measure": r["measure"],
                "alpha": _num(r["alpha"]),
                "95% interval": f"{_num(r['ci_low'])} to {_num(r['ci_high'])}"
                if r["ci_low"] is not None
                else "-",
                "units": r["n_units"],
                "reading": r["reading"],
            }
            for r in summary_rows(report)
        ],
        empty="no labels yet",
    )
    for judge, figures in report.machine_annotators.items():
        for name, f in figures.fields.items():
            share = "-" if f.agreement is None else f"{f.agreement:.0%}"
            out.print(
                f"judge {judge}: {name} matches the human majority on {share} of {f.n_items}",
                markup=False,
            )
