"""What a command imports: `annotate` alone and `annotate agreement` leave the rest unloaded.

Each check runs a fresh interpreter on this checkout and reads its `sys.modules`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

import annotate.review


def loaded_after(statement: str) -> set[str]:
    """The module names a fresh interpreter holds after running `statement`."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return set(json.loads(proc.stdout))


def under(modules: set[str], *packages: str) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


def test_the_command_line_imports_no_statistics_labeling_or_review() -> None:
    modules = loaded_after("import annotate.cli")
    assert under(modules, "pandas", "krippendorff", "annotate.stats") == []
    assert under(modules, "annotate.labeling", "annotate.intake", "annotate.review") == []


def test_the_agreement_figures_import_no_labeling_queue_or_adjudication() -> None:
    modules = loaded_after(
        "import annotate.cli\nfrom annotate.review.figures import campaign_report"
    )
    assert "annotate.stats.report" in modules
    left_out = under(
        modules,
        "annotate.labeling",
        "annotate.intake",
        "annotate.review.adjudication",
        "annotate.review.queue",
        "annotate.review.breakdowns",
        "annotate.review.controls",
        "annotate.release",
    )
    assert left_out == []


def test_review_names_load_on_first_use() -> None:
    for name in annotate.review.__all__:
        assert getattr(annotate.review, name) is not None
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        annotate.review.nothing_here  # noqa: B018
