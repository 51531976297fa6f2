"""`annotate campaign create|list|set` and `annotate status`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from annotate.accounts.auth import system_actor
from annotate.cli.common import CampaignOpt, DbOpt, JsonOpt, _session, _table, handle_errors, out
from annotate.errors import AnnotateError
from annotate.schema import resolve_schema
from annotate.storage.campaigns import (
    campaign_status,
    create_campaign,
    get_campaign,
    list_campaigns,
)
from annotate.storage.releases import dumps


@handle_errors
def campaign_create(
    name: Annotated[str, typer.Argument(help="Campaign name (no `/`).")],
    overlap: Annotated[int, typer.Option(help="Annotators per item (k).")] = 2,
    schema: Annotated[
        str | None,
        typer.Option(help="Schema id (refusal-v2, refusal-v1) or path to a schema file."),
    ] = None,
    guidelines: Annotated[
        Path | None, typer.Option(help="Markdown file with the annotation guidelines.")
    ] = None,
    member: Annotated[
        list[str] | None,
        typer.Option("--member", help="Restrict to these annotators (repeatable)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the per-annotator item order.")] = None,
    dbu: DbOpt = None,
) -> None:
    """Create a campaign; the schema defaults to the shipped refusal-v2 (refusal-v1 by --schema)."""
    with _session(dbu) as (settings, session):
        label_schema = resolve_schema(schema, settings.schemas_dir)
        text = ""
        if guidelines is not None:
            try:
                text = guidelines.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise AnnotateError(f"{guidelines}: cannot read guidelines: {exc}") from None
        campaign = create_campaign(
            session=session,
            actor=system_actor(),
            name=name,
            schema=label_schema,
            overlap=overlap,
            guidelines=text,
            members=member or [],
            seed=seed,
        )
        out.print(
            f"campaign {campaign.name} created (schema {label_schema.id}, overlap "
            f"{campaign.overlap})",
            markup=False,
        )


@handle_errors
def campaign_list(as_json: JsonOpt = False, dbu: DbOpt = None) -> None:
    """List campaigns with their schema, overlap and item counts."""
    with _session(dbu) as (_settings_, session):
        rows = []
        for c in list_campaigns(session=session, actor=system_actor()):
            st = campaign_status(session=session, actor=system_actor(), campaign=c)
            rows.append(
                {
                    "name": c.name,
                    "schema": st.schema_id,
                    "overlap": c.overlap,
                    "items": st.items,
                    "complete_items": st.complete_items,
                    "restricted": c.restricted,
                    "visible_metadata": list(c.visible_metadata or []),
                }
            )
    if as_json:
        out.print(dumps(rows), markup=False)
        return
    for row in rows:
        keys = row["visible_metadata"]
        row["visible_metadata"] = ", ".join(keys) if isinstance(keys, list) and keys else "-"
    _table(rows, empty="no campaigns yet: annotate campaign create NAME")


@handle_errors
def campaign_set(
    name: Annotated[str, typer.Argument(help="Campaign name.")],
    visible_metadata: Annotated[
        str | None,
        typer.Option(
            "--visible-metadata",
            help="Comma-separated keys annotators may see besides the text: model, category, "
            "group, source or metadata keys; '' shows them the text and a handle only.",
        ),
    ] = None,
    control_rate: Annotated[
        float | None, typer.Option(help="Share of claims served a control item (0-1).")
    ] = None,
    qualification_items: Annotated[
        int | None, typer.Option(help="Control items a new annotator labels first (0: none).")
    ] = None,
    qualification_threshold: Annotated[
        float | None, typer.Option(help="Mean credit that opens real items (0-1).")
    ] = None,
    drift_margin: Annotated[
        float | None, typer.Option(help="Fall over the last 50 items that flags drift.")
    ] = None,
    dbu: DbOpt = None,
) -> None:
    """Change a campaign's settings: what annotators see, controls and qualification."""
    controls = (control_rate, qualification_items, qualification_threshold, drift_margin)
    if visible_metadata is None and all(v is None for v in controls):
        raise AnnotateError(
            "Nothing to set: give --visible-metadata KEY[,KEY...] (or ''), --control-rate, "
            "--qualification-items, --qualification-threshold or --drift-margin"
        )
    from annotate.review.controls import set_control_settings
    from annotate.storage.visibility import metadata_keys, set_visible_metadata

    lines: list[str] = []
    with _session(dbu, immediate=True) as (_settings_, session):
        target = get_campaign(session=session, name=name)
        if any(v is not None for v in controls):
            c = set_control_settings(
                session=session,
                actor=system_actor(),
                campaign=target,
                control_rate=control_rate,
                qualification_items=qualification_items,
                qualification_threshold=qualification_threshold,
                drift_margin=drift_margin,
            )
            lines.append(
                f"campaign {c.name}: control rate {c.control_rate}, qualification "
                f"{c.qualification_items} items at {c.qualification_threshold}, "
                f"drift margin {c.drift_margin}"
            )
        if visible_metadata is not None:
            keys = [k for k in (part.strip() for part in visible_metadata.split(",")) if k]
            set_visible_metadata(session=session, actor=system_actor(), campaign=target, keys=keys)
            known = set(metadata_keys(session=session, actor=system_actor(), campaign=target))
            shown = list(target.visible_metadata)
            what = ", ".join(shown) if shown else "the text and a handle only"
            lines.append(f"campaign {name}: annotators see {what}")
            lines += [
                f"note: no item has `{key}` yet; it shows once items have it"
                for key in shown
                if key not in known
            ]
    for line in lines:
        out.print(line, markup=False)


@handle_errors
def status(campaign: CampaignOpt, as_json: JsonOpt = False, dbu: DbOpt = None) -> None:
    """Items, human annotations and annotators, and items with k labels (judges apart)."""
    with _session(dbu) as (_s, session):
        target = get_campaign(session=session, name=campaign)
        st = campaign_status(session=session, actor=system_actor(), campaign=target)
    if as_json:
        out.print(dumps(st.model_dump()), markup=False)
        return
    _table([{"what": k, "value": v} for k, v in st.model_dump().items()], empty="")
