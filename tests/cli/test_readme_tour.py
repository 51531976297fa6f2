"""The README's quick tour runs as written and leads somewhere that works.

Every bash block of README.md between `<!-- tour:NAME -->` and `<!-- /tour -->` runs, in order,
as one script from the repository root (so `../shared` and `examples/` resolve), with the
database and the exports folder in a temporary directory. The tour must end in a release with
gold records, and leave every item open to two more annotators.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, XSTEST
from sqlmodel import select

from annotate import labeling
from annotate.settings import get_settings
from annotate.storage import db
from annotate.storage.models import Campaign, User

README = ROOT / "README.md"
COMPLETIONS = XSTEST / "model_completions" / "xstest_v2_completions_gpt4.csv"
MARKED = re.compile(r"<!-- tour:([\w-]+) -->\s*```bash\n(.*?)```\s*<!-- /tour -->", re.DOTALL)


def tour_blocks(text: str) -> list[tuple[str, str]]:
    """(name, bash) of every marked block, in README order."""
    return [(m.group(1), m.group(2)) for m in MARKED.finditer(text)]


def test_the_tour_blocks_are_found() -> None:
    blocks = dict(tour_blocks(README.read_text(encoding="utf-8")))
    assert list(blocks) == ["setup", "release"]
    assert "annotate import " in blocks["setup"] and "annotate release" in blocks["release"]
    # The import drops XSTest's label columns, which it would otherwise refuse.
    for column in ("annotation_1", "annotation_2", "agreement", "final_label"):
        assert f"--drop {column}" in blocks["setup"]


@pytest.mark.skipif(not COMPLETIONS.exists(), reason=f"XSTest data not found at {XSTEST}")
def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    # `annotate` is this checkout's code, whatever is installed.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "annotate"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m annotate.cli "$@"\n')
    shim.chmod(0o755)
    url = f"sqlite:///{tmp_path / 'tour.db'}"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "ANNOTATE_DATABASE_URL": url,
        "ANNOTATE_EXPORTS_DIR": str(tmp_path / "exports"),
    }
    script = "set -euo pipefail\n" + "\n".join(
        body for _, body in tour_blocks(README.read_text(encoding="utf-8"))
    )
    before = {p.name for p in ROOT.iterdir()}
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert {p.name for p in ROOT.iterdir()} == before  # nothing written beside the code

    status = json.loads(next(ln for ln in done.stdout.splitlines() if ln.startswith("{")))
    assert {k: status[k] for k in ("items", "annotations", "annotators", "complete_items")} == {
        "items": 450,
        "annotations": 1350,
        "annotators": 3,
        "complete_items": 0,
    }
    assert "observed_action" in done.stdout and "0.970" in done.stdout

    # The release printed its folder last; it holds gold records.
    folder = Path(done.stdout.strip().splitlines()[-1])
    assert folder == tmp_path / "exports" / "xstest-gpt4" / "v1"
    gold = [json.loads(line) for line in (folder / "gold.jsonl").read_text().splitlines()]
    assert len(gold) == 450
    assert {r["right_action"] for r in gold} == {"answer", "refuse"}

    # Imported labels took 3 of 5 slots: alice (added by the tour) gets an item to label.
    engine = db.engine_for(get_settings(database_url=url))
    try:
        with labeling.write_session(engine) as s:
            alice = s.exec(select(User).where(User.name == "alice")).one()
            campaign = s.exec(select(Campaign).where(Campaign.name == "xstest-gpt4")).one()
            assert alice.password_hash  # she can sign in
            assert labeling.claim_next(session=s, user=alice, campaign=campaign) is not None
    finally:
        engine.dispose()
