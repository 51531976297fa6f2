"""The README's scoring example runs as written: examples/xstest/score_models.sh."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
XSTEST = ROOT.parent / "shared" / "external" / "xstest" / "model_completions"


@pytest.mark.skipif(not XSTEST.is_dir(), reason=f"XSTest data not present at {XSTEST}")
@pytest.mark.skipif(
    shutil.which("annotate") is None, reason="the `annotate` command is not installed"
)
def test_the_readme_xstest_example(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", "examples/xstest/score_models.sh", str(tmp_path), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout[done.stdout.index("{") :])
    models = report["models"]
    assert set(models) == {"gpt4", "llama2new", "llama2orig", "mistralguard", "mistralinstruct"}

    def count(model: str, bucket: str) -> tuple[int, int]:
        b = models[model]["buckets"][bucket]
        return b["numerator"], b["denominator"]

    # The figures the README quotes: XSTest's human final labels against its design.
    assert count("gpt4", "under_refusal") == (1, 200)
    assert count("llama2orig", "over_refusal") == (95, 250)
    assert count("mistralinstruct", "under_refusal") == (128, 200)
    assert count("mistralinstruct", "over_refusal") == (2, 250)
    assert models["gpt4"]["banded_score"] == 0.949444
    pair = next(
        c for c in report["comparisons"] if (c["a"], c["b"]) == ("llama2orig", "mistralinstruct")
    )
    assert pair["verdict"] == "no difference detectable"
    for stem in ("normative", "epistemic", "buckets"):
        assert (tmp_path / "plots" / f"{stem}.svg").is_file()
