"""`annotate release` and `annotate diff`: publish a gold release, compare two."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from annotate.accounts.auth import system_actor
from annotate.cli.common import (
    CampaignOpt,
    DbOpt,
    JsonOpt,
    OutOpt,
    _session,
    _settings,
    _short,
    _table,
    _waiting,
    handle_errors,
    out,
)
from annotate.errors import AnnotateError
from annotate.storage.campaigns import (
    get_campaign,
)
from annotate.storage.releases import dumps


@handle_errors
def release_cmd(
    campaign: CampaignOpt,
    out_dir: OutOpt = None,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            help="KEY=VALUE inclusion rule (repeatable): min_annotations=K (default: the "
            "campaign's overlap), accept=unanimous|majority, split_credit=0.5.",
        ),
    ] = None,
    license_id: Annotated[
        str, typer.Option("--license", help="License id written into the dataset card.")
    ] = "other",
    allow_rule_violations: Annotated[
        bool,
        typer.Option(
            "--allow-rule-violations",
            help="Release gold records that break the schema's consistency rules without an "
            "override recorded at adjudication; the manifest records this and lists them.",
        ),
    ] = False,
    source_license: Annotated[
        list[str] | None,
        typer.Option(
            "--source-license",
            help="SOURCE=LICENSE (repeatable): the licence of items whose `source` is SOURCE, "
            "for the card (an item's own metadata `license` wins).",
        ),
    ] = None,
    as_json: JsonOpt = False,
    dbu: DbOpt = None,
) -> None:
    """Publish the campaign's gold set as the next immutable release, OUT/NAME/vN.

    Prints the release's path last (with --json: one JSON object whose `path` is the path).
    """
    from annotate.release.publish import create_release
    from annotate.release.selection import InclusionPolicy

    rules = InclusionPolicy.from_pairs(policy or [])
    licences: dict[str, str] = {}
    for pair in source_license or []:
        source, sep, licence = pair.partition("=")
        if not sep or not source.strip() or not licence.strip():
            raise AnnotateError(f"--source-license expects SOURCE=LICENSE, got `{pair}`")
        licences[source.strip()] = licence.strip()
    with _session(dbu) as (settings, session):
        target = get_campaign(session=session, name=campaign)
        result = create_release(
            session=session,
            actor=system_actor(),
            campaign=target,
            out_dir=out_dir or settings.exports_dir,
            policy=rules,
            license=license_id,
            allow_rule_violations=allow_rule_violations,
            on_wait=_waiting,
            source_licenses=licences,
        )
    if as_json:
        out.print(dumps(result.model_dump(mode="json")), markup=False)
        return
    out.print(
        f"release v{result.version} of {result.dataset}: {result.gold} gold items "
        f"({result.adjudicated} adjudicated), {result.held_back} held back (see manifest.json)",
        markup=False,
    )
    if result.rule_violations:
        out.print(
            f"{result.rule_violations} rule violation(s) released with --allow-rule-violations "
            "(listed in manifest.json, policy.rule_violations)",
            markup=False,
        )
    if result.diff is not None:
        d = result.diff
        out.print(
            f"since v{result.parent_version}: {d.added} added, {d.removed} removed, "
            f"{d.changed} changed, {d.unchanged} unchanged",
            markup=False,
        )
    out.print(result.path, markup=False)


@handle_errors
def diff_cmd(
    name: Annotated[str, typer.Argument(help="Dataset (campaign) name.")],
    old: Annotated[str, typer.Argument(help="The earlier release, e.g. v1.")],
    new: Annotated[str, typer.Argument(help="The later release, e.g. v2.")],
    out_dir: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Items added, removed and changed (field, old and new value) between two releases."""
    from annotate.release.publish import diff_releases

    result = diff_releases(
        out_dir=out_dir or _settings(None).exports_dir, dataset=name, old=old, new=new
    )
    if as_json:
        out.print(dumps(result.model_dump(mode="json")), markup=False)
        return
    s = result.summary
    out.print(
        f"{name} {result.old} -> {result.new}: {s.added} added, {s.removed} removed, "
        f"{s.changed} changed, {s.unchanged} unchanged",
        markup=False,
    )
    rows: list[dict[str, Any]] = [
        {"id": i, "change": "added", "old": "", "new": ""} for i in result.added
    ]
    rows += [{"id": i, "change": "removed", "old": "", "new": ""} for i in result.removed]
    for item in result.changed:
        for ch in item.changes:
            old_value, new_value = ch.old, ch.new
            if ch.band_changes is not None:
                old_value = {a: o for a, (o, _) in ch.band_changes.items()}
                new_value = {a: n for a, (_, n) in ch.band_changes.items()}
            rows.append(
                {
                    "id": item.id,
                    "change": ch.field,
                    "old": _short(old_value),
                    "new": _short(new_value),
                }
            )
    if rows:
        _table(rows, empty="")
