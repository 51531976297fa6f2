"""Cookies and passwords against a real `annotate serve`, over plain HTTP.

One server for the module (SQLite, a known signing key, 3 free failures, then 5 minutes'
wait). The Set-Cookie header is read as a browser gets it; cookies are checked for their
signature (tampered, re-signed with another key, payload swapped), expiry and flags; the
server's own output and the database are searched for the passwords used; and failed sign-ins
slow one user name down, not the others, until the delay has passed.
"""

from __future__ import annotations

import http.client
import logging
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import JSON, String, Text, inspect, select, table
from sqlalchemy import column as sa_column
from sqlalchemy.engine import Engine

from annotate import storage
from annotate.accounts import sessions
from annotate.accounts.auth import system_actor
from annotate.settings import Settings
from annotate.storage import db
from annotate.storage.models import utcnow
from tests.browser.conftest import annotate_command, child_env, free_port

KEY = "http-test-signing-key-" + "z" * 30
PASSWORDS = {"alice": "Alice-pw-7f3a9c", "bob": "Bob-pw-2b8e41", "carl": "Carl-pw-90dd17"}
WRONG = "Wrong-guess-5c1e"
NEW_PASSWORD = "Changed-pw-44aa31"
WINDOW_MINUTES = 10.0
DELAY_SECONDS = 300.0
SESSION_HOURS = 12.0


@dataclass
class Running:
    port: int
    url: str
    log: Path
    process: subprocess.Popen[str]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    workdir = tmp_path_factory.mktemp("authhttp")
    url = f"sqlite:///{workdir / 'auth.db'}"
    engine = db.make_engine(url)
    db.migrate(engine)
    with db.session_scope(engine) as s:
        for name, password in PASSWORDS.items():
            storage.add_user(session=s, actor=system_actor(), name=name, password=password)
    engine.dispose()
    port = free_port()
    env = child_env(url) | {
        "ANNOTATE_SECRET_KEY": KEY,
        "ANNOTATE_LOGIN_FREE_FAILURES": "3",
        "ANNOTATE_LOGIN_DELAY_SECONDS": str(DELAY_SECONDS),
        "ANNOTATE_LOGIN_WINDOW_MINUTES": str(WINDOW_MINUTES),
        "ANNOTATE_SESSION_HOURS": str(SESSION_HOURS),
    }
    log = workdir / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            annotate_command("serve", "--port", str(port)),
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    running = Running(port=port, url=url, log=log, process=process)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if request(running, "GET", "/_stcore/health").status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name), "")

    def set_cookies(self) -> list[str]:
        return [v for k, v in self.headers if k.lower() == "set-cookie"]


