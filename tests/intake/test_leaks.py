"""Label-like columns of an items file are refused before import, and `--drop` lets them out.

A column that holds labels (XSTest's `annotation_1` ... `final_label`, a judge's verdict, the
authors' expected action) would otherwise become item metadata that annotators see beside the
item, and labeling would no longer be blind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, XSTEST
from typer.testing import CliRunner

from annotate.cli import app
from annotate.errors import AnnotateError
from annotate.intake import ColumnMap, parse_items
from annotate.intake.leaks import LabelColumns, find_label_columns, refuse_label_columns
from annotate.schema import LabelSchema, resolve_schema

runner = CliRunner()
V2 = resolve_schema("refusal-v2", ROOT / "schemas")
XSTEST_GPT4 = XSTEST / "model_completions" / "xstest_v2_completions_gpt4.csv"
XSTEST_LABELS = ["annotation_1", "annotation_2", "agreement", "final_label"]


def write(tmp_path: Path, header: list[str], *rows: list[str], name: str = "items.csv") -> Path:
    path = tmp_path / name
    lines = [",".join(header)] + [",".join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def found(path: Path, schema: LabelSchema = V2, cmap: ColumnMap | None = None) -> list[str]:
    return [c.column for c in find_label_columns(parse_items(path, cmap), schema)]


@pytest.mark.parametrize(
    "column",
    [
        "annotation_1",
        "Annotation_rater",
        "label",
        "Labels",
        "label_2",
        "human_label",
        "final_label",
        "gold",
        "gold_action",
        "judge",
        "judge_verdict",
        "agreement",
        "AGREEMENT",
    ],
)
def test_each_label_like_name_is_found(tmp_path: Path, column: str) -> None:
    path = write(tmp_path, ["id", "prompt", "response", column], ["1", "hi", "hello", "x y"])
    assert found(path) == [column]


@pytest.mark.parametrize("column", ["model_name", "notes", "focus", "relabel_note", "prejudged"])
def test_other_names_with_free_values_are_kept(tmp_path: Path, column: str) -> None:
    path = write(tmp_path, ["id", "prompt", "response", column], ["1", "hi", "hello", "x y"])
    assert found(path) == []


def test_a_column_of_option_names_is_found_by_its_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        ["id", "prompt", "response", "verdict", "remark"],
        ["1", "hi", "hello", "answer", "answer"],
        ["2", "how", "so", "refuse", "looks fine"],
        ["3", "why", "because", "", ""],
    )
    (leak,) = find_label_columns(parse_items(path), V2)
    assert leak.column == "verdict" and "right_action" in leak.why


def test_a_multi_choice_column_is_found_by_its_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        ["id", "prompt", "response", "failures"],
        ["1", "hi", "hello", "over_refusal;leaked"],
        ["2", "how", "so", "grounding_failure"],
    )
    assert found(path) == ["failures"]


def test_mapped_and_dropped_columns_are_not_leaks(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        ["id", "prompt", "label", "final_label"],
        ["1", "hi", "hello", "refuse"],
    )
    cmap = ColumnMap.build(["response=label"], None, None, drop=["final_label"])
    assert found(path, cmap=cmap) == []


def test_the_seed_files_hints_are_found_and_the_demo_drop_list_clears_them() -> None:
    from annotate.intake.demo import SEED_HINTS

    path = ROOT / "seed_prompts" / "03_harmful.jsonl"
    hints = set(found(path))
    assert {"expected_right_action", "expected_intent"} <= hints
    assert found(path, cmap=ColumnMap(drop=set(SEED_HINTS))) == []


def test_refusal_names_file_columns_and_both_ways_out(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        ["id", "prompt", "response", "annotation_1", "final_label"],
        ["1", "hi", "hello", "answer", "answer"],
    )
    with pytest.raises(LabelColumns) as caught:
        refuse_label_columns(str(path), parse_items(path), V2, campaign="c1")
    message = str(caught.value)
    assert isinstance(caught.value, AnnotateError)
    assert caught.value.columns == ["annotation_1", "final_label"]
    assert str(path) in message and "Nothing was imported" in message
    assert "`annotation_1`" in message and "`final_label`" in message
    assert f"annotate import-labels {path} --campaign c1" in message
    assert "--drop annotation_1 --drop final_label" in message


# -- through the command line, on every backend ------------------------------------------------


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def items_in(db_url: str, campaign: str) -> int:
    return int(json.loads(ok("status", "-c", campaign, "--json", "--db", db_url))["items"])


def test_cli_refuses_label_columns_and_imports_nothing(db_url: str, tmp_path: Path) -> None:
    ok("init", "--db", db_url)
    ok("campaign", "create", "c", "--db", db_url)
    path = write(
        tmp_path,
        ["id", "prompt", "response", "judge_label", "verdict"],
        ["1", "hi", "hello", "ok", "answer"],
        ["2", "how", "so", "ok", "refuse"],
    )
    result = runner.invoke(app, ["import", str(path), "-c", "c", "--db", db_url])
    assert result.exit_code == 1
    err = result.stderr
    assert "Traceback" not in err and str(path) in err
    assert "`judge_label`" in err and "`verdict`" in err
    assert "annotate import-labels" in err and "--drop judge_label --drop verdict" in err
    assert items_in(db_url, "c") == 0  # all or nothing
    out = ok(
        "import", str(path), "-c", "c", "--drop", "judge_label", "--drop", "verdict",
        "--db", db_url,
    )  # fmt: skip
    assert out.strip() == "imported 2 items into c (0 already there)"
    assert items_in(db_url, "c") == 2


def test_a_column_that_is_not_labels_can_be_kept(db_url: str, tmp_path: Path) -> None:
    ok("init", "--db", db_url)
    ok("campaign", "create", "c", "--db", db_url)
    # Reads like confidence / severity options, but is the item's difficulty: not a label.
    path = write(
        tmp_path,
        ["id", "prompt", "response", "difficulty", "judge_label"],
        ["1", "hi", "hello", "low", "ok"],
        ["2", "how", "so", "high", "ok"],
    )
    result = runner.invoke(app, ["import", str(path), "-c", "c", "--db", db_url])
    assert result.exit_code == 1 and "`difficulty`" in result.stderr
    assert "--keep COLUMN" in result.stderr
    # Keeping one column does not let the other through.
    result = runner.invoke(
        app, ["import", str(path), "-c", "c", "--keep", "difficulty", "--db", db_url]
    )
    assert result.exit_code == 1 and "`judge_label`" in result.stderr
    assert "`difficulty`" not in result.stderr and items_in(db_url, "c") == 0
    out = ok(
        "import", str(path), "-c", "c", "--keep", "difficulty", "--drop", "judge_label",
        "--db", db_url,
    )  # fmt: skip
    assert "imported 2 items" in out and items_in(db_url, "c") == 2


def test_mapping_file_drops_count_too(db_url: str, tmp_path: Path) -> None:
    ok("init", "--db", db_url)
    ok("campaign", "create", "c", "--db", db_url)
    path = write(tmp_path, ["id", "prompt", "response", "gold"], ["1", "hi", "hello", "answer"])
    mapping = tmp_path / "map.yaml"
    mapping.write_text("drop: [gold]\n")
    out = ok("import", str(path), "-c", "c", "--mapping", str(mapping), "--db", db_url)
    assert "imported 1 items" in out


@pytest.mark.skipif(not XSTEST_GPT4.exists(), reason=f"XSTest data not found at {XSTEST}")
def test_xstest_completions_are_refused_until_their_label_columns_are_dropped(
    db_url: str,
) -> None:
    ok("init", "--db", db_url)
    ok("campaign", "create", "xs", "--db", db_url)
    base = ["import", str(XSTEST_GPT4), "-c", "xs", "--column", "response=completion"]
    base += ["--column", "category=type", "--db", db_url]
    refused = runner.invoke(app, base)
    assert refused.exit_code == 1
    for column in XSTEST_LABELS:
        assert f"`{column}`" in refused.stderr
    assert "--drop annotation_1 --drop annotation_2 --drop agreement --drop final_label" in (
        refused.stderr
    )
    assert items_in(db_url, "xs") == 0
    drops = [arg for c in XSTEST_LABELS for arg in ("--drop", c)]
    assert "imported 450 items" in ok(*base, *drops)


def test_numbers_and_nested_values_are_not_option_names(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    rows = [
        {"id": "1", "prompt": "hi", "response": "hello", "n": 3, "extra": {"a": 1}},
        {"id": "2", "prompt": "how", "response": "so", "n": 4.5, "extra": [1, 2]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert found(path) == []
