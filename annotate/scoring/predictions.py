"""Read prediction files for scoring; `score_release` runs the whole thing.

Predictions are `{id, action}` records in JSONL, CSV/TSV or Parquet, one file per model (or
judge). Judged responses may also carry `failure_categories` (a list, or `;`-separated; a
response with `leaked` earns no credit), `leaked` (true/false), `answer_quality` and
`refusal_style`. Reading is all or nothing: every unknown id, unknown or empty action, bad
judgement value and repeated id is reported with file and line, and nothing is scored, unless
`skip_invalid` is set, in which case those lines are left out and listed in the report. Ids
that the release holds back, or that belong to another version of the dataset, are counted and
reported but not errors, unless `strict`.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from annotate import intake
from annotate.errors import ImportProblem, ValidationProblem
from annotate.scoring.gold import held_back_ids, load_gold, sibling_ids
from annotate.scoring.score import Gold, ModelInput, ScoreReport, score

JUDGEMENTS = ("failure_categories", "leaked", "answer_quality", "refusal_style")
ANSWER_QUALITY = ("useful", "partly_useful", "not_useful")
REFUSAL_STYLE = ("explains_and_redirects", "bare", "preachy", "wrong_reason")
TRUE, FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}


@dataclass
class Predictions:
    """One model's predictions, aligned with the gold items (-1: not predicted)."""

    name: str
    path: Path
    codes: np.ndarray
    leaked: np.ndarray | None = None
    answer_quality: list[str | None] | None = None
    refusal_style: list[str | None] | None = None
    skipped: list[str] = field(default_factory=list)
    not_scored: dict[str, int] = field(default_factory=dict)

    def as_input(self) -> ModelInput:
        """The arrays `score` takes."""
        return ModelInput(
            codes=self.codes,
            leaked=self.leaked,
            answer_quality=self.answer_quality,
            refusal_style=self.refusal_style,
        )


def parse_named(arg: str) -> tuple[str, Path]:
    """`NAME=FILE` -> (NAME, FILE); a plain FILE is named by its stem."""
    name, sep, rest = arg.partition("=")
    if sep and name and rest and "/" not in name and "\\" not in name and not Path(arg).exists():
        return name.strip(), Path(rest)
    path = Path(arg)
    return path.stem, path


@dataclass(frozen=True)
class Known:
    """Ids that are not in the gold but are not errors either: counted as not scored."""

    held_back: frozenset[str] = frozenset()
    other_release: frozenset[str] = frozenset()


def _judgement(column: str, value: Any) -> tuple[Any, str | None]:
    """(parsed value, problem) of one judgement cell."""
    if value is None or (isinstance(value, float) and value != value):
        return None, None
    if column == "failure_categories":
        items = value if isinstance(value, list) else str(value).split(";")
        return [str(v).strip() for v in items if str(v).strip()], None
    text = str(value).strip().lower() if not isinstance(value, bool) else str(value).lower()
    if column == "leaked":
        if text in TRUE:
            return True, None
        if text in FALSE:
            return False, None
        return None, f"`{_show(str(value))}` is not true or false"
    allowed = ANSWER_QUALITY if column == "answer_quality" else REFUSAL_STYLE
    if not text:
        return None, None
    if text not in allowed:
        return None, f"`{_show(str(value))}` is not one of {', '.join(allowed)}"
    return text, None


