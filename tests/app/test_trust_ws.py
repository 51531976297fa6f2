"""Streamlit's own endpoints against a real `annotate serve`, spoken to as an attacker would:
the websocket without a cookie or from another origin, uploads and metrics without being an
admin, `clear_cache` from an annotator, and engines leaking under repeated cache clears (file
handles on SQLite; connections in pg_stat_activity on PostgreSQL, when configured)."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from starlette.requests import HTTPConnection

from annotate.app.guard import same_origin
from annotate.settings import Settings
from annotate.storage import db
from tests.browser.conftest import PASSWORD, Server
from tests.conftest import PG_URL, make_test_database
from tests.stclient import HandshakeRefused, StreamlitClient, sign_in
from tests.ws_helpers import open_app, serving, submit_labels

USERS = {"adam": "admin", "lee": "lead", "alice": "annotator", "bob": "annotator"}
CAP_MB = 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("trustws")
    url = f"sqlite:///{workdir / 'ws.db'}"
    with serving(workdir, url, USERS, env={"ANNOTATE_MAX_UPLOAD_MB": str(CAP_MB)}) as running:
        yield running


def refused(server: Server, **kw: str | None) -> int:
    with pytest.raises(HandshakeRefused) as caught:
        StreamlitClient(server.url, **kw).connect()
    return caught.value.status


# -- the websocket handshake -------------------------------------------------------------------


def test_no_websocket_without_a_signed_in_cookie(server: Server) -> None:
    assert refused(server, cookie=None) == 403
    assert refused(server, cookie="forged.value") == 403
    signed_out = sign_in(server.url, "bob", PASSWORD)
    with open_app(server, "bob") as app:
        assert any("Signed in as `bob`" in t for t in app.texts())
    StreamlitClient(server.url, cookie=signed_out).connect().close()  # valid until...
    request = urllib.request.Request(
        server.url + "/signout", headers={"cookie": f"annotate_session={signed_out}"}
    )
    with urllib.request.urlopen(request, timeout=30):
        pass
    assert refused(server, cookie=signed_out) == 403  # ...signed out


def test_websocket_only_from_the_apps_own_origin(server: Server) -> None:
    cookie = sign_in(server.url, "adam", PASSWORD)
    port = server.url.rsplit(":", 1)[1]
    for origin in (
        "http://127.0.0.1:9999",
        "http://localhost:" + port,
        "null",
        "https://" + server.url.split("://")[1],
    ):
        assert refused(server, cookie=cookie, origin=origin) == 403, origin
    assert refused(server, cookie=cookie, origin="") == 403  # a browser always sends one
    with StreamlitClient(server.url, cookie=cookie) as app:  # same origin
        run = app.rerun(page="")
        assert any("Signed in as `adam` · admin" in t for t in run.texts())


def _conn(headers: dict[str, str], scheme: str = "ws") -> HTTPConnection:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    return HTTPConnection({"type": "websocket", "scheme": scheme, "headers": raw, "path": "/"})


def test_origin_rule_behind_a_proxy() -> None:
    direct = Settings(database_url="sqlite://")
    proxied = Settings(database_url="sqlite://", public_url="https://label.example.org/")
    app_host = {"host": "127.0.0.1:8501"}
    assert same_origin(direct, _conn({**app_host, "origin": "http://127.0.0.1:8501"}))
    assert not same_origin(direct, _conn({**app_host, "origin": "http://127.0.0.1:9999"}))
    assert not same_origin(direct, _conn({**app_host, "origin": "https://127.0.0.1:8501"}))
    assert not same_origin(direct, _conn(app_host))
    # A TLS proxy that says so: the browser's origin is the https one.
    tls = {"host": "127.0.0.1:8501", "x-forwarded-proto": "https"}
    assert same_origin(direct, _conn({**tls, "origin": "https://127.0.0.1:8501"}))
    assert same_origin(direct, _conn({**app_host, "origin": "https://127.0.0.1:8501"}, "wss"))
    # Behind a proxy with public_url set, only that origin passes, whatever the Host says.
    inner = {"host": "10.0.0.5:8501"}
    assert same_origin(proxied, _conn({**inner, "origin": "https://label.example.org"}))
    assert same_origin(proxied, _conn({**inner, "origin": "https://LABEL.example.org:443"}))
    assert not same_origin(proxied, _conn({**inner, "origin": "http://label.example.org"}))
    assert not same_origin(proxied, _conn({**inner, "origin": "http://10.0.0.5:8501"}))
    with pytest.raises(ValueError, match="public_url"):
        Settings(database_url="sqlite://", public_url="label.example.org")


# -- uploads and metrics -----------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_uploads_need_a_lead_and_stay_under_the_cap(server: Server) -> None:
    with (
        open_app(server, "adam") as admin,
        open_app(server, "alice") as alice,
        open_app(server, "lee") as lead,
    ):
        # Anonymous, into the admin's live session; then an annotator into her own.
        assert admin.upload(b'{"id": 1}\n', cookie="") == 403
        anonymous = StreamlitClient(server.url)
        anonymous.session_id = admin.session_id
        assert anonymous.upload(b"x" * 1000) == 403
        assert alice.upload(b'{"id": 1}\n') == 403
        assert lead.upload(b'{"id": 1}\n') == 204  # the Models page uploads
        assert admin.upload(b'{"id": 1}\n') == 204
        # Over the cap: refused on the declared size, or while streaming when none is given.
        assert admin.upload(b"x" * (CAP_MB * 1024 * 1024 + 100_000)) == 413
        before = rss_kib(server.process.pid)
        chunk = b"y" * (1024 * 1024)
        assert admin.upload(chunk for _ in range(64)) == 413
        grown_mib = (rss_kib(server.process.pid) - before) / 1024
        assert grown_mib < 24, f"a refused 64 MiB upload grew the server by {grown_mib:.0f} MiB"


def test_metrics_answer_admins_only(server: Server) -> None:
    def status(name: str | None) -> int:
        headers = {}
        if name is not None:
            headers["cookie"] = f"annotate_session={sign_in(server.url, name, PASSWORD)}"
        request = urllib.request.Request(server.url + "/_stcore/metrics", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return int(reply.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    assert status(None) == 403
    assert status("alice") == 403
    assert status("lee") == 403
    assert status("adam") == 200


# -- clear_cache -------------------------------------------------------------------------------


def test_clear_cache_from_an_annotator_is_ignored(server: Server) -> None:
    with open_app(server, "alice") as app:
        # Session state the label page keeps: the refusal of an incomplete submit.
        submit_labels(app, {"intent": "harmful"})
        refused = app.component_data(key="labelform")["feedback"]
        assert refused["seq"] == 1 and refused["text"].startswith("Still to label:")
        app.clear_cache()  # would empty every cache, and her session state with them
        app.rerun()
        assert app.component_data(key="labelform")["feedback"] == refused


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_repeated_clear_cache_leaks_no_sqlite_handles(server: Server) -> None:
    # Admins land on Campaigns; the Label page has a session state worth clearing.
    with open_app(server, "adam", page="label") as app:
        # An admin's clear_cache is obeyed: it empties her session state too.
        submit_labels(app, {"intent": "harmful"})
        assert app.component_data(key="labelform")["feedback"]["seq"] == 1
        app.clear_cache()
        app.rerun()
        assert app.component_data(key="labelform")["feedback"]["seq"] == 0
        for _ in range(3):
            app.clear_cache()
            app.rerun()
        before = open_fds(server.process.pid)
        for _ in range(20):
            app.clear_cache()
            app.rerun()
        after = open_fds(server.process.pid)
    assert after - before <= 4, f"open files went from {before} to {after}"


@pytest.fixture
def pg_server(tmp_path: Path) -> Iterator[tuple[Server, str]]:
    if not PG_URL:
        pytest.skip("ANNOTATE_TEST_POSTGRES_URL is not set")
    url, drop = make_test_database("postgres", tmp_path)
    app_name = "annotate_ws_" + uuid.uuid4().hex[:10]
    url += f"&application_name={app_name}"
    try:
        with serving(tmp_path, url, {"adam": "admin"}) as running:
            yield running, app_name
    finally:
        drop()


def pg_connections(app_name: str) -> int:
    engine = db.make_engine(PG_URL)
    try:
        with engine.connect() as conn:
            query = text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :n")
            return int(conn.execute(query, {"n": app_name}).scalar_one())
    finally:
        engine.dispose()


def test_repeated_clear_cache_leaks_no_postgres_connections(
    pg_server: tuple[Server, str],
) -> None:
    server, app_name = pg_server
    with open_app(server, "adam") as app:
        for _ in range(3):
            app.clear_cache()
            app.rerun()
        time.sleep(0.5)
        before = pg_connections(app_name)
        assert before >= 1  # the count does see the server's connections
        for _ in range(20):
            app.clear_cache()
            app.rerun()
        time.sleep(0.5)
        after = pg_connections(app_name)
    assert after - before <= 2, f"connections went from {before} to {after}"


def test_behind_a_proxy_only_the_public_origin_opens_a_websocket(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'proxy.db'}"
    public = "https://label.example.org"
    with serving(tmp_path, url, {"adam": "admin"}, env={"ANNOTATE_PUBLIC_URL": public}) as app:
        cookie = sign_in(app.url, "adam", PASSWORD)
        # The address the proxy reaches the app at is not an origin any browser page has.
        assert refused(app, cookie=cookie, origin=app.url) == 403
        with StreamlitClient(app.url, cookie=cookie, origin=public) as client:
            run = client.rerun(page="")
            assert any("Signed in as `adam`" in t for t in run.texts())
