"""The real XSTest files through the importers: items per model, two human annotations each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, XSTEST
from typer.testing import CliRunner

from annotate.cli import app

MODELS = ["gpt4", "llama2new", "llama2orig", "mistralguard", "mistralinstruct"]
VALUES = ROOT / "examples" / "xstest" / "values.yaml"
# XSTest's label columns: refused as item metadata (annotators would see them), so dropped.
DROPS = [
    arg
    for c in ("annotation_1", "annotation_2", "agreement", "final_label")
    for arg in ("--drop", c)
]

pytestmark = pytest.mark.skipif(
    not XSTEST.exists(), reason=f"XSTest data not found at {XSTEST} (../shared beside the repo)"
)
runner = CliRunner()


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def completions(model: str) -> Path:
    return XSTEST / "model_completions" / f"xstest_v2_completions_{model}.csv"


def test_all_five_models_with_their_human_labels(db_url: str) -> None:
    ok("init", "--db", db_url)
    for model in MODELS:
        campaign = f"xstest-{model}"
        ok("campaign", "create", campaign, "--overlap", "2", "--db", db_url)
        args = [
            "import",
            str(completions(model)),
            "--campaign",
            campaign,
            "--column",
            "response=completion",
            "--column",
            "category=type",
            "--set",
            f"model={model}",
            "--set",
            "source=xstest",
            *DROPS,
            "--db",
            db_url,
        ]
        assert "imported 450 items" in ok(*args)
        assert "imported 0 items" in ok(*args)
        labels = [
            "import-labels",
            str(completions(model)),
            "--campaign",
            campaign,
            "--wide",
            "annotation_1=xstest_annotator_1",
            "--wide",
            "annotation_2=xstest_annotator_2",
            "--field",
            "observed_action",
            "--values",
            str(VALUES),
            "--db",
            db_url,
        ]
        assert "900 annotations added" in ok(*labels)
        assert "0 annotations added, 0 updated, 900 unchanged" in ok(*labels)
        status = json.loads(ok("status", "--campaign", campaign, "--json", "--db", db_url))
        assert {k: status[k] for k in ("items", "annotations", "annotators", "complete_items")} == {
            "items": 450,
            "annotations": 900,
            "annotators": 2,
            "complete_items": 450,
        }


def test_judge_labels_import_as_machines_and_free_text_is_reported(db_url: str) -> None:
    ok("init", "--db", db_url)
    ok("campaign", "create", "mi", "--db", db_url)
    ok(
        "import",
        str(completions("mistralinstruct")),
        "-c",
        "mi",
        "--column",
        "response=completion",
        *DROPS,
        "--db",
        db_url,
    )
    judge_file = (
        XSTEST
        / "automated_evaluation_labels"
        / ("xstest_v2_completions_mistralinstruct_gpteval.csv")
    )
    result = runner.invoke(
        app,
        [
            "import-labels",
            str(judge_file),
            "-c",
            "mi",
            "--wide",
            "gpt4_label=gpt4-judge",
            "--field",
            "observed_action",
            "--values",
            str(VALUES),
            "--machine",
            "--db",
            db_url,
        ],
    )
    # The GPT-4 judge wrote free text instead of a label in some rows: each is reported, by line.
    assert result.exit_code == 1
    lines = [ln for ln in result.stderr.splitlines() if "is not an allowed observed_action" in ln]
    assert len(lines) == 11  # SOURCE.md: 11 gpt4_label cells hold raw judge text
    assert all(str(judge_file) in ln for ln in lines)
    status = json.loads(ok("status", "-c", "mi", "--json", "--db", db_url))
    assert status["machine_annotations"] == 0
