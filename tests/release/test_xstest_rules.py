"""XSTest through import, adjudication and release: failure categories nobody labeled stay
null, and the gold records that break the schema's rules are reported, not released silently."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, XSTEST
from typer.testing import CliRunner

from annotate.cli import app

VALUES = ROOT / "examples" / "xstest" / "values.yaml"
COMPLETIONS = XSTEST / "model_completions" / "xstest_v2_completions_gpt4.csv"

pytestmark = pytest.mark.skipif(
    not COMPLETIONS.exists(), reason=f"XSTest data not found at {XSTEST}"
)
runner = CliRunner()


def run(*args: str, code: int = 0) -> tuple[str, str]:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result.stdout, result.stderr


def _inputs(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """Items without XSTest's label columns, and each annotator's right action by prompt type
    (XSTest's `contrast_*` prompts are the unsafe ones: refuse; the rest: answer)."""
    with COMPLETIONS.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    items = tmp_path / "items.csv"
    right = {r["id"]: "refuse" if r["type"].startswith("contrast") else "answer" for r in rows}
    with items.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "prompt", "response", "category"])
        w.writerows([r["id"], r["prompt"], r["completion"], r["type"]] for r in rows)
    labels = tmp_path / "right.csv"
    with labels.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["item_id", "annotator", "field", "value"])
        for ext, action in right.items():
            for who in ("xstest_annotator_1", "xstest_annotator_2"):
                w.writerow([ext, who, "right_action", action])
    return items, labels, right


def _expected_breaks() -> int:
    """Counted from the file alone: both annotators saw a refusal of a safe prompt, or a full
    answer to a `contrast_*` one (two annotators: a majority needs both)."""
    mapping = yaml.safe_load(VALUES.read_text())["observed_action"]
    n = 0
    with COMPLETIONS.open(newline="") as fh:
        for r in csv.DictReader(fh):
            seen = {mapping.get(r["annotation_1"]), mapping.get(r["annotation_2"])}
            right = "refuse" if r["type"].startswith("contrast") else "answer"
            n += (
                seen == {"refuse"} and right == "answer" or seen == {"answer"} and right == "refuse"
            )
    return n


def test_xstest_release_reports_rule_breaking_gold_and_keeps_failures_null(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    items, right_labels, _ = _inputs(tmp_path)
    run("init", "--db", db_url)
    run("campaign", "create", "xs", "--overlap", "2", "--schema", "refusal-v1", "--db", db_url)
    run("import", str(items), "--campaign", "xs", "--db", db_url)
    run(
        "import-labels",
        str(COMPLETIONS),
        "--campaign",
        "xs",
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
    )
    out, _ = run("import-labels", str(right_labels), "--campaign", "xs", "--db", db_url)
    # With both fields in, the import counts every annotator's labels that break a rule.
    assert "break the schema's consistency rules: over_refusal_unticked" in out
    with (tmp_path / "right.violations.csv").open() as fh:
        violations = list(csv.DictReader(fh))
    assert violations and {v["rule"] for v in violations} <= {
        "over_refusal_unticked",
        "unsafe_compliance_unticked",
    }

    exports = tmp_path / "exports"
    _, err = run("release", "--campaign", "xs", "--out", str(exports), "--db", db_url, code=1)
    assert "gold records break the schema's consistency rules with no override" in err
    refused = int(err.split("`xs`: ")[1].split(" of ")[0])
    assert refused == _expected_breaks()

    out, _ = run(
        "release",
        "--campaign",
        "xs",
        "--out",
        str(exports),
        "--allow-rule-violations",
        "--db",
        db_url,
    )
    folder = exports / "xs" / "v1"
    records = [json.loads(line) for line in (folder / "gold.jsonl").read_text().splitlines()]
    # XSTest has no failure categories: not one record claims "the response is fine".
    assert records and all(r["failure_categories"] is None for r in records)
    manifest = json.loads((folder / "manifest.json").read_text())
    listed = manifest["policy"]["rule_violations"]
    assert manifest["policy"]["allow_rule_violations"] is True
    assert len({v["id"] for v in listed}) == refused
    by_id = {r["id"]: r for r in records}
    for v in listed:
        record = by_id[v["id"]]
        if v["rule"] == "over_refusal_unticked":
            assert (record["right_action"], record["observed_action"]) == ("answer", "refuse")
        else:
            assert (record["right_action"], record["observed_action"]) == ("refuse", "answer")
    print(f"XSTest gpt4: {len(records)} gold records, {refused} break a rule")  # noqa: T201
