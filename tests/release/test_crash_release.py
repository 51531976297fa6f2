"""`kill -9` in the middle of `annotate release`: no half-written release, and the next one works.

The release is written into `exports/NAME/.vN.<random>.partial` and renamed to `vN` at the end.
The test waits until that folder holds files, kills the CLI with SIGKILL, and checks that
`exports/NAME/` has no `vN` (or a whole one, every file matching its manifest's sha256), that
a following `annotate release` succeeds with the next version, and that the dead run's
temporary folder is cleaned up instead of lingering beside the releases.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import insert
from sqlmodel import select

from annotate import storage
from annotate.release import folders
from annotate.release.folders import MANIFEST, existing_versions, sha256_file
from annotate.schema import LabelSchema
from annotate.storage import db
from annotate.storage.models import Annotation, Item
from tests.conftest import ADMIN, full_labels, make_campaign, make_item

ROOT = Path(__file__).resolve().parents[2]
ITEMS = 12_000
NAME = "big"


def _seed(url: str, schema: LabelSchema) -> None:
    """A campaign of ITEMS items, each labeled once (overlap 1): every item is gold."""
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        annotator = storage.add_user(session=s, actor=ADMIN, name="ann")
        campaign = make_campaign(s, schema, name=NAME, overlap=1, seed=1)
        storage.import_items(
            session=s,
            actor=ADMIN,
            campaign=campaign,
            records=[
                make_item(external_id=f"r-{n:05d}", prompt=f"How do I stop process {n}?")
                for n in range(ITEMS)
            ],
        )
        ids = s.exec(select(Item.id).where(Item.campaign_id == campaign.id)).all()
        labels = schema.normalize_labels(full_labels())
        rows = [
            {
                "campaign_id": campaign.id,
                "item_id": i,
                "user_id": annotator.id,
                "labels": labels,
                "overridden_rules": [],
                "origin": "app",
            }
            for i in ids
        ]
        s.execute(insert(Annotation), rows)
    engine.dispose()


def _release(url: str, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "annotate.cli", "release", "--campaign", NAME, "--out", str(out)]
        + ["--db", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
    )


def _partials(folder: Path) -> list[Path]:
    return sorted(folder.glob(".v*.partial")) if folder.is_dir() else []


def _writing(folder: Path) -> bool:
    return any(any(p.iterdir()) for p in _partials(folder))


def _whole(release: Path) -> None:
    manifest = json.loads((release / MANIFEST).read_text(encoding="utf-8"))
    files = manifest["files"]
    on_disk = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()} - {
        MANIFEST
    }
    assert on_disk == set(files)
    for name, facts in files.items():
        assert sha256_file(release / name) == facts["sha256"], name


def test_kill_during_release_leaves_no_half_release(
    db_url: str, schema: LabelSchema, tmp_path: Path
) -> None:
    _seed(db_url, schema)
    out = tmp_path / "exports"
    dataset = out / NAME
    proc = _release(db_url, out)
    deadline = time.monotonic() + 120
    while not _writing(dataset):
        assert proc.poll() is None, f"the release finished first: {proc.communicate()}"
        assert time.monotonic() < deadline, "the release never started writing"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL

    # No v1, or a whole one; the dead run's temporary folder is all that may remain.
    versions = existing_versions(dataset)
    assert versions in ([], [1])
    for v in versions:
        _whole(dataset / f"v{v}")
    assert _partials(dataset), "the kill landed after the rename: nothing was interrupted"

    again = _release(db_url, out)
    stdout, stderr = again.communicate(timeout=180)
    assert again.returncode == 0, stderr
    expected = (versions[-1] if versions else 0) + 1
    assert f"release v{expected} of {NAME}: {ITEMS} gold items" in stdout
    assert existing_versions(dataset) == [*versions, expected]
    _whole(dataset / f"v{expected}")
    # The stale temporary folder of the killed run is gone, not left to pile up.
    assert _partials(dataset) == []
    assert sorted(p.name for p in dataset.iterdir()) == [f"v{v}" for v in [*versions, expected]]


def test_publish_removes_dead_writers_folders_but_not_live_ones(tmp_path: Path) -> None:
    dataset = tmp_path / "ds"
    dataset.mkdir()
    dead = dataset / ".v1.deadbeef.partial"
    (dead / "inspect").mkdir(parents=True)
    (dead / "gold.jsonl").write_text("{}\n")
    live, lock = folders._new_partial(dataset, 1)
    try:
        path = folders.publish(dataset, 1, lambda root: (root / "x").write_text("x"))
        assert path == dataset / "v1" and (path / "x").read_text() == "x"
        assert not dead.exists()
        assert live.is_dir(), "a folder another publish is still writing was removed"
    finally:
        os.close(lock)
    folders.publish(dataset, 2, lambda root: None)
    assert sorted(p.name for p in dataset.iterdir()) == ["v1", "v2"]
    assert folders.existing_versions(dataset) == [1, 2]
