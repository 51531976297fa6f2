"""`annotate agreement`: XSTest's two human annotators through the real CLI, checked by hand."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, XSTEST
from typer.testing import CliRunner

from annotate.cli import app

VALUES = ROOT / "examples" / "xstest" / "values.yaml"
GPT4 = XSTEST / "model_completions" / "xstest_v2_completions_gpt4.csv"
JUDGES = XSTEST / "automated_evaluation_labels"
runner = CliRunner()

needs_xstest = pytest.mark.skipif(
    not GPT4.exists(), reason=f"XSTest data not found at {XSTEST} (../shared beside the repo)"
)


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def row(text: str, start: str) -> list[str]:
    """The cells of the table row whose measure starts with `start` (cells: 2+ spaces apart)."""
    line = next(ln for ln in text.splitlines() if ln.strip().startswith(start))
    return re.split(r"\s{2,}", line.strip())


def coincidence_alpha(units: Sequence[Sequence[Hashable | None]]) -> float:
    """Nominal alpha from its definition (Krippendorff 2011): plain Python, no numpy."""
    o: dict[tuple[Hashable, Hashable], float] = defaultdict(float)
    for unit in units:
        values = [v for v in unit if v is not None]
        m = len(values)
        if m < 2:
            continue
        for i, c in enumerate(values):
            for j, k in enumerate(values):
                if i != j:
                    o[c, k] += 1 / (m - 1)
    n_c: dict[Hashable, float] = defaultdict(float)
    for (c, _), w in o.items():
        n_c[c] += w
    n = sum(n_c.values())
    d_o = sum(w for (c, k), w in o.items() if c != k)
    d_e = sum(n_c[c] * n_c[k] for c in n_c for k in n_c if c != k) / (n - 1)
    return 1 - d_o / d_e


def load_xstest(db_url: str) -> None:
    ok("init", "--db", db_url)
    ok("campaign", "create", "xs", "--overlap", "2", "--db", db_url)
    ok(
        "import",
        str(GPT4),
        "--campaign",
        "xs",
        "--column",
        "response=completion",
        "--column",
        "category=type",
        "--set",
        "model=gpt4",
        *(
            a
            for c in ("annotation_1", "annotation_2", "agreement", "final_label")
            for a in ("--drop", c)
        ),
        "--db",
        db_url,
    )
    ok(
        "import-labels",
        str(GPT4),
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


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@needs_xstest
def test_xstest_observed_action_alpha_through_the_cli(db_url: str) -> None:
    load_xstest(db_url)
    for judge, column in (("gpt4-eval", "gpt4_label"), ("string-match", "strmatch_label")):
        kind = "gpteval" if judge == "gpt4-eval" else "streval"
        ok(
            "import-labels",
            str(JUDGES / f"xstest_v2_completions_gpt4_{kind}.csv"),
            "--campaign",
            "xs",
            "--wide",
            f"{column}={judge}",
            "--field",
            "observed_action",
            "--values",
            str(VALUES),
            "--machine",
            "--db",
            db_url,
        )
    payload = json.loads(ok("agreement", "--campaign", "xs", "--json", "--db", db_url))

    mapping = yaml.safe_load(VALUES.read_text(encoding="utf-8"))["observed_action"]
    rows = csv_rows(GPT4)
    units = [
        [mapping[r["annotation_1"]] if r["annotation_1"] else None]
        + [mapping[r["annotation_2"]] if r["annotation_2"] else None]
        for r in rows
    ]
    expected = coincidence_alpha(units)
    observed = payload["fields"]["observed_action"]
    assert observed["alpha"] == pytest.approx(expected, abs=1e-9)
    assert observed["n_units"] == sum(1 for u in units if None not in u)
    low, high = observed["ci"]
    assert low <= observed["alpha"] <= high
    assert payload["campaign"] == "xs"
    assert payload["n_items"] == 450 and payload["n_annotators"] == 2
    # Only observed_action was imported: the other fields have no units, and the empty
    # failure-category sets were never given, so they are missing, not "fine".
    right = payload["fields"]["right_action"]
    assert {k: right[k] for k in ("alpha", "ci", "n_units", "banded_alpha", "banded_ci")} == {
        "alpha": None,
        "ci": None,
        "n_units": 0,
        "banded_alpha": None,
        "banded_ci": None,
    }
    # Beside alpha: AC1/AC2 undefined, and the BCa intervals say why there is none.
    assert right["ac1"]["coefficient"] is None and right["ac2"]["coefficient"] is None
    assert right["interval"]["status"] == right["banded_interval"]["status"] == "too_few_units"
    assert "annotator_models" not in right  # two labels per item: no model is fitted
    assert observed["ac1"]["coefficient"] > observed["alpha"]
    assert observed["interval"]["n_used"] + observed["interval"]["n_undefined"] == 1000
    assert observed["interval"]["reading"] == "reliable"
    assert payload["failure_categories"]["masi_alpha"] is None
    # The judges are reported apart and compared with the humans' majority (where the two
    # annotators agree: with two, a split has no majority).
    assert set(payload["machine_annotators"]) == {"gpt4-eval", "string-match"}
    judge_rows = csv_rows(JUDGES / "xstest_v2_completions_gpt4_gpteval.csv")
    human = {r["id"]: r for r in rows}
    pairs = [
        (mapping[j["gpt4_label"]], mapping[human[j["id"]]["annotation_1"]])
        for j in judge_rows
        if human[j["id"]]["annotation_1"] == human[j["id"]]["annotation_2"]
    ]
    gpt4 = payload["machine_annotators"]["gpt4-eval"]["fields"]["observed_action"]
    assert gpt4["n_items"] == len(pairs)
    assert gpt4["agreement"] == pytest.approx(sum(a == b for a, b in pairs) / len(pairs))


@needs_xstest
def test_the_table_and_the_bootstrap_option(db_url: str) -> None:
    load_xstest(db_url)
    text = ok("agreement", "-c", "xs", "--bootstrap", "0", "--db", db_url)
    assert "xs: 450 items, 450 with 2+ labels, 2 human annotators" in text
    # Without an interval the reading says it rests on the point alone.
    assert row(text, "observed")[-1] == "reliable (point)"
    text = ok("agreement", "-c", "xs", "--bootstrap", "300", "--db", db_url)
    assert all(h in text for h in ("95% interval", "P<.667", "P<.8", "AC"))
    cells = row(text, "observed")
    assert cells[-1] == "reliable"  # and P(alpha < 0.8) is small
    assert " to " in cells[2] and cells[4] == "<0.01" and cells[6] == "450"
    # Fields nobody labeled: no interval, and the reading says why.
    assert row(text, "epistemic")[1:3] == ["-", "-"]
    assert row(text, "epistemic")[-1] == "too few items"
    assert "reading: not enough items with two labels" in text
    payload: dict[str, Any] = json.loads(
        ok("agreement", "-c", "xs", "--bootstrap", "0", "--json", "--db", db_url)
    )
    assert payload["fields"]["observed_action"]["ci"] is None
    seeded = [
        json.loads(ok("agreement", "-c", "xs", "--bootstrap", "200", "--json", "--db", db_url))
        for _ in range(2)
    ]
    assert (
        seeded[0]["fields"]["observed_action"]["ci"] == seeded[1]["fields"]["observed_action"]["ci"]
    )


def test_unknown_campaign_and_bad_bootstrap(db_url: str) -> None:
    ok("init", "--db", db_url)
    result = runner.invoke(app, ["agreement", "-c", "nope", "--db", db_url])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: No campaign `nope`"
    result = runner.invoke(app, ["agreement", "-c", "nope", "--bootstrap", "-1", "--db", db_url])
    assert result.exit_code == 2  # typer's own usage error
