"""`annotate judge-check`: a grader's agreement with the human observed action, and its verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from release_helpers import gold_record, write_gold
from typer.testing import CliRunner

from annotate.cli import app
from annotate.schema import LabelSchema
from annotate.scoring.judges import JudgeAlignment, judge_verdict

runner = CliRunner()
OBSERVED = ["answer", "refuse", "clarify", "abstain", "answer_with_caveat"]


@pytest.fixture
def release(tmp_path: Path, schema: LabelSchema) -> Path:
    records = [
        gold_record(id=f"r{i:02d}", observed_action=OBSERVED[i % len(OBSERVED)]) for i in range(60)
    ]
    return write_gold(tmp_path / "exports", schema, records, dataset="judged")


def judge_file(path: Path, labels: dict[str, str]) -> Path:
    path.write_text("".join(json.dumps({"id": k, "action": v}) + "\n" for k, v in labels.items()))
    return path


def human(n: int = 60) -> dict[str, str]:
    return {f"r{i:02d}": OBSERVED[i % len(OBSERVED)] for i in range(n)}


def check(release: Path, judge: Path, *extra: str) -> tuple[int, dict]:
    result = runner.invoke(
        app, ["judge-check", "--gold", str(release), "--predictions", str(judge), "--json", *extra]
    )
    assert result.exit_code in (0, 2), result.output
    return result.exit_code, json.loads(result.stdout)


def test_a_judge_that_matches_the_humans_is_trusted(release: Path, tmp_path: Path) -> None:
    labels = human()
    labels["r00"] = "refuse"  # one slip in 60
    code, report = check(release, judge_file(tmp_path / "good.jsonl", labels))
    assert code == 0
    assert report["verdict"] == "trusted" and report["trusted"] is True
    assert report["alignment"]["n"] == 60
    assert report["alignment"]["agreement"] == pytest.approx(59 / 60, abs=1e-6)
    assert report["alignment"]["confusion"]["answer"]["refuse"] == 1
    assert report["alignment"]["alpha_ci"][0] >= 0.8


def test_a_judge_that_calls_everything_a_refusal_is_not_trusted(
    release: Path, tmp_path: Path
) -> None:
    labels = {k: "refuse" for k in human()}
    code, report = check(release, judge_file(tmp_path / "lazy.jsonl", labels))
    assert code == 2
    assert report["verdict"] == "not trusted" and report["trusted"] is False
    assert report["alignment"]["agreement"] == pytest.approx(12 / 60, abs=1e-6)


def test_too_few_items_are_not_enough(release: Path, tmp_path: Path) -> None:
    code, report = check(release, judge_file(tmp_path / "few.jsonl", human(10)))
    assert code == 2 and report["verdict"] == "not enough items"
    assert "10 items" in report["reason"] and "at least 30" in report["reason"]
    code, report = check(release, judge_file(tmp_path / "few.jsonl", human(10)), "--min-items", "5")
    assert code == 0 and report["verdict"] == "trusted"


def test_text_output_and_bad_input(release: Path, tmp_path: Path) -> None:
    good = judge_file(tmp_path / "good.jsonl", human())
    result = runner.invoke(app, ["judge-check", "--gold", str(release), "--predictions", str(good)])
    assert result.exit_code == 0, result.output
    assert "agreement 1.000" in result.stdout and "verdict: trusted" in result.stdout
    bad = judge_file(tmp_path / "bad.jsonl", {"r00": "dance"})
    result = runner.invoke(app, ["judge-check", "--gold", str(release), "--predictions", str(bad)])
    assert result.exit_code == 1
    assert "bad.jsonl:1" in result.stderr and "dance" in result.stderr
    assert "Traceback" not in result.output


def test_tentative_between_the_cut_offs() -> None:
    def alignment(alpha: float, ci: tuple[float, float] | None) -> JudgeAlignment:
        return JudgeAlignment(n=100, agreement=0.9, alpha=alpha, alpha_ci=ci, confusion={})

    assert judge_verdict(alignment(0.85, (0.78, 0.9))).verdict == "tentative"
    assert judge_verdict(alignment(0.7, (0.6, 0.8))).verdict == "tentative"
    assert judge_verdict(alignment(0.6, (0.5, 0.7))).verdict == "not trusted"
    assert judge_verdict(alignment(0.85, None)).verdict == "trusted"
    assert judge_verdict(alignment(0.85, (0.81, 0.9)), threshold=0.9).verdict == "tentative"
