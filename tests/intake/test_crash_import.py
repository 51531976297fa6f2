"""`kill -9` in the middle of an import: afterwards the import is absent or whole, never half."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

from annotate.storage import db

ROWS = 40_000


def _make_items(path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "prompt", "response"])
        for n in range(ROWS):
            w.writerow([f"k-{n}", f"How do I terminate process {n}?", "Use kill. " * 30])


def _cli(db_url: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "annotate.cli", *args, "--db", db_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _count(db_url: str) -> int:
    engine = db.make_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM item")).scalar_one())
    finally:
        engine.dispose()


def _insert_started(db_url: str, wal: Path | None) -> bool:
    if wal is not None:
        return wal.exists() and wal.stat().st_size > 2_000_000
    engine = db.make_engine(db_url)
    try:
        with engine.connect() as conn:
            n = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                    "AND query ILIKE 'INSERT INTO item%'"
                )
            ).scalar_one()
            return int(n) > 0
    finally:
        engine.dispose()


def test_kill_during_import_leaves_no_partial_import(db_url: str, tmp_path: Path) -> None:
    items = tmp_path / "items.csv"
    _make_items(items)
    setup = _cli(db_url, "campaign", "create", "crash")
    assert setup.wait(60) == 0, setup.stderr.read() if setup.stderr else ""
    wal = Path(db_url.removeprefix("sqlite:///") + "-wal") if db_url.startswith("sqlite") else None

    proc = _cli(db_url, "import", str(items), "--campaign", "crash")
    deadline = time.monotonic() + 120
    while not _insert_started(db_url, wal):
        assert proc.poll() is None, "the import finished before it could be interrupted"
        assert time.monotonic() < deadline, "the import never started inserting"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL

    # "Restart": a new process opens the database, recovers, and sees nothing of the import.
    assert _count(db_url) == 0
    if db_url.startswith("sqlite"):
        engine = db.make_engine(db_url)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        engine.dispose()

    again = _cli(db_url, "import", str(items), "--campaign", "crash")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err.decode()
    assert f"imported {ROWS} items" in out.decode()
    assert _count(db_url) == ROWS
