"""`annotate score`: score model predictions against a release."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

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
        typer.Option("--plot", help="Write the normative frontier (PNG) to this file."),
    ] = None,
    plots: Annotated[
        Path | None,
        typer.Option(
            "--plots",
            help="Write normative, epistemic and bucket plots (PNG and SVG) into this folder.",
        ),
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
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Refuse ids the release holds back or that belong to another version of it "
            "(by default they are counted and reported, not scored).",
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
) -> None:
    """Score models' actions against a gold release: banded score, error buckets, comparisons."""
    from annotate import intake
    from annotate.scoring.plots import tradeoff_plot, write_plots
    from annotate.scoring.predictions import score_release
    from annotate.scoring.text import report_lines

    if resamples < 0:
        raise AnnotateError(f"--resamples must be 0 or more, got {resamples}")
    report = score_release(
        gold,
        predictions,
        judge=judge,
        skip_invalid=skip_invalid,
        strict=strict,
        id_column=id_column,
        action_column=action_column,
        values=intake.read_value_mapping(values),
        n_resamples=resamples,
        seed=seed,
    )
    for name, result in report.models.items():
        if result.skipped:
            err.print(
                f"warning: {name}: {len(result.skipped)} invalid lines left out:", markup=False
            )
            for problem in result.skipped:
                err.print(f"  {problem}", markup=False)
        for kind, count in result.not_scored.items():
            what = "held back by the release" if kind == "held_back" else "from another version"
            err.print(f"note: {name}: {count} predicted ids are {what}; not scored", markup=False)
        if result.n_missing:
            err.print(
                f"warning: {name}: {result.n_missing} of {report.n_gold} gold items have no "
                "prediction and are not scored",
                markup=False,
            )
    if plot is not None:
        tradeoff_plot(report, plot)
        err.print(f"normative frontier written to {plot}", markup=False)
    if plots is not None:
        for path in write_plots(report, plots):
            err.print(f"plot written to {path}", markup=False)
    if as_json:
        out.print(dumps(report.model_dump(mode="json", exclude_none=False)), markup=False)
        return
    for line in report_lines(report):
        out.print(line, markup=False)
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


@handle_errors
def judge_check_cmd(
    gold: Annotated[Path, typer.Option("--gold", help="Release folder, e.g. exports/NAME/v2.")],
    predictions: Annotated[
        str,
        typer.Option(
            "--predictions",
            help="FILE or NAME=FILE: the judge's action label for the gold responses "
            "({id, action}, JSONL/CSV/Parquet).",
        ),
    ],
    as_json: JsonOpt = False,
    threshold: Annotated[
        float,
        typer.Option(help="Least Krippendorff's alpha (lower end of its interval) to trust."),
    ] = 0.8,
    min_items: Annotated[int, typer.Option(help="Least items judged by both.")] = 30,
    id_column: Annotated[str, typer.Option(help="Column holding the item id.")] = "id",
    action_column: Annotated[str, typer.Option(help="Column holding the action.")] = "action",
    values: Annotated[
        Path | None,
        typer.Option(help="YAML/JSON value mapping (`action:` or `observed_action:` table)."),
    ] = None,
    resamples: Annotated[
        int, typer.Option(help="Bootstrap resamples for alpha's interval.")
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
) -> None:
    """Check a grader against the release's human observed action before trusting it.

    Exit code 0 when trusted, 2 when not (tentative, not trusted or too few items), 1 on
    bad input.
    """
    from annotate import intake
    from annotate.scoring.judges import judge_verdict
    from annotate.scoring.predictions import score_release

    if not 0 < threshold <= 1:
        raise AnnotateError(f"--threshold must be in (0, 1], got {threshold}")
    if resamples < 0 or min_items < 1:
        raise AnnotateError("--resamples must be 0 or more and --min-items 1 or more")
    report = score_release(
        gold,
        [predictions],
        judge=True,
        id_column=id_column,
        action_column=action_column,
        values=intake.read_value_mapping(values),
        n_resamples=resamples,
        seed=seed,
    )
    [(name, result)] = report.models.items()
    alignment = result.judge_alignment
    assert alignment is not None
    verdict = judge_verdict(alignment, threshold=threshold, min_items=min_items)
    if as_json:
        out.print(
            dumps(
                {
                    "judge": name,
                    "gold": report.gold,
                    "alignment": alignment.model_dump(mode="json"),
                    **verdict.model_dump(mode="json"),
                }
            ),
            markup=False,
        )
    else:
        out.print(
            f"judge {name} vs human observed action on {report.gold}: n={alignment.n}, "
            f"agreement {_rate(alignment.agreement)}, "
            f"alpha {_rate(alignment.alpha, alignment.alpha_ci)}",
            markup=False,
        )
        _table(
            [
                {"human \\ judge": g, **{k: str(v) for k, v in row.items()}}
                for g, row in alignment.confusion.items()
            ],
            empty="",
        )
        out.print(f"verdict: {verdict.verdict} ({verdict.reason})", markup=False)
    if not verdict.trusted:
        raise typer.Exit(2)