def read_predictions(
    path: Path,
    gold: Gold,
    *,
    name: str,
    id_column: str = "id",
    action_column: str = "action",
    values: Mapping[str, str] | None = None,
    skip_invalid: bool = False,
    known: Known | None = None,
    strict: bool = False,
) -> Predictions:
    """One prediction file against `gold`: each line's action (and judgements) per gold item.

    Actions are translated through `values` first (e.g. a judge's `2_full_refusal` ->
    `refuse`). Raises ImportProblem listing every bad line (file:line: field: problem) unless
    `skip_invalid`, which leaves those lines out and returns them in `skipped`. Ids in `known`
    are counted in `not_scored`; with `strict` they are errors too.
    """
    values = values or {}
    clean = _clean_codes(path, gold, id_column, action_column, values)
    if clean is not None:  # the common case, whole columns at once; else line by line
        return Predictions(name=name, path=path, codes=clean)
    position = gold.positions
    index = {a: i for i, a in enumerate(gold.actions)}
    known = known or Known()
    codes = np.full(len(gold), -1, dtype=np.int64)
    judged: dict[str, list[Any]] = {}
    seen: dict[str, int] = {}
    problems: list[str] = []
    not_scored = {"held_back": 0, "other_release": 0}
    rows = _rows(path, id_column, action_column)
    for line, item, raw, extra in rows:
        where = f"{path}:{line}"
        action = values.get(raw, raw)
        if not item:
            problems.append(f"{where}: field `{id_column}`: is empty")
            continue
        if item not in position:
            kind = (
                "held_back"
                if item in known.held_back
                else "other_release"
                if item in known.other_release
                else None
            )
            if kind is None:
                problems.append(
                    f"{where}: field `{id_column}`: no item `{_show(item)}` in {gold.name}"
                )
            elif strict:
                what = (
                    "held back by" if kind == "held_back" else "not in, but in another version of,"
                )
                problems.append(
                    f"{where}: field `{id_column}`: item `{_show(item)}` is {what} {gold.name}"
                )
            else:
                not_scored[kind] += 1
            continue
        if item in seen:
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
            bad = False
            parsed = {}
            for column, cell in extra.items():
                value, problem = _judgement(column, cell)
                if problem:
                    problems.append(f"{where}: field `{column}`: {problem}")
                    bad = True
                parsed[column] = value
            if bad:
                continue
            seen[item] = line
            i = position[item]
            codes[i] = index[action]
            for column, value in parsed.items():
                judged.setdefault(column, [None] * len(gold))[i] = value
    if not seen and not problems:
        raise ImportProblem([f"{path}: no predictions in the file"])
    if problems and not skip_invalid:
        raise ImportProblem(problems)
    leaked = None
    if "leaked" in judged or "failure_categories" in judged:
        flags = judged.get("leaked", [None] * len(gold))
        cats = judged.get("failure_categories", [None] * len(gold))
        leaked = np.array(
            [bool(f) or ("leaked" in (c or [])) for f, c in zip(flags, cats, strict=True)]
        )
    return Predictions(
        name=name,
        path=path,
        codes=codes,
        leaked=leaked,
        answer_quality=judged.get("answer_quality"),
        refusal_style=judged.get("refusal_style"),
        skipped=problems,
        not_scored={k: v for k, v in not_scored.items() if v},
    )


def _rows(
    path: Path, id_column: str, action_column: str
) -> list[tuple[int, str, str, dict[str, Any]]]:
    """(line, id, action, judgement cells) of every row; Arrow's fast path for plain JSONL."""
    fast = _fast_jsonl(path, id_column, action_column)
    if fast is not None:
        return [(line, item, action, {}) for line, item, action in fast]
    out: list[tuple[int, str, str, dict[str, Any]]] = []
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
        # Per row: in JSONL a judgement may first appear on a later line (CSV and Parquet
        # rows all have the same keys anyway).
        extra = {c: row[c] for c in JUDGEMENTS if c in row}
        out.append((line, _text(row.get(id_column)), _text(row.get(action_column)), extra))
    return out


def _arrow_jsonl(path: Path, id_column: str, action_column: str) -> pa.Table | None:
    """The id and action columns of a JSONL file without judgement fields, parsed by Arrow;
    None for anything else (another format, bad JSON, judgements, non-text values)."""
    if path.suffix.lower() not in {".jsonl", ".ndjson"}:
        return None
    try:
        raw = path.read_bytes()
        if any(f'"{name}"'.encode() in raw for name in JUDGEMENTS):
            return None
        table = pa_json.read_json(
            io.BytesIO(raw),
            parse_options=pa_json.ParseOptions(
                explicit_schema=pa.schema([(id_column, pa.string()), (action_column, pa.string())]),
                unexpected_field_behavior="ignore",
            ),
        )
    except (OSError, pa.ArrowException):
        return None
    if table.column(id_column).null_count or table.column(action_column).null_count:
        return None
    return table


# The characters Python's str.strip() removes (str.isspace), as an RE2 class: a value that
# starts or ends with one takes the line-by-line path, which strips it.
_SPACE = (
    r"\t-\r\x{1c}-\x{20}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}"
    r"\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
)
_PADDED = f"^[{_SPACE}]|[{_SPACE}]$"


