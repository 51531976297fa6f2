"""`annotate controls mark|unmark|list|report|reset` and `annotate campaign set`."""

from __future__ import annotations

from typing import Annotated

import typer

from annotate.accounts.auth import system_actor
from annotate.cli.common import CampaignOpt, DbOpt, JsonOpt, _session, _table, handle_errors, out
from annotate.storage.campaigns import get_campaign
from annotate.storage.releases import dumps
from annotate.storage.users import get_user

ItemsArg = Annotated[list[str], typer.Argument(help="External ids of the items.")]


@handle_errors
def controls_mark(campaign: CampaignOpt, items: ItemsArg, dbu: DbOpt = None) -> None:
    """Make adjudicated items controls (all or nothing)."""
    from annotate.review.controls import mark_controls

    with _session(dbu, immediate=True) as (_s, session):
        target = get_campaign(session=session, name=campaign)
        added = mark_controls(
            session=session, actor=system_actor(), campaign=target, external_ids=items
        )
    out.print(f"{len(added)} item(s) marked as controls in {campaign}", markup=False)


@handle_errors
def controls_unmark(campaign: CampaignOpt, items: ItemsArg, dbu: DbOpt = None) -> None:
    """Items stop being controls."""
    from annotate.review.controls import unmark_controls

    with _session(dbu, immediate=True) as (_s, session):
        target = get_campaign(session=session, name=campaign)
        removed = unmark_controls(
            session=session, actor=system_actor(), campaign=target, external_ids=items
        )
    out.print(f"{len(removed)} item(s) no longer controls in {campaign}", markup=False)


@handle_errors
def controls_list(campaign: CampaignOpt, as_json: JsonOpt = False, dbu: DbOpt = None) -> None:
    """The campaign's control items, who marked them, and their answers."""
    from annotate.review.controls import list_controls

    with _session(dbu) as (_s, session):
        target = get_campaign(session=session, name=campaign)
        rows = [
            {
                "item": r.external_id,
                "marked_by": r.marked_by,
                "marked_at": r.marked_at.isoformat(),
                "answers": r.answers,
            }
            for r in list_controls(session=session, actor=system_actor(), campaign=target)
        ]
    if as_json:
        out.print(dumps(rows), markup=False)
        return
    _table(rows, empty="no controls yet: annotate controls mark --campaign C ITEM")


@handle_errors
def controls_report(campaign: CampaignOpt, as_json: JsonOpt = False, dbu: DbOpt = None) -> None:
    """Each annotator's credit on controls, its interval, trend and drift flag."""
    from annotate.review.controls import control_report

    with _session(dbu) as (_s, session):
        target = get_campaign(session=session, name=campaign)
        report = control_report(session=session, actor=system_actor(), campaign=target)
    rows = [r.to_json_dict() for r in report]
    if as_json:
        out.print(dumps({"campaign": campaign, "annotators": rows}), markup=False)
        return
    _table(
        [
            {
                "annotator": r.annotator,
                "answers": r.answers,
                "credit": "-" if r.credit is None else f"{r.credit:.2f}",
                "95% interval": "-" if r.ci is None else f"{r.ci[0]:.2f}-{r.ci[1]:.2f}",
                "trend": "-" if r.trend is None else f"{r.trend:+.2f}",
                "drift": "; ".join(r.drift_reasons) or "no",
                "qualification": r.qualification,
            }
            for r in report
        ],
        empty="no annotators yet",
    )


@handle_errors
def controls_reset(
    campaign: CampaignOpt,
    user: Annotated[str, typer.Argument(help="Annotator to qualify again.")],
    dbu: DbOpt = None,
) -> None:
    """Let an annotator take the campaign's qualification again."""
    from annotate.labeling.qualify import reset_qualification

    with _session(dbu, immediate=True) as (_s, session):
        target = get_campaign(session=session, name=campaign)
        annotator = get_user(session=session, name=user)
        reset_qualification(
            session=session, actor=system_actor(), campaign=target, annotator=annotator
        )
    out.print(f"{user} may take the qualification of {campaign} again", markup=False)
