"""`annotate import` and `annotate import-labels`: items and labels from files."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from annotate.accounts.auth import system_actor
from annotate.cli.common import (
    CampaignOpt,
    DbOpt,
    _progress,
    _write_session,
    handle_errors,
    out,
)
from annotate.errors import AnnotateError
from annotate.storage.campaigns import (
    get_campaign,
)
from annotate.storage.schemas import campaign_schema

if TYPE_CHECKING:
    from annotate.storage.annotations import LabelViolation


@handle_errors
def import_cmd(
    path: Annotated[Path, typer.Argument(help="CSV, TSV, JSONL or Parquet file of items.")],
    campaign: CampaignOpt,
    column: Annotated[
        list[str] | None,
        typer.Option("--column", help="FIELD=COLUMN: read FIELD from COLUMN (repeatable)."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="FIELD=VALUE: the same value for every row (repeatable)."),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(help="YAML/JSON file with `columns`, `constants` and `drop`."),
    ] = None,
    drop: Annotated[
        list[str] | None,
        typer.Option(
            "--drop",
            help="COLUMN: leave this column out of the items (repeatable); label-like columns "
            "(annotation_*, label*, *_label, gold*, judge*, agreement, or a column of the "
            "schema's option names) must be dropped or imported with import-labels.",
        ),
    ] = None,
    keep: Annotated[
        list[str] | None,
        typer.Option(
            "--keep",
            help="COLUMN: import this label-like column as metadata anyway, because it is not "
            "labels (repeatable); annotators see metadata only where the campaign allows it.",
        ),
    ] = None,
    dbu: DbOpt = None,
) -> None:
    """Import items (prompt or conversation, response, metadata); all or nothing.

    Label-like columns are refused: import them with import-labels, or leave them out (--drop).
    """
    from annotate import intake
    from annotate.storage.items import import_items

    cmap = intake.ColumnMap.build(column, set_, mapping, drop=drop)
    with _progress(path) as tick:
        records = intake.parse_items(path, cmap, progress=tick)
        with _write_session(dbu) as (_s, session):
            target = get_campaign(session=session, name=campaign)
            intake.refuse_label_columns(
                str(path),
                records,
                campaign_schema(session=session, campaign=target),
                campaign=campaign,
                keep=keep or (),
            )
            result = import_items(
                session=session,
                actor=system_actor(),
                campaign=target,
                records=records,
                source=str(path),
            )
    out.print(
        f"imported {result.added} items into {campaign} ({result.unchanged} already there)",
        markup=False,
    )


@handle_errors
def import_labels_cmd(
    path: Annotated[Path, typer.Argument(help="CSV, TSV, JSONL or Parquet file of labels.")],
    campaign: CampaignOpt,
    values: Annotated[
        Path | None,
        typer.Option(help="YAML/JSON `{field: {from: to}}` translating values."),
    ] = None,
    machine: Annotated[
        bool, typer.Option("--machine", help="The annotators are automatic judges.")
    ] = False,
    wide: Annotated[
        list[str] | None,
        typer.Option(
            "--wide",
            help="COLUMN=ANNOTATOR: read a wide file where COLUMN holds ANNOTATOR's value "
            "of --field (repeatable).",
        ),
    ] = None,
    field: Annotated[
        str | None, typer.Option(help="With --wide: the field the columns hold.")
    ] = None,
    id_column: Annotated[str, typer.Option(help="With --wide: the item id column.")] = "id",
    violations: Annotated[
        Path | None,
        typer.Option(
            help="Where to write every consistency rule the labels break (CSV: item_id, "
            "annotator, rule, message); default: FILE-STEM.violations.csv in the current "
            "folder, written only when there are violations.",
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Refuse the import when any labels break a rule."),
    ] = False,
    dbu: DbOpt = None,
) -> None:
    """Import labels made elsewhere, long format: item_id, annotator, field, value.

    Every consistency rule of the schema that an annotator's labels of an item break is
    counted in the summary and written to the violations file; --strict refuses the import.
    """
    from annotate import intake
    from annotate.storage.annotations import import_labels

    wide_map: dict[str, str] = {}
    for pair in wide or []:
        col_name, sep, who = pair.partition("=")
        if not sep or not col_name or not who:
            raise AnnotateError(f"--wide `{pair}`: expected COLUMN=ANNOTATOR")
        wide_map[col_name] = who
    if wide_map and not field:
        raise AnnotateError("--wide needs --field FIELD (e.g. --field observed_action)")
    rows = intake.parse_label_rows(
        path,
        intake.read_value_mapping(values),
        wide=wide_map or None,
        wide_field=field,
        id_column=id_column if wide_map else "item_id",
    )
    with _write_session(dbu) as (_s, session):
        target = get_campaign(session=session, name=campaign)
        result = import_labels(
            session=session,
            actor=system_actor(),
            campaign=target,
            rows=rows,
            machine=machine,
            source=str(path),
            strict=strict,
        )
    out.print(
        f"labels imported into {campaign}: {result.annotations_added} annotations added, "
        f"{result.annotations_updated} updated, {result.unchanged} unchanged"
        + (f"; new annotators: {', '.join(result.users_created)}" if result.users_created else ""),
        markup=False,
    )
    if result.violations:
        report = violations or Path(f"{path.stem}.violations.csv")
        out.print(_report_violations(result.violations, report), markup=False)
    else:
        out.print("no labels break the schema's consistency rules", markup=False)


def _report_violations(found: list[LabelViolation], path: Path) -> str:
    """Write the violations to `path` (CSV) and return the summary line."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["item_id", "annotator", "rule", "message"])
        writer.writerows([v.item_id, v.annotator, v.rule, v.message] for v in found)
    items = len({v.item_id for v in found})
    labels = len({(v.item_id, v.annotator) for v in found})
    by_rule = ", ".join(f"{rule} {n}" for rule, n in Counter(v.rule for v in found).most_common())
    return (
        f"{labels} labeled item(s) ({items} item(s)) break the schema's consistency rules: "
        f"{by_rule}; every violation is listed in {path}"
    )
