"""Read a gold release and prediction files for scoring; `score_release` runs the whole thing.

Predictions are `{id, action}` records in JSONL, CSV/TSV or Parquet, one file per model (or
judge). Reading is all or nothing: every unknown id, unknown or empty action and repeated id is
reported with file and line, and nothing is scored, unless `skip_invalid` is set, in which case
those lines are left out and listed in the report.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from annotate import intake
from annotate.errors import ImportProblem, NotFound, ValidationProblem
from annotate.release.folders import read_label_schema, read_manifest, verify_file
from annotate.release.formats import GOLD_PARQUET
from annotate.scoring import score as scoring

GOLD_COLUMNS = (
    "id",
    "right_action",
    "band",
    "observed_action",
    "intent",
    "epistemic_status",
    "category",
    "model",
    "group",
)


def load_gold(release: Path) -> scoring.Gold:
    """The gold release in folder `release` as a `scoring.Gold` table.

    Reads gold.parquet after checking it against the manifest's sha256 (a modified release
    is refused: ValidationProblem); NotFound when `release` is not a release folder.
    """
    if not release.is_dir():
        raise NotFound(f"Gold release {release} does not exist (expected exports/NAME/vN)")
    manifest = read_manifest(release)
    verify_file(release, GOLD_PARQUET, manifest)
    schema = read_label_schema(release)
    actions = schema.action_labels
    index = {a: i for i, a in enumerate(actions)}
    table = pq.read_table(release / GOLD_PARQUET, columns=list(GOLD_COLUMNS))
    cols = {name: table.column(name).to_pylist() for name in GOLD_COLUMNS if name != "band"}
    band = table.column("band").combine_chunks()
    credit = np.zeros((table.num_rows, len(actions)))
    for j, action in enumerate(actions):
        if action in band.type.names:  # type: ignore[attr-defined]
            values = band.field(action).to_numpy(zero_copy_only=False)  # type: ignore[attr-defined]
            credit[:, j] = np.nan_to_num(values.astype(np.float64), nan=0.0)
    return scoring.Gold(
        name=f"{manifest.get('dataset', release.parent.name)} v{manifest.get('version', '?')}",
        actions=actions,
        ids=[str(i) for i in cols["id"]],
        right=np.array([index.get(a, -1) for a in cols["right_action"]], dtype=np.int64),
        credit=credit,
        observed=np.array(
            [index.get(a, -1) if a else -1 for a in cols["observed_action"]], dtype=np.int64
        ),
        intent=cols["intent"],
        epistemic_status=cols["epistemic_status"],
        category=cols["category"],
        model=cols["model"],
        group=cols["group"],
    )


@dataclass
class Predictions:
    """One model's predictions, aligned with the gold items (-1: not predicted)."""

    name: str
    path: Path
    codes: np.ndarray
    skipped: list[str] = field(default_factory=list)


def parse_named(arg: str) -> tuple[str, Path]:
    """`NAME=FILE` -> (NAME, FILE); a plain FILE is named by its stem."""
    name, sep, rest = arg.partition("=")
    if sep and name and rest and "/" not in name and "\\" not in name and not Path(arg).exists():
        return name.strip(), Path(rest)
    path = Path(arg)
    return path.stem, path


def read_predictions(
    path: Path,
    gold: scoring.Gold,
    *,
    name: str,
    id_column: str = "id",
    action_column: str = "action",
    values: Mapping[str, str] | None = None,
    skip_invalid: bool = False,
) -> Predictions:
    """One prediction file against `gold`: each line's action as a code per gold item.

    Actions are translated through `values` first (e.g. a judge's `2_full_refusal` ->
    `refuse`). Raises ImportProblem listing every bad line (file:line: field: problem) unless
    `skip_invalid`, which leaves those lines out and returns them in `skipped`.
    """
    position = gold.positions
    index = {a: i for i, a in enumerate(gold.actions)}
    values = values or {}
    codes = np.full(len(gold), -1, dtype=np.int64)
    seen: dict[str, int] = {}
    problems: list[str] = []
    cells = _fast_jsonl(path, id_column, action_column)
    if cells is None:
        cells = _cells(path, id_column, action_column)
    for line, item, raw in cells:
        where = f"{path}:{line}"
        action = values.get(raw, raw)
        if not item:
            problems.append(f"{where}: field `{id_column}`: is empty")
        elif item not in position:
            problems.append(f"{where}: field `{id_column}`: no item `{_show(item)}` in {gold.name}")
        elif item in seen:
            problems.append(
                f"{where}: field `{id_column}`: item `{_show(item)}` was already predicted on "
                f"line {seen[item]}"
            )
        elif not action:
            problems.append(f"{where}: field `{action_column}`: is empty")
        elif action not in index:
            problems.append(
                f"{where}: field `{action_column}`: `{_show(raw)}` is not an action "
                f"({', '.join(gold.actions)})"
                + ("" if values else "; translate other labels with --values")
            )
        else:
            seen[item] = line
            codes[position[item]] = index[action]
    if not seen and not problems:
        raise ImportProblem([f"{path}: no predictions in the file"])
    if problems and not skip_invalid:
        raise ImportProblem(problems)
    return Predictions(name=name, path=path, codes=codes, skipped=problems)


