"""The Models page through AppTest: the same report as `annotate score --json`, leads only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from annotate.app import main
from annotate.app.pages import models
from annotate.cli import app
from annotate.schema import LabelSchema
from tests.scoring.test_scoring import CAUTIOUS, EAGER, six_items, write_jsonl
from tests.test_app_support import AppDB, app_db_fixture, page_app, texts

runner = CliRunner()


@pytest.fixture
def exports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    out = tmp_path / "exports"
    monkeypatch.setenv("ANNOTATE_EXPORTS_DIR", str(out))
    return out


@pytest.fixture
def app_db(
    db_url: str, monkeypatch: pytest.MonkeyPatch, schema: LabelSchema, exports: Path
) -> Iterator[AppDB]:
    yield from app_db_fixture(db_url, monkeypatch, schema)


@pytest.fixture
def release(exports: Path, schema: LabelSchema) -> Path:
    from release_helpers import write_gold

    return write_gold(exports, schema, six_items(), dataset="hand")


def upload(at: AppTest, files: list[Path]) -> AppTest:
    """Upload `files` through the page's file uploader, then rerun."""
    uploader = at.file_uploader(key=models.UPLOAD_KEY)
    uploader.set_value([(f.name, f.read_bytes(), "application/octet-stream") for f in files])
    return run(at)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_models_page_report_equals_the_cli_json(
    app_db: AppDB, release: Path, tmp_path: Path
) -> None:
    cautious = write_jsonl(tmp_path / "cautious.jsonl", CAUTIOUS)
    eager = write_jsonl(tmp_path / "eager.jsonl", EAGER)
    # Judged responses: a leak, and the judge's answer-quality and refusal-style columns.
    judged = tmp_path / "judged.jsonl"
    judged.write_text(
        json.dumps({"id": "b1", "action": "answer", "answer_quality": "useful"})
        + "\n"
        + json.dumps({"id": "b2", "action": "answer", "failure_categories": ["leaked"]})
        + "\n"
        + json.dumps({"id": "h1", "action": "refuse", "refusal_style": "preachy"})
        + "\n"
    )
    at = upload(run(page_app(app_db, "lena", "models")), [cautious, eager, judged])
    page_report = at.session_state[models.REPORT_KEY]
    cli = runner.invoke(
        app,
        ["score", "--gold", str(release), "--predictions", str(cautious)]
        + ["--predictions", str(eager), "--predictions", str(judged), "--json"],
    )
    assert cli.exit_code == 0, cli.output
    assert page_report == json.loads(cli.stdout)
    assert set(page_report["models"]) == {"cautious", "eager", "judged"}
    assert len(page_report["comparisons"]) == 3  # every pair compared
    judged_score = page_report["models"]["judged"]
    assert judged_score["answer_quality"] == {"useful": 1}
    assert judged_score["refusal_style"] == {"preachy": 1}
    assert judged_score["buckets"]["under_refusal"]["numerator"] == 1  # the leak
    # The text table is the CLI's, line for line.
    table = runner.invoke(
        app,
        ["score", "--gold", str(release), "--predictions", str(cautious), "--predictions"]
        + [str(eager), "--predictions", str(judged)],
    )
    assert at.code[0].value.splitlines() == table.stdout.rstrip("\n").splitlines()
    buckets = next(df.value for df in at.dataframe if "bucket" in df.value.columns)
    row = buckets[(buckets["model"] == "eager") & (buckets["bucket"] == "under_refusal")]
    under = page_report["models"]["eager"]["buckets"]["under_refusal"]
    assert int(row["errors"].iloc[0]) == under["numerator"] > 0
    assert int(row["possible"].iloc[0]) == under["denominator"]
    assert len(at.get("image")) == 3  # normative, epistemic, bucket bars


def test_models_page_names_bad_lines_by_uploaded_file(
    app_db: AppDB, release: Path, tmp_path: Path
) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", {"b1": "dance", "zz": "refuse"})
    at = upload(run(page_app(app_db, "lena", "models")), [bad])
    errors = "\n".join(texts(at.error))
    assert "bad.jsonl:1" in errors and "dance" in errors
    assert "bad.jsonl:2" in errors and "zz" in errors
    assert "annotate-score-" not in errors  # no temporary folder in what the lead reads
    assert models.REPORT_KEY not in at.session_state


def test_models_page_without_uploads_or_releases(
    app_db: AppDB, exports: Path, schema: LabelSchema
) -> None:
    at = run(page_app(app_db, "lena", "models"))
    assert "No release has been published" in "\n".join(texts(at.info))
    from release_helpers import write_gold

    write_gold(exports, schema, six_items(), dataset="hand")
    write_gold(exports, schema, six_items(), dataset="hand", version=2)
    at = run(page_app(app_db, "lena", "models"))
    assert at.selectbox(key="models-release").options == ["hand v2", "hand v1"]
    assert "Upload one or more prediction files" in "\n".join(texts(at.info))


def test_models_page_is_for_leads(app_db: AppDB, release: Path) -> None:
    at = run(page_app(app_db, "alice", "models"))
    assert any("needs the lead role" in e for e in texts(at.error))
    assert not at.file_uploader
    names = {u: [p.name for p in main.pages_for(app_db.users[u])] for u in ("alice", "lena")}
    assert "models" not in names["alice"] and "models" in names["lena"]
