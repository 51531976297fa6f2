"""Sign-in limits against a real `annotate serve`: bursts, bad names, memory under load.

- A burst of 40 parallel wrong guesses for one name gets only the free failures checked (the
  attempt is reserved before the password is), the rest are told to wait (429, Retry-After),
  and `annotate users unlock NAME` lets the owner straight back in. On SQLite and PostgreSQL.
- A NUL byte in the user name is a 400 with a message, not a server error. Both backends.
- 200 parallel sign-ins leave the server's peak memory (VmHWM) bounded: at most
  `password_checks_at_once` argon2 hashes run together (marked `load`; SQLite).
"""

from __future__ import annotations

import http.client
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import pytest

from annotate import storage
from annotate.accounts import sessions
from annotate.accounts.auth import system_actor
from annotate.storage import db
from tests.accounts.test_auth_http import Reply, Running, request, sign_in
from tests.browser.conftest import annotate_command, child_env, free_port
from tests.conftest import BACKENDS, make_test_database

KEY = "limits-test-signing-key-" + "y" * 30
PASSWORDS = {"bob": "Bob-pw-2b8e41", "dana": "Dana-pw-9911aa"}
WRONG = "Wrong-guess-5c1e"
FREE = 5
MIB = 1024 * 1024


def start(url: str, workdir: Path, env: dict[str, str]) -> Running:
    """`annotate serve` on a free port of a migrated database holding PASSWORDS' users."""
    engine = db.make_engine(url)
    db.migrate(engine)
    with db.session_scope(engine) as s:
        for name, password in PASSWORDS.items():
            storage.add_user(session=s, actor=system_actor(), name=name, password=password)
    engine.dispose()
    port = free_port()
    log = workdir / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            annotate_command("serve", "--port", str(port)),
            cwd=workdir,
            env=child_env(url, {"ANNOTATE_SECRET_KEY": KEY, **env}),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    running = Running(port=port, url=url, log=log, process=process)
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if request(running, "GET", "/_stcore/health").status == 200:
                return running
        except OSError:
            pass
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def stop(running: Running) -> None:
    running.process.terminate()
    try:
        running.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        running.process.kill()
        running.process.wait(timeout=5)


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    workdir = tmp_path_factory.mktemp("limits")
    url, drop = make_test_database(request.param, workdir)
    env = {
        "ANNOTATE_LOGIN_FREE_FAILURES": str(FREE),
        "ANNOTATE_LOGIN_MAX_FAILURES": str(FREE),  # the hard lock before growing delays
        "ANNOTATE_LOGIN_DELAY_SECONDS": "600",
        "ANNOTATE_LOGIN_FREE_FAILURES_PER_ADDRESS": "1000",
    }
    running = start(url, workdir, env)
    try:
        yield running
    finally:
        stop(running)
        drop()


def burst(n: int, send: Callable[[int], Reply]) -> list[Reply]:
    """`send(i)` for i in range(n), all at once."""
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(send, range(n)))


def test_a_burst_of_guesses_gets_only_the_free_ones_checked(server: Running) -> None:
    replies = burst(40, lambda _i: sign_in(server, "bob", WRONG))
    checked = [r for r in replies if sessions.WRONG_CREDENTIALS in r.body]
    assert 1 <= len(checked) <= FREE, f"{len(checked)} of 40 parallel guesses were checked"
    slowed = [r for r in replies if r.status == 429]
    assert len(checked) + len(slowed) == 40, sorted({r.status for r in replies})
    assert all(0 < int(r.header("retry-after")) <= 600 for r in slowed)
    assert "Too many failed sign-ins for `bob`" in slowed[0].body
    # Even the right password waits now, while other names are not affected.
    assert sign_in(server, "bob", PASSWORDS["bob"]).status == 429
    assert sign_in(server, "dana", PASSWORDS["dana"]).status == 303
    # An admin clears the name from the command line; bob is back in at once.
    done = subprocess.run(
        annotate_command("users", "unlock", "bob"),
        env=child_env(server.url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "failed sign-ins of bob cleared" in done.stdout
    assert sign_in(server, "bob", PASSWORDS["bob"]).status == 303


@pytest.mark.parametrize("name", ["bo\x00b", "\x00", "dana\x00"])
def test_a_nul_byte_in_the_name_is_a_clear_400(server: Running, name: str) -> None:
    reply = sign_in(server, name, "whatever-password")
    assert reply.status == 400, (reply.status, reply.body[-400:])
    assert "cannot contain NUL characters" in reply.body
    assert "\x00" not in reply.body


def slow_sign_in(server: Running, name: str) -> Reply:
    """A wrong sign-in that may wait its turn for minutes (200 checks queue behind 2)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    body = urlencode({"name": name, "password": WRONG})
    headers = {
        "origin": f"http://127.0.0.1:{server.port}",
        "content-type": "application/x-www-form-urlencoded",
    }
    try:
        conn.request("POST", "/signin", body=body, headers=headers)
        reply = conn.getresponse()
        return Reply(reply.status, reply.getheaders(), reply.read().decode("utf-8", "replace"))
    finally:
        conn.close()


def vm_hwm(pid: int) -> int:
    """Peak resident memory of process `pid`, bytes (VmHWM in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM line")


@pytest.mark.load
def test_200_parallel_sign_ins_leave_memory_bounded(tmp_path: Path) -> None:
    at_once, memory_kib = 2, 65_536  # two argon2 checks of 64 MiB each at a time
    env = {
        "ANNOTATE_PASSWORD_CHECKS_AT_ONCE": str(at_once),
        "ANNOTATE_ARGON2_MEMORY_KIB": str(memory_kib),
        "ANNOTATE_ARGON2_TIME_COST": "1",
        "ANNOTATE_PASSWORD_CHECK_WAIT_SECONDS": "300",
        # Every request gets its password checked: nobody is slowed down by the throttle.
        "ANNOTATE_LOGIN_FREE_FAILURES": "1000",
        "ANNOTATE_LOGIN_FREE_FAILURES_PER_ADDRESS": "1000",
    }
    server = start(f"sqlite:///{tmp_path / 'mem.db'}", tmp_path, env)
    try:
        # Warm up: one full check (hasher, dummy hash, threads) before the baseline.
        assert sign_in(server, "dana", PASSWORDS["dana"]).status == 303
        assert sign_in(server, "nobody-0", WRONG).status == 401
        before = vm_hwm(server.process.pid)
        # 200 names, most unknown (a dummy hash is checked for them, same cost).
        started = time.monotonic()
        replies = burst(200, lambda i: slow_sign_in(server, f"nobody-{i}"))
        took = time.monotonic() - started
        after = vm_hwm(server.process.pid)
    finally:
        stop(server)
    statuses = sorted({r.status for r in replies})
    assert statuses == [401], statuses
    assert all(sessions.WRONG_CREDENTIALS in r.body for r in replies)  # all 200 were checked
    bound = at_once * memory_kib * 1024 + 96 * MIB
    growth = after - before
    print(
        f"200 sign-ins in {took:.0f} s; VmHWM {before / MIB:.0f} MiB -> {after / MIB:.0f} MiB "
        f"(+{growth / MIB:.0f} MiB, bound {bound / MIB:.0f} MiB)"
    )
    assert growth <= bound, f"peak memory grew {growth / MIB:.0f} MiB > {bound / MIB:.0f} MiB"
