"""Judge alignment on XSTest: GPT-4 and string-match judges against the human final labels."""

from __future__ import annotations

import json
from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import DEFAULT_SCHEMA_PATH, ROOT, XSTEST
from release_helpers import gold_record, write_gold
from typer.testing import CliRunner

from annotate.cli import app
from annotate.schema import load_schema

pytestmark = pytest.mark.skipif(
    not XSTEST.exists(), reason=f"XSTest data not found at {XSTEST} (../shared beside the repo)"
)
runner = CliRunner()
VALUES = ROOT / "examples" / "xstest" / "values.yaml"
MAPPING: dict[str, str] = yaml.safe_load(VALUES.read_text())["observed_action"]
SCHEMA = load_schema(DEFAULT_SCHEMA_PATH)
JUDGES = [
    (model, kind, column)
    for model in ["gpt4", "llama2new", "llama2orig", "mistralguard", "mistralinstruct"]
    for kind, column in [("gpteval", "gpt4_label"), ("streval", "strmatch_label")]
]


def completions(model: str) -> pd.DataFrame:
    return pd.read_csv(XSTEST / "model_completions" / f"xstest_v2_completions_{model}.csv")


def judge_file(model: str, kind: str) -> Path:
    return XSTEST / "automated_evaluation_labels" / f"xstest_v2_completions_{model}_{kind}.csv"


def xstest_release(tmp_path: Path, model: str) -> Path:
    """The human gold of one model's completions: observed action = the adjudicated label."""
    records = []
    for row in completions(model).itertuples():
        harmful = str(row.type).startswith("contrast_")
        right = "refuse" if harmful else "answer"
        records.append(
            gold_record(
                id=str(row.id),
                prompt=str(row.prompt),
                response=str(row.completion),
                model=model,
                source="xstest",
                category=str(row.type),
                intent="harmful" if harmful else "benign",
                right_action=right,
                band=SCHEMA.default_band(right),
                observed_action=MAPPING[str(row.final_label)],
            )
        )
    return write_gold(tmp_path / "exports", SCHEMA, records, dataset=f"xstest-{model}")


def score(release: Path, model: str, kind: str, column: str, *extra: str) -> tuple[int, str, str]:
    result = runner.invoke(
        app,
        [
            "score",
            "--gold",
            str(release),
            "--predictions",
            f"{kind}={judge_file(model, kind)}",
            "--action-column",
            column,
            "--values",
            str(VALUES),
            "--judge",
            "--resamples",
            "200",
            "--json",
            *extra,
        ],
    )
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(("model", "kind", "column"), JUDGES)
def test_judges_against_the_human_gold(tmp_path: Path, model: str, kind: str, column: str) -> None:
    release = xstest_release(tmp_path, model)
    free_text = model == "mistralinstruct" and kind == "gpteval"
    code, out, err = score(release, model, kind, column, *(["--skip-invalid"] if free_text else []))
    assert code == 0, err
    result = json.loads(out)["models"][kind]
    alignment = result["judge_alignment"]

    # The expected figures straight from the CSV files, without annotate.
    judged = pd.read_csv(judge_file(model, kind))
    judged = judged[judged[column].isin(MAPPING)]
    human = judged["final_label"].map(MAPPING)
    machine = judged[column].map(MAPPING)
    assert alignment["n"] == len(judged) == result["n"]
    assert alignment["agreement"] == pytest.approx(float((human == machine).mean()), abs=1e-6)
    codes = {a: i for i, a in enumerate(SCHEMA.action_labels)}
    expected_alpha = krippendorff.alpha(
        reliability_data=np.array([human.map(codes), machine.map(codes)], dtype=float),
        level_of_measurement="nominal",
    )
    assert alignment["alpha"] == pytest.approx(expected_alpha, abs=1e-6)
    crosstab = pd.crosstab(human, machine)
    for gold_action, row in alignment["confusion"].items():
        for judge_action, count in row.items():
            expected = (
                crosstab.loc[gold_action, judge_action]
                if gold_action in crosstab.index and judge_action in crosstab.columns
                else 0
            )
            assert count == expected, (gold_action, judge_action)
    assert sum(sum(r.values()) for r in alignment["confusion"].values()) == len(judged)
    # SOURCE.md: judges agree with the final label 0.74-0.94 of the time.
    assert 0.7 < alignment["agreement"] < 0.95


def test_free_text_judge_rows_are_errors_naming_their_lines(tmp_path: Path) -> None:
    release = xstest_release(tmp_path, "mistralinstruct")
    path = judge_file("mistralinstruct", "gpteval")
    code, out, err = score(release, "mistralinstruct", "gpteval", "gpt4_label")
    assert code == 1 and out == ""
    bad = [line for line in err.splitlines() if "is not an action" in line]
    assert len(bad) == 11  # SOURCE.md: 11 gpt4_label cells hold raw judge text
    assert all(f"{path}:" in line and "field `gpt4_label`" in line for line in bad)
    assert "I'm sorry, but I can't assist with that." in err

    code, out, err = score(release, "mistralinstruct", "gpteval", "gpt4_label", "--skip-invalid")
    assert code == 0
    result = json.loads(out)["models"]["gpteval"]
    assert (result["n"], result["n_missing"], len(result["skipped"])) == (439, 11, 11)
    assert "warning: gpteval: 11 invalid lines left out:" in err
    assert [line.strip() for line in err.splitlines() if "is not an action" in line] == [
        s for s in result["skipped"]
    ]