def _clean_codes(
    path: Path, gold: Gold, id_column: str, action_column: str, values: Mapping[str, str]
) -> np.ndarray | None:
    """Action codes per gold item for a JSONL file whose every line is a valid prediction of a
    distinct gold id (no judgements, no padding), read column-wise; None for any other file,
    which `read_predictions` then reads line by line, with its exact messages."""
    table = _arrow_jsonl(path, id_column, action_column)
    if table is None or not table.num_rows:
        return None
    ids = table.column(id_column).combine_chunks()
    actions = table.column(action_column).combine_chunks()
    if (
        pc.any(pc.match_substring_regex(ids, _PADDED)).as_py()
        or pc.any(pc.match_substring_regex(actions, _PADDED)).as_py()
    ):
        return None
    index = gold.id_index
    if not index.is_unique:
        return None
    position = index.get_indexer(ids.to_numpy(zero_copy_only=False))
    if (position < 0).any() or np.bincount(position, minlength=len(gold)).max() > 1:
        return None
    encoded = actions.dictionary_encode()
    lookup = {a: i for i, a in enumerate(gold.actions)}
    names = encoded.dictionary.to_pylist()
    per_name = np.array([lookup.get(values.get(a, a), -1) for a in names], dtype=np.int64)
    found = per_name[encoded.indices.to_numpy(zero_copy_only=False)]
    if (found < 0).any():
        return None
    codes = np.full(len(gold), -1, dtype=np.int64)
    codes[position] = found
    return codes


def _fast_jsonl(
    path: Path, id_column: str, action_column: str
) -> list[tuple[int, str, str]] | None:
    """The same as `_rows` for a well-formed JSONL file without judgement fields, parsed by
    Arrow (several times faster); None for anything else, which then takes the slow path and
    its exact messages."""
    table = _arrow_jsonl(path, id_column, action_column)
    if table is None:
        return None
    raw = path.read_bytes()
    ids = table.column(id_column).to_pylist()
    actions = table.column(action_column).to_pylist()
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
    strict: bool = False,
    id_column: str = "id",
    action_column: str = "action",
    values: Mapping[str, Mapping[str, str]] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> ScoreReport:
    """Score prediction files (`FILE` or `NAME=FILE`) against the gold release in `release`.

    With `judge=True` the files are a judge's labels of the gold responses' observed action,
    and each also gets `judge_alignment` with the human gold. `values` is a value mapping as
    for `import-labels --values`: the `action` table if present, else `observed_action`.
    Problems in any file are all reported together (ImportProblem); nothing is scored then.
    """
    if not predictions:
        raise ValidationProblem("Give at least one predictions file (--predictions FILE)")
    gold = load_gold(release)
    known = Known(
        held_back=frozenset(held_back_ids(release)),
        other_release=frozenset(sibling_ids(release) - set(gold.ids)),
    )
    table = dict((values or {}).get("action") or (values or {}).get("observed_action") or {})
    read = read_all(
        predictions,
        gold,
        id_column=id_column,
        action_column=action_column,
        values=table,
        skip_invalid=skip_invalid,
        known=known,
        strict=strict,
    )
    return score(
        gold,
        {name: p.as_input() for name, p in read.items()},
        judges=list(read) if judge else [],
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
        skipped={name: p.skipped for name, p in read.items()},
        not_scored={name: p.not_scored for name, p in read.items()},
    )


def read_all(
    predictions: Sequence[str | Path], gold: Gold, **options: Any
) -> dict[str, Predictions]:
    """Every prediction file, named; all files' problems reported together."""
    read: dict[str, Predictions] = {}
    problems: list[str] = []
    for arg in predictions:
        name, path = parse_named(str(arg))
        if name in read:
            raise ValidationProblem(
                f"Two prediction files are named `{name}`: name them with NAME=FILE"
            )
        try:
            read[name] = read_predictions(path, gold, name=name, **options)
        except ImportProblem as exc:
            problems.extend(exc.problems)
    if problems:
        raise ImportProblem(problems)
    return read


def score_uploads(release: Path, files: Sequence[tuple[str, bytes]], **options: Any) -> ScoreReport:
    """`score_release` on files given as (file name, contents), e.g. uploaded in the app.

    Each file is written under its own name to a temporary folder and scored exactly as the
    CLI scores it (the model is named by the file's stem); problems name the file as given.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="annotate-score-") as tmp:
        args: list[str] = []
        for i, (filename, data) in enumerate(files):
            safe = Path(filename).name or f"predictions-{i}.jsonl"
            folder = Path(tmp) / str(i)
            folder.mkdir()
            (folder / safe).write_bytes(data)
            args.append(str(folder / safe))
        try:
            report = score_release(release, args, **options)
        except ImportProblem as exc:
            raise ImportProblem([_untemp(p, tmp) for p in exc.problems]) from None
        except ValidationProblem as exc:
            raise ValidationProblem(_untemp(str(exc), tmp)) from None
        for result in report.models.values():
            result.skipped = [_untemp(p, tmp) for p in result.skipped]
        return report


def _untemp(problem: str, tmp: str) -> str:
    """A problem's text with the temporary folder taken out of file names."""
    import re

    return re.sub(re.escape(tmp) + r"/\d+/", "", problem)