def request(
    server: Running,
    method: str,
    path: str,
    *,
    form: dict[str, str] | None = None,
    cookie: str | None = None,
    extra: dict[str, str] | None = None,
) -> Reply:
    """One request, no redirects followed, as a browser on the same origin would send it."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = {"accept": "text/html", "origin": f"http://127.0.0.1:{server.port}"}
    headers.update(extra or {})
    body = None
    if form is not None:
        body = urlencode(form)
        headers["content-type"] = "application/x-www-form-urlencoded"
    if cookie is not None:
        headers["cookie"] = f"{sessions.COOKIE_NAME}={cookie}"
    try:
        conn.request(method, path, body=body, headers=headers)
        reply = conn.getresponse()
        return Reply(reply.status, reply.getheaders(), reply.read().decode("utf-8", "replace"))
    finally:
        conn.close()


def sign_in(server: Running, name: str, password: str) -> Reply:
    return request(server, "POST", "/signin", form={"name": name, "password": password})


def cookie_of(reply: Reply) -> str:
    jar: SimpleCookie = SimpleCookie()
    for raw in reply.set_cookies():
        jar.load(raw)
    return jar[sessions.COOKIE_NAME].value


def opens_the_app(server: Running, cookie: str) -> bool:
    reply = request(server, "GET", "/", cookie=cookie)
    assert reply.status in (200, 303), reply.status
    return reply.status == 200


def test_the_cookie_is_signed_httponly_samesite_and_expires(server: Running) -> None:
    reply = sign_in(server, "carl", PASSWORDS["carl"])
    assert reply.status == 303
    (raw,) = reply.set_cookies()
    attrs = [a.strip() for a in raw.split(";")]
    assert attrs[0].startswith(f"{sessions.COOKIE_NAME}=")
    assert "HttpOnly" in attrs
    assert "SameSite=Lax" in attrs
    assert "Path=/" in attrs
    max_age = int(next(a for a in attrs if a.startswith("Max-Age=")).split("=")[1])
    assert 0 < max_age <= SESSION_HOURS * 3600
    token = cookie_of(reply)
    # Signed with the server's key: it parses with it, and with no other key.
    claims = sessions.parse_token(key=KEY, token=token, max_age_s=3600)
    assert claims.issued_at <= time.time()
    with pytest.raises(sessions.AuthError):
        sessions.parse_token(key="another-key" * 4, token=token, max_age_s=3600)
    assert PASSWORDS["carl"] not in raw
    assert opens_the_app(server, token)


def test_the_cookie_is_secure_behind_a_tls_proxy_and_only_there(server: Running) -> None:
    def flags(reply: Reply) -> list[str]:
        assert reply.status == 303, reply.body
        (raw,) = reply.set_cookies()
        return [a.strip() for a in raw.split(";")]

    plain = sign_in(server, "carl", PASSWORDS["carl"])
    assert "Secure" not in flags(plain)
    # A TLS-terminating proxy in front (the README's nginx example) says so in
    # X-Forwarded-Proto; the browser's Origin is then the https one.
    proxied = request(
        server,
        "POST",
        "/signin",
        form={"name": "carl", "password": PASSWORDS["carl"]},
        extra={
            "x-forwarded-proto": "https",
            "origin": f"https://127.0.0.1:{server.port}",
        },
    )
    assert "Secure" in flags(proxied)
    assert opens_the_app(server, cookie_of(proxied))
    # Signing out through the proxy clears the cookie with the same flag.
    out = request(
        server,
        "GET",
        "/signout",
        cookie=cookie_of(proxied),
        extra={"x-forwarded-proto": "https"},
    )
    assert any("Max-Age=0" in c and "Secure" in c for c in out.set_cookies())


def test_secure_cookies_always_marks_every_cookie_secure() -> None:
    from starlette.requests import Request

    from annotate.app.server import _cookie_header

    def plain_http(headers: dict[str, str]) -> Request:
        raw = [(k.encode(), v.encode()) for k, v in headers.items()]
        return Request({"type": "http", "scheme": "http", "headers": raw, "path": "/"})

    auto = Settings(database_url="sqlite://", secure_cookies="auto")
    always = Settings(database_url="sqlite://", secure_cookies="always")
    assert "Secure" not in _cookie_header(auto, plain_http({}), "v", 60)
    assert _cookie_header(auto, plain_http({"x-forwarded-proto": "https, http"}), "v", 60).endswith(
        "; Secure"
    )
    assert "Secure" not in _cookie_header(auto, plain_http({"x-forwarded-proto": "http"}), "v", 60)
    assert _cookie_header(always, plain_http({}), "v", 60).endswith("; Secure")
    with pytest.raises(ValueError, match="secure_cookies"):
        Settings(database_url="sqlite://", secure_cookies="sometimes")  # type: ignore[arg-type]


def test_tampered_and_expired_cookies_are_refused(server: Running) -> None:
    alice = cookie_of(sign_in(server, "alice", PASSWORDS["alice"]))
    bob = cookie_of(sign_in(server, "bob", PASSWORDS["bob"]))
    assert opens_the_app(server, alice)
    payload, signature = alice.rsplit(".", 1)
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    bob_id = sessions.parse_token(key=KEY, token=bob, max_age_s=3600).user_id
    forged = {
        "bad signature": f"{payload}.{flipped}",
        "payload swapped": f"{bob.rsplit('.', 1)[0]}.{signature}",
        "other key": sessions.URLSafeSerializer("guess" * 8, salt="annotate.session.v1").dumps(
            {"u": bob_id, "p": "x", "t": time.time()}
        ),
        "unsigned": payload,
    }
    for why, value in forged.items():
        reply = request(server, "GET", "/", cookie=str(value))
        assert reply.status == 303, why
        assert reply.header("location").startswith("/signin"), why
        assert any("Max-Age=0" in c for c in reply.set_cookies()), why
    # Expired: a genuine signature, issued longer ago than the session lifetime.
    claims = sessions.parse_token(key=KEY, token=alice, max_age_s=3600)
    expired = sessions.URLSafeSerializer(KEY, salt="annotate.session.v1").dumps(
        {"u": claims.user_id, "p": claims.password_fingerprint, "t": time.time() - 13 * 3600}
    )
    assert not opens_the_app(server, str(expired))
    form = request(server, "GET", "/signin", cookie=str(expired))
    assert "Your session has expired" in form.body
    # The genuine cookie still works: the refusals were about the cookies, not the user.
    assert opens_the_app(server, alice)


def test_sign_in_is_slowed_down_per_user(server: Running) -> None:
    for _ in range(3):
        failed = sign_in(server, "bob", WRONG)
        assert failed.status == 401 and sessions.WRONG_CREDENTIALS in failed.body
    slowed = sign_in(server, "bob", PASSWORDS["bob"])
    assert slowed.status == 429
    assert "Too many failed sign-ins for `bob`" in slowed.body
    assert 0 < int(slowed.header("retry-after")) <= DELAY_SECONDS
    assert not slowed.set_cookies()
    # Another user is not affected.
    assert sign_in(server, "alice", PASSWORDS["alice"]).status == 303
    assert sign_in(server, "bob", PASSWORDS["bob"]).status == 429  # still waiting
    # Once the delay has passed (the same check, on the same database, a delay later).
    engine = db.make_engine(server.url)
    settings = Settings(
        database_url=server.url, login_free_failures=3, login_delay_seconds=DELAY_SECONDS
    )
    later = utcnow() + timedelta(seconds=DELAY_SECONDS + 1)
    try:
        with pytest.raises(sessions.AuthError, match="Too many"):
            sessions.sign_in(
                engine=engine, settings=settings, name="bob", password=PASSWORDS["bob"]
            )
        user = sessions.sign_in(
            engine=engine, settings=settings, name="bob", password=PASSWORDS["bob"], now=later
        )
    finally:
        engine.dispose()
    assert user.name == "bob"


def test_passwords_are_never_logged_nor_stored_in_clear(
    server: Running, caplog: pytest.LogCaptureFixture
) -> None:
    # Sign-ins right and wrong on the server, then a password change and a sign-in in this
    # process with every logger, SQLAlchemy's statements and parameters included, at DEBUG.
    sign_in(server, "carl", PASSWORDS["carl"])
    sign_in(server, "carl", WRONG)
    engine = db.make_engine(server.url)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.DEBUG)
    try:
        with db.session_scope(engine) as s:
            storage.set_password(
                session=s, actor=system_actor(), name="carl", password=NEW_PASSWORD
            )
        settings = Settings(database_url=server.url, secret_key=KEY)
        assert (
            sessions.sign_in(
                engine=engine, settings=settings, name="carl", password=NEW_PASSWORD
            ).name
            == "carl"
        )
        with pytest.raises(sessions.AuthError):
            sessions.sign_in(engine=engine, settings=settings, name="carl", password=WRONG)
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    assert "INSERT INTO login_attempt" in caplog.text  # the statements were logged...
    secrets_used = [*PASSWORDS.values(), WRONG, NEW_PASSWORD]
    for password in secrets_used:
        assert password not in caplog.text  # ...but no password with them
    server_output = server.log.read_text()
    assert "serving on" in server_output
    for password in secrets_used:
        assert password not in server_output
    try:
        scanned = scan_text_columns(engine, secrets_used)
    finally:
        engine.dispose()
    assert {"user.password_hash", "login_attempt.user_name"} <= scanned


def scan_text_columns(engine: Engine, needles: list[str]) -> set[str]:
    """Assert no needle occurs in any text or JSON column of any table; the columns seen."""
    seen = set()
    inspector = inspect(engine)
    conn = engine.connect()
    for table_name in inspector.get_table_names():
        for col in inspector.get_columns(table_name):
            if not isinstance(col["type"], String | Text | JSON):
                continue
            name = f"{table_name}.{col['name']}"
            query = select(sa_column(col["name"])).select_from(table(table_name))
            values = conn.execute(query).scalars().all()
            for value in values:
                for needle in needles:
                    assert needle not in str(value), f"a password is stored in clear in {name}"
            if table_name == "user" and col["name"] == "password_hash":
                assert values and all(str(v).startswith("$argon2id$") for v in values)
            seen.add(name)
    conn.close()
    return seen
