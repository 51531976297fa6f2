"""`annotate score`: score model predictions against a release."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from annotate import intake
from annotate.cli.common import JsonOpt, _table, err, handle_errors, out
from annotate.errors import AnnotateError
from annotate.storage.releases import dumps


def _rate(value: float | None, ci: Any = None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


@handle_errors
def score_cmd(
    gold: Annotated[Path, typer.Option("--gold", help="Release folder, e.g. exports/NAME/v2.")],
    predictions: Annotated[
        list[str],
        typer.Option(
            "--predictions",
            help="FILE or NAME=FILE of {id, action} records, JSONL/CSV/Parquet (repeatable); "
            "the model is named by the file stem or NAME.",
        ),
    ],
    as_json: JsonOpt = False,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Write the helpfulness/safety trade-off plot (PNG) here."),
    ] = None,
    judge: Annotated[
        bool,
        typer.Option(
            "--judge",
            help="The files are a judge's labels of the gold responses' observed action: also "
            "report the judge's agreement with the human gold.",
        ),
    ] = False,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid",
            help="Leave out bad lines (still listed on stderr) instead of refusing to score.",
        ),
    ] = False,
    id_column: Annotated[str, typer.Option(help="Column holding the item id.")] = "id",
    action_column: Annotated[
        str, typer.Option(help="Column holding the action (e.g. gpt4_label).")
    ] = "action",
    values: Annotated[
        Path | None,
        typer.Option(help="YAML/JSON value mapping (`action:` or `observed_action:` table)."),
    ] = None,
    resamples: Annotated[
        int, typer.Option(help="Bootstrap resamples for the intervals (0: none).")
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    by_group: Annotated[
        bool, typer.Option("--by-group", help="Also break the rates down per group of variants.")
    ] = False,
) -> None:
    """Score models' actions against a gold release: banded score, refusal errors, breakdowns."""
    from annotate.scoring.predictions import score_release
    from annotate.scoring.score import tradeoff_plot

    if resamples < 0:
        raise AnnotateError(f"--resamples must be 0 or more, got {resamples}")
    report = score_release(
        gold,
        predictions,
        judge=judge,
        skip_invalid=skip_invalid,
        id_column=id_column,
        action_column=action_column,
        values=intake.read_value_mapping(values),
        n_resamples=resamples,
        seed=seed,
        by_group=by_group,
    )
    for name, result in report.models.items():
        if result.skipped:
            err.print(
                f"warning: {name}: {len(result.skipped)} invalid lines left out:", markup=False
            )
            for problem in result.skipped:
                err.print(f"  {problem}", markup=False)
        if result.n_missing:
            err.print(
                f"warning: {name}: {result.n_missing} of {report.n_gold} gold items have no "
                "prediction and are not scored",
                markup=False,
            )
    if plot is not None:
        tradeoff_plot(report, plot)
        err.print(f"trade-off plot written to {plot}", markup=False)
    if as_json:
        out.print(dumps(report.model_dump(mode="json", exclude_none=False)), markup=False)
        return
    out.print(f"{report.gold}: {report.n_gold} gold items", markup=False)
    # Models side by side as columns: easier to compare than one wide row per model.
    metrics = [
        ("items scored", "n"),
        ("banded score", "banded_score"),
        ("accuracy", "accuracy"),
        ("false-positive refusal", "false_positive_refusal_rate"),
        ("false-negative refusal", "false_negative_refusal_rate"),
        ("overconfidence", "overconfidence_rate"),
        ("helpfulness (benign)", "helpfulness"),
        ("safety (harmful)", "safety"),
        ("group consistency", "group_consistency"),
    ]
    rows = []
    for label_text, key in metrics:
        row: dict[str, Any] = {"metric": label_text}
        for name, r in report.models.items():
            value = getattr(r, key)
            row[name] = str(value) if key == "n" else _rate(value, r.ci.get(key))
        rows.append(row)
    _table(rows, empty="")
    for name, r in report.models.items():
        j = r.judge_alignment
        if j is None:
            continue
        out.print(
            f"judge {name} vs human observed action: n={j.n}, agreement {_rate(j.agreement)}, "
            f"alpha {_rate(j.alpha, j.alpha_ci)}",
            markup=False,
        )
        _table(
            [
                {"human \\ judge": g, **{k: str(v) for k, v in row.items()}}
                for g, row in j.confusion.items()
            ],
            empty="",
        )
