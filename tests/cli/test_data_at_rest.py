"""Data at rest: owner-only database, key file and export folders; `annotate demo` on old data.

Every command runs as a child process through the real entry point with umask 022 (the usual
default, which makes new files world-readable), so the modes seen are the ones a deployment
gets.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import time
from pathlib import Path

import pytest

from annotate.release import folders
from tests.browser.conftest import annotate_command, child_env, free_port

LOOSE_UMASK = 0o022


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def annotate(
    *args: str, url: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        annotate_command(*args),
        cwd=cwd,
        env=child_env(url, env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(LOOSE_UMASK),
    )


def test_init_creates_the_database_owner_only(tmp_path: Path) -> None:
    db_file = tmp_path / "annotate.db"
    url = f"sqlite:///{db_file}"
    done = annotate("init", url=url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert mode(db_file) == 0o600
    # SQLite makes -wal and -shm when a connection writes in WAL mode: same mode as the file.
    old = os.umask(LOOSE_UMASK)
    try:
        conn = sqlite3.connect(db_file)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE probe (x)")
        conn.commit()
        for suffix in ("-wal", "-shm"):
            sidecar = db_file.with_name(db_file.name + suffix)
            assert sidecar.exists() and mode(sidecar) == 0o600, suffix
        conn.close()
    finally:
        os.umask(old)


def test_an_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    db_file = tmp_path / "old.db"
    url = f"sqlite:///{db_file}"
    assert annotate("init", url=url, cwd=tmp_path).returncode == 0
    db_file.chmod(0o644)  # as an older version left it
    done = annotate("users", "list", url=url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert mode(db_file) == 0o600


def test_serve_keeps_the_signing_key_in_a_private_file_not_the_database(tmp_path: Path) -> None:
    db_file = tmp_path / "annotate.db"
    url = f"sqlite:///{db_file}"
    assert annotate("init", url=url, cwd=tmp_path).returncode == 0
    key_file = tmp_path / "annotate.db.key"
    port = free_port()
    process = subprocess.Popen(
        annotate_command("serve", "--port", str(port)),
        cwd=tmp_path,
        env=child_env(url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: os.umask(LOOSE_UMASK),
    )
    try:
        deadline = time.monotonic() + 60
        while not (key_file.exists() and key_file.stat().st_size > 0):
            assert process.poll() is None, "serve stopped"
            assert time.monotonic() < deadline, "no key file beside the database"
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert mode(key_file) == 0o600
    key = key_file.read_text().strip()
    assert len(key) >= 32
    with sqlite3.connect(db_file) as conn:
        stored = [v for (v,) in conn.execute("SELECT value FROM app_secret")]
    assert key not in stored


def test_a_short_secret_key_is_refused_with_how_to_make_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'annotate.db'}"
    assert annotate("init", url=url, cwd=tmp_path).returncode == 0
    port = str(free_port())
    try:
        done = annotate(
            "serve", "--port", port, url=url, cwd=tmp_path, env={"ANNOTATE_SECRET_KEY": "a" * 31}
        )
    except subprocess.TimeoutExpired:
        pytest.fail("`annotate serve` started with a 31-byte secret key")
    assert done.returncode == 1
    assert "at least 32" in done.stderr
    assert 'python -c "import secrets; print(secrets.token_urlsafe(48))"' in done.stderr


def test_release_folders_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(LOOSE_UMASK)
    try:
        final = folders.publish(
            tmp_path / "exports" / "demo", 1, lambda d: (d / "gold.jsonl").write_text("{}\n")
        )
    finally:
        os.umask(old)
    for folder in (tmp_path / "exports", tmp_path / "exports" / "demo", final):
        assert mode(folder) == 0o700, folder


def test_demo_refuses_a_database_with_other_users_and_keeps_passwords(tmp_path: Path) -> None:
    db_file = tmp_path / "team.db"
    url = f"sqlite:///{db_file}"
    assert annotate("init", url=url, cwd=tmp_path).returncode == 0
    for name in ("zoe", "alice"):
        added = annotate(
            "users", "add", name, "--password-stdin", url=url, cwd=tmp_path, stdin="Team-pw-123\n"
        )
        assert added.returncode == 0, added.stderr
    with sqlite3.connect(db_file) as conn:
        before = dict(conn.execute("SELECT name, password_hash FROM user"))

    refused = annotate("demo", "--no-serve", url=url, cwd=tmp_path)
    assert refused.returncode == 1
    assert "`zoe`" in refused.stderr and "--force" in refused.stderr
    with sqlite3.connect(db_file) as conn:
        assert dict(conn.execute("SELECT name, password_hash FROM user")) == before

    forced = annotate("demo", "--no-serve", "--force", url=url, cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    with sqlite3.connect(db_file) as conn:
        after = dict(conn.execute("SELECT name, password_hash FROM user"))
    assert after["alice"] == before["alice"] and after["zoe"] == before["zoe"]
    assert {"bob", "carol", "lena", "adam"} <= set(after)
    printed = {line.split()[0]: line for line in forced.stdout.splitlines()[1:] if line.strip()}
    assert "password:" not in printed["alice"]
    assert all("password:" in printed[n] for n in ("bob", "carol", "lena", "adam"))
