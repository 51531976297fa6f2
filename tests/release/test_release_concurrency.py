"""Releases and imports beside a running app: annotators keep writing while they run.

Writer threads stand in for annotators: each commits small write transactions in a loop, as
submits do. A release read first and wrote its row last, so on SQLite the final INSERT failed
with "database is locked" after the folder was published; two releases at once both chose the
same version. Checked here: every published folder has its database row and every row its
folder, versions are distinct, a failed commit takes the folder back, and an import under the
same load waits for the lock (saying so) and succeeds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from annotate.errors import StorageUnavailable
from annotate.labeling import write_session
from annotate.release import publish as publish_module
from annotate.release.folders import existing_versions
from annotate.release.publish import create_release
from annotate.schema import LabelSchema
from annotate.storage import db
from annotate.storage.campaigns import get_campaign
from annotate.storage.models import Item, LoginAttempt, Release
from tests.conftest import ADMIN, ROOT
from tests.release_helpers import labeled_campaign

SPEC = {f"i{n}": {"ann1": {}, "ann2": {}, "ann3": {}} for n in range(8)}


def _setup(url: str, schema: LabelSchema) -> None:
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        labeled_campaign(s, schema, SPEC)
    engine.dispose()


@contextmanager
def _annotators(url: str, n: int = 3) -> Iterator[list[int]]:
    """`n` threads committing one small write after another until the block ends."""
    stop = threading.Event()
    done = [0]
    errors: list[BaseException] = []

    def work(k: int) -> None:
        engine = db.make_engine(url)
        try:
            while not stop.is_set():
                with write_session(engine) as s:
                    s.add(LoginAttempt(user_name=f"writer{k}", success=True))
                done[0] += 1
                time.sleep(0.002)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.2)
        yield done
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert done[0] > 20, "the writers hardly wrote: the test measured nothing"


def _release(url: str, out: Path, results: list[object]) -> None:
    """What `annotate release` does: its own engine and session, the labels read, then written."""
    engine = db.make_engine(url)
    try:
        with db.session_scope(engine) as s:
            campaign = get_campaign(session=s, name="c1")
            results.append(
                create_release(
                    session=s, actor=ADMIN, campaign=campaign, out_dir=out, n_resamples=200
                )
            )
    except BaseException as exc:
        results.append(exc)
    finally:
        engine.dispose()


def _rows(url: str) -> list[Release]:
    engine = db.make_engine(url)
    with Session(engine) as s:
        rows = list(s.exec(select(Release).order_by(Release.version)).all())
    engine.dispose()
    return rows


def _folders(*outs: Path) -> dict[str, int]:
    """Every published release folder under the outs: resolved path -> version."""
    found = {}
    for out in outs:
        for v in existing_versions(out / "c1"):
            found[str((out / "c1" / f"v{v}").resolve())] = v
    return found


def test_releases_beside_writers_leave_no_orphan(
    db_url: str, schema: LabelSchema, tmp_path: Path
) -> None:
    _setup(db_url, schema)
    out = tmp_path / "exports"
    results: list[object] = []
    with _annotators(db_url):
        for _ in range(3):
            _release(db_url, out, results)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, failures
    rows = _rows(db_url)
    assert [r.version for r in rows] == [1, 2, 3]
    assert {r.path: r.version for r in rows} == _folders(out)


def test_concurrent_releases_get_distinct_versions(
    db_url: str, schema: LabelSchema, tmp_path: Path
) -> None:
    _setup(db_url, schema)
    outs = [tmp_path / "a", tmp_path / "b"]
    results: list[object] = []
    with _annotators(db_url):
        threads = [threading.Thread(target=_release, args=(db_url, o, results)) for o in outs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, failures
    rows = _rows(db_url)
    assert sorted(r.version for r in rows) == [1, 2]
    assert {r.path: r.version for r in rows} == _folders(*outs)


def test_a_release_whose_row_fails_leaves_no_folder(
    db_url: str, schema: LabelSchema, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup(db_url, schema)
    out = tmp_path / "exports"

    def refuse(**_kw: object) -> None:
        raise IntegrityError("INSERT INTO release", {}, Exception("UNIQUE constraint failed"))

    monkeypatch.setattr(publish_module, "add_release", refuse)
    engine = db.make_engine(db_url)
    with (
        pytest.raises(StorageUnavailable, match="folder was removed"),
        db.session_scope(engine) as s,
    ):
        campaign = get_campaign(session=s, name="c1")
        create_release(session=s, actor=ADMIN, campaign=campaign, out_dir=out, n_resamples=50)
    engine.dispose()
    assert _folders(out) == {}
    assert list((out / "c1").iterdir()) == []
    assert _rows(db_url) == []


def _import_cmd(url: str, path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "annotate.cli", "import", str(path), "--campaign", "c1"]
        + ["--db", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _items_file(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "more.jsonl"
    path.write_text(
        "".join(
            f'{{"id": "new-{k}", "prompt": "How do I stop process {k}?", "response": "ok"}}\n'
            for k in range(n)
        ),
        encoding="utf-8",
    )
    return path


def _count_items(url: str) -> int:
    engine = db.make_engine(url)
    with Session(engine) as s:
        n = int(s.exec(select(func.count()).select_from(Item)).one())
    engine.dispose()
    return n


def test_import_beside_writers_succeeds(db_url: str, schema: LabelSchema, tmp_path: Path) -> None:
    _setup(db_url, schema)
    before = _count_items(db_url)
    path = _items_file(tmp_path, 20_000)
    with _annotators(db_url):
        for _ in range(2):
            proc = _import_cmd(db_url, path)
            stdout, stderr = proc.communicate(timeout=300)
            assert proc.returncode == 0, stderr
    assert "imported 20000 items" in stdout or "20000 already there" in stdout
    assert _count_items(db_url) == before + 20_000


def test_import_waits_for_the_lock_and_says_so(tmp_path: Path, schema: LabelSchema) -> None:
    url = f"sqlite:///{tmp_path / 'wait.db'}"
    engine = db.make_engine(url)
    db.migrate(engine)
    _setup(url, schema)
    path = _items_file(tmp_path, 50)
    holder = db.make_engine(url)
    with write_session(holder) as s:  # an annotator's transaction that takes its time
        s.add(LoginAttempt(user_name="slow", success=True))
        s.flush()
        proc = _import_cmd(url, path)
        # Hold the lock until the CLI says it is waiting (it starts in seconds, or far more on
        # a loaded machine), reading its stderr on a thread so nothing blocks.
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")))
        reader.start()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not any("waiting for" in x for x in lines):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
    stdout, _ = proc.communicate(timeout=120)
    reader.join(timeout=10)
    stderr = "".join(lines)
    holder.dispose()
    engine.dispose()
    assert proc.returncode == 0, stderr
    assert "waiting for the database" in stderr
    assert "imported 50 items" in stdout