def _cells(path: Path, id_column: str, action_column: str) -> list[tuple[int, str, str]]:
    """(line, id, action) of every row, through the importers' readers (any format)."""
    out: list[tuple[int, str, str]] = []
    for line, row in intake.read_rows(path):
        if not out:
            missing = [c for c in (id_column, action_column) if c not in row]
            if missing:
                raise ImportProblem(
                    [
                        f"{path}: missing column(s) {', '.join(missing)}; the file has "
                        f"{', '.join(map(str, row))} (choose others with --id-column and "
                        "--action-column)"
                    ]
                )
        out.append((line, _text(row.get(id_column)), _text(row.get(action_column))))
    return out


def _fast_jsonl(
    path: Path, id_column: str, action_column: str
) -> list[tuple[int, str, str]] | None:
    """The same as `_cells` for a well-formed JSONL file, parsed by Arrow (several times
    faster); None for anything else, which then takes the slow path and its exact messages."""
    if path.suffix.lower() not in {".jsonl", ".ndjson"}:
        return None
    try:
        raw = path.read_bytes()
        table = pa_json.read_json(
            io.BytesIO(raw),
            parse_options=pa_json.ParseOptions(
                explicit_schema=pa.schema([(id_column, pa.string()), (action_column, pa.string())]),
                unexpected_field_behavior="ignore",
            ),
        )
    except (OSError, pa.ArrowException):
        return None
    ids = table.column(id_column).to_pylist()
    actions = table.column(action_column).to_pylist()
    if None in ids or None in actions:
        return None
    # Arrow skips blank lines; count them back in so that messages name the file's lines.
    lines = [n for n, text in enumerate(raw.split(b"\n"), start=1) if text.strip()]
    if len(lines) != len(ids):
        return None
    return [
        (line, item.strip(), action.strip())
        for line, item, action in zip(lines, ids, actions, strict=True)
    ]


def _text(value: object) -> str:
    """A cell as stripped text: CSV gives strings, JSONL and Parquet may give numbers or None."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return (value if isinstance(value, str) else str(value)).strip()


def _show(value: str, limit: int = 60) -> str:
    flat = " ".join(value.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def score_release(
    release: Path,
    predictions: Sequence[str | Path],
    *,
    judge: bool = False,
    skip_invalid: bool = False,
    id_column: str = "id",
    action_column: str = "action",
    values: Mapping[str, Mapping[str, str]] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    by_group: bool = False,
) -> scoring.ScoreReport:
    """Score prediction files (`FILE` or `NAME=FILE`) against the gold release in `release`.

    With `judge=True` the files are a judge's labels of the gold responses' observed action,
    and each also gets `judge_alignment` with the human gold. `values` is a value mapping as
    for `import-labels --values`: the `action` table if present, else `observed_action`.
    Problems in any file are all reported together (ImportProblem); nothing is scored then.
    """
    if not predictions:
        raise ValidationProblem("Give at least one predictions file (--predictions FILE)")
    gold = load_gold(release)
    table = dict((values or {}).get("action") or (values or {}).get("observed_action") or {})
    read: dict[str, Predictions] = {}
    problems: list[str] = []
    for arg in predictions:
        name, path = parse_named(str(arg))
        if name in read:
            raise ValidationProblem(
                f"Two prediction files are named `{name}`: name them with NAME=FILE"
            )
        try:
            read[name] = read_predictions(
                path,
                gold,
                name=name,
                id_column=id_column,
                action_column=action_column,
                values=table,
                skip_invalid=skip_invalid,
            )
        except ImportProblem as exc:
            problems.extend(exc.problems)
    if problems:
        raise ImportProblem(problems)
    return scoring.score(
        gold,
        {name: p.codes for name, p in read.items()},
        judges=list(read) if judge else [],
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
        by_group=by_group,
        skipped={name: p.skipped for name, p in read.items()},
    )
