"""The sign-in routes and the sign-in gate, driven over ASGI without a browser or Streamlit."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from annotate.accounts import sessions
from annotate.app import server
from annotate.settings import Settings
from annotate.storage import db
from annotate.storage.models import LoginAttempt, User
from tests.conftest import make_user

HOST = "127.0.0.1:8501"
ORIGIN = f"http://{HOST}"


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def cookies(self) -> dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        for k, v in self.headers:
            if k == "set-cookie":
                jar.load(v)
        return {k: m.value for k, m in jar.items()}


def call(
    app: Any,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Reply:
    """One HTTP request through the ASGI app."""
    body = urlencode(form).encode() if form is not None else b""
    all_headers = {"host": HOST, **(headers or {})}
    if form is not None:
        all_headers["content-type"] = "application/x-www-form-urlencoded"
    path_only, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path_only,
        "raw_path": path_only.encode(),
        "query_string": query.encode(),
        "headers": [(k.encode(), v.encode()) for k, v in all_headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8501),
    }
    sent: list[dict[str, Any]] = []
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    text = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Reply(
        status=start["status"],
        headers=[(k.decode().lower(), v.decode()) for k, v in start["headers"]],
        body=text.decode(),
    )


@pytest.fixture
def auth(db_url: str, engine: Engine, tmp_path: Path) -> Iterator[server.Auth]:
    with db.session_scope(engine) as s:
        make_user(s, "alice")
    helper = server.Auth(
        Settings(
            database_url=db_url,
            login_free_failures=3,
            login_delay_seconds=60,
            secret_key_file=str(tmp_path / "k.key"),
        )
    )
    yield helper
    helper.dispose()


@pytest.fixture
def app(auth: server.Auth) -> Starlette:
    """Our routes and gate in front of a stand-in for Streamlit."""

    async def streamlit_page(request: Request) -> Response:
        return PlainTextResponse("the app")

    async def streamlit_logout(request: Request) -> Response:
        return RedirectResponse("/", status_code=302)

    return Starlette(
        routes=[
            *server.routes(auth),
            Route("/auth/logout", streamlit_logout),
            Route("/_stcore/health", lambda r: PlainTextResponse("ok")),
            Route("/{path:path}", streamlit_page),
        ],
        middleware=[Middleware(server.SignInGate, auth=auth)],
    )


def sign_in(app: Starlette, password: str = "correct horse", **extra: str) -> Reply:
    form = {"name": "alice", "password": password, "next": "/my_work", **extra}
    return call(app, "POST", "/signin", headers={"origin": ORIGIN}, form=form)


PAGE = {"accept": "text/html,application/xhtml+xml"}


def test_page_loads_without_a_cookie_go_to_the_sign_in_form(app: Starlette) -> None:
    reply = call(app, "GET", "/my_work?campaign=demo", headers=PAGE)
    assert reply.status == 303
    assert reply.header("location") == "/signin?next=%2Fmy_work%3Fcampaign%3Ddemo"
    form = call(app, "GET", "/signin?next=/my_work", headers=PAGE)
    assert form.status == 200 and 'name="password"' in form.body
    assert "default-src 'none'" in (form.header("content-security-policy") or "")


def test_machinery_is_not_gated(app: Starlette) -> None:
    assert call(app, "GET", "/_stcore/health").body == "ok"
    # Not a page load (no text/html accepted): scripts, websockets and assets pass.
    assert call(app, "GET", "/static/js/x.js").status == 200


def test_signing_in_sets_a_hardened_cookie_and_redirects(app: Starlette) -> None:
    reply = sign_in(app)
    assert reply.status == 303 and reply.header("location") == "/my_work"
    raw = reply.header("set-cookie") or ""
    assert raw.startswith(f"{sessions.COOKIE_NAME}=")
    for flag in ("HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"):
        assert flag in raw
    token = reply.cookies()[sessions.COOKIE_NAME]
    page = call(
        app, "GET", "/my_work", headers={**PAGE, "cookie": f"{sessions.COOKIE_NAME}={token}"}
    )
    assert page.status == 200 and page.body == "the app"
    assert "img-src 'self' data: blob:" in (page.header("content-security-policy") or "")
    assert page.header("referrer-policy") == "no-referrer"


def test_wrong_password_is_refused_without_saying_which_part(app: Starlette) -> None:
    reply = sign_in(app, password="wrong horse")
    assert reply.status == 401
    assert sessions.WRONG_CREDENTIALS in reply.body
    assert sessions.COOKIE_NAME not in reply.cookies()
    assert 'value="alice"' in reply.body  # the name is kept, the password is not


def test_repeated_failures_slow_the_name_down(app: Starlette, engine: Engine) -> None:
    for _ in range(3):
        assert sign_in(app, password="guess").status == 401
    slowed = sign_in(app)
    assert slowed.status == 429 and "Too many failed sign-ins for `alice`" in slowed.body
    assert 0 < int(slowed.header("retry-after") or 0) <= 60  # the first delay of the schedule
    with Session(engine) as s:
        assert len(s.exec(select(LoginAttempt)).all()) == 3


def test_cross_site_posts_are_refused(app: Starlette) -> None:
    form = {"name": "alice", "password": "correct horse"}
    for origin in ("http://evil.invalid", "null"):
        reply = call(app, "POST", "/signin", headers={"origin": origin}, form=form)
        assert reply.status == 403


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/my_work", "/my_work"),
        ("//evil.invalid/x", "/"),
        ("http://evil.invalid/", "/"),
        ("/\\evil.invalid", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_next_is_always_a_local_path(app: Starlette, target: str, expected: str) -> None:
    assert sign_in(app, next=target).header("location") == expected


def test_an_invalid_cookie_is_dropped_with_the_reason_shown(app: Starlette) -> None:
    bad = {**PAGE, "cookie": f"{sessions.COOKIE_NAME}=forged.value"}
    reply = call(app, "GET", "/", headers=bad)
    assert reply.status == 303 and reply.header(
        "location",
    ).startswith("/signin")  # type: ignore[union-attr]
    assert "Max-Age=0" in (reply.header("set-cookie") or "")
    form = call(app, "GET", "/signin", headers=bad)
    assert "not valid here" in form.body


def test_sign_out_ends_the_session_on_the_server(app: Starlette, engine: Engine) -> None:
    token = sign_in(app).cookies()[sessions.COOKIE_NAME]
    cookie = {"cookie": f"{sessions.COOKIE_NAME}={token}"}
    reply = call(app, "GET", "/signout", headers=cookie)
    assert reply.status == 303 and reply.header("location") == "/signin?signed_out=1"
    assert "Max-Age=0" in (reply.header("set-cookie") or "")
    with Session(engine) as s:
        alice = s.exec(select(User).where(User.name == "alice")).one()
        assert alice.session_generation == 1  # every earlier cookie and loaded copy is refused
    # The old cookie no longer opens the app, even if a copy of it was kept.
    assert call(app, "GET", "/", headers={**PAGE, **cookie}).status == 303


def test_streamlit_logout_also_clears_our_cookie(app: Starlette) -> None:
    reply = call(app, "GET", "/auth/logout")
    assert reply.status == 302
    assert f"{sessions.COOKIE_NAME}=; Max-Age=0" in (reply.header("set-cookie") or "")


def test_signed_in_visitors_skip_the_form(app: Starlette) -> None:
    token = sign_in(app).cookies()[sessions.COOKIE_NAME]
    reply = call(
        app, "GET", "/signin?next=/label", headers={"cookie": f"{sessions.COOKIE_NAME}={token}"}
    )
    assert reply.status == 303 and reply.header("location") == "/label"


def test_export_settings_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Settings(database_url="sqlite:///x.db", lease_minutes=7.5, secret_key="k")
    # A private copy of the environment, restored afterwards, so nothing leaks to other tests.
    monkeypatch.setattr(
        os, "environ", {k: v for k, v in os.environ.items() if "ANNOTATE_" not in k}
    )
    server.export_settings(original)
    assert Settings() == original
