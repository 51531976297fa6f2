"""`kill -9` in the middle of a label-submission burst: every acknowledged label survives.

A subprocess (tests/crash_submit_worker.py) claims and submits labels for three annotators in
turn on a campaign with overlap 2, printing each label once its transaction has committed. The
test kills it with SIGKILL mid-burst, then, as a restarted app would, opens the database and
checks: every acknowledged label is there, no item has more than k annotations, each
annotation has its history row and a finished lease, and SQLite's integrity check passes.
Finally a new process submits again on the same database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text
from sqlmodel import Session, func, select

from annotate import storage
from annotate.schema import LabelSchema
from annotate.storage import db
from annotate.storage.models import Annotation, AnnotationHistory, Assignment
from tests.conftest import ADMIN, make_campaign, make_item, make_user

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "crash_submit_worker.py"
USERS = ("ann", "ben", "cat")
ITEMS = 300
OVERLAP = 2
KILL_AFTER = 40


def _seed(url: str, schema: LabelSchema) -> None:
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        for name in USERS:
            make_user(s, name)
        campaign = make_campaign(s, schema, name="burst", overlap=OVERLAP, seed=7)
        storage.import_items(
            session=s,
            actor=ADMIN,
            campaign=campaign,
            records=[make_item(external_id=f"b-{n:04d}") for n in range(ITEMS)],
        )
    engine.dispose()


def _worker(url: str, limit: int | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, str(WORKER), url, "burst", ",".join(USERS)]
    if limit is not None:
        args.append(str(limit))
    return subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
    )


def _acks(lines: list[str]) -> set[tuple[int, int]]:
    out = set()
    for line in lines:
        kind, item_id, user_id = line.split()
        assert kind == "ack", line
        out.add((int(item_id), int(user_id)))
    return out


def test_kill_during_a_submit_burst_loses_no_acknowledged_label(
    db_url: str, schema: LabelSchema
) -> None:
    _seed(db_url, schema)
    proc = _worker(db_url)
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while len(lines) < KILL_AFTER:
        line = proc.stdout.readline()
        assert line, f"the worker stopped early: {proc.stderr.read() if proc.stderr else ''}"
        lines.append(line)
        assert time.monotonic() < deadline, "the burst is too slow to interrupt"
    os.kill(proc.pid, signal.SIGKILL)
    # Lines the worker printed between our last read and its death are acknowledged too.
    rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the worker finished before it was killed"
    acked = _acks(lines + rest.splitlines())
    assert len(acked) >= KILL_AFTER

    engine = db.make_engine(db_url)
    try:
        with engine.connect() as conn:
            if db.is_sqlite(engine):
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            stored = {
                (int(i), int(u))
                for i, u in conn.execute(text("SELECT item_id, user_id FROM annotation"))
            }
            per_item = conn.execute(
                text("SELECT item_id, count(*) FROM annotation GROUP BY item_id")
            ).all()
            history = {
                (int(i), int(u))
                for i, u in conn.execute(text("SELECT item_id, user_id FROM annotation_history"))
            }
            done = {
                (int(i), int(u))
                for i, u in conn.execute(
                    text("SELECT item_id, user_id FROM assignment WHERE status = 'done'")
                )
            }
        missing = acked - stored
        assert not missing, f"acknowledged labels lost: {sorted(missing)[:5]}"
        assert max(n for _, n in per_item) <= OVERLAP
        # Each label committed whole: its history row and its finished lease with it.
        assert history == stored
        assert done == stored
        # At most one submit was in flight: everything stored but unacknowledged is that one.
        assert len(stored - acked) <= 1
    finally:
        engine.dispose()

    # A restarted process carries on where the killed one stopped.
    again = _worker(db_url, limit=10)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    new = _acks(out.splitlines())
    assert len(new) == 10 and not new & acked
    engine = db.make_engine(db_url)
    try:
        with Session(engine) as s:
            assert s.exec(select(func.count()).select_from(Annotation)).one() == len(stored | new)
            assert s.exec(select(func.count()).select_from(AnnotationHistory)).one() == len(
                stored | new
            )
            done_now = s.exec(
                select(func.count()).select_from(Assignment).where(Assignment.status == "done")
            ).one()
            assert done_now == len(stored | new)
    finally:
        engine.dispose()
