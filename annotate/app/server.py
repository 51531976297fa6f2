"""The web server: Streamlit's `st.App` plus the sign-in routes and a sign-in gate.

Streamlit cannot set an HttpOnly cookie from a script (scripts talk over a websocket), so
sign-in is a small server-rendered form: `POST /signin` checks the password (slowed after
failures per user name and client address), sets the signed `annotate_session` cookie
(HttpOnly, SameSite=Lax, Secure over https) and redirects into the app, where
`st.context.cookies` reads it on every rerun. A page load without a valid cookie is redirected
to `/signin` by `SignInGate`. Signing out in the app
calls `st.logout()`, which sends the browser to Streamlit's `/auth/logout`; the gate clears our
cookie on that response as well, so one button ends both a password and an OIDC session.
`GET /signout` does the same for a plain link. What a page talks to afterwards (the websocket,
uploads, metrics) is guarded by `guard.StreamGuard`.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import streamlit as st
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from annotate.accounts import sessions
from annotate.app.guard import StreamGuard
from annotate.errors import AnnotateError, AuthError, SignInDelayed, ValidationProblem
from annotate.settings import Settings, origin_of
from annotate.storage import db
from annotate.storage.models import User

LOG = logging.getLogger("annotate.server")
MAIN_SCRIPT = Path(__file__).resolve().parent / "entry" / "streamlit_app.py"
STREAMLIT_USER_COOKIE = "_streamlit_user"
# Paths that are not app pages: Streamlit's own machinery, its OIDC routes, and ours.
NOT_PAGES = (
    "/_stcore/",
    "/static/",
    "/media/",
    "/component/",
    "/auth/",
    "/oauth2callback",
    "/signin",
    "/signout",
    "/favicon",
    "/manifest.json",
    "/app/static/",
)
PAGE_HEADERS = {
    # Defence in depth behind render.py: even a stray <img> could not fetch from elsewhere.
    "content-security-policy": "img-src 'self' data: blob:; media-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}
FORM_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    # "no-referrer" would make Chromium send `Origin: null` with the form, which we refuse.
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}
MAX_FORM_BYTES = 16_384


def export_settings(settings: Settings) -> None:
    """Put `settings` in ANNOTATE_* variables, where the app script (same process) reads them."""
    for name in Settings.model_fields:
        os.environ[f"ANNOTATE_{name.upper()}"] = str(getattr(settings, name))


class Auth:
    """What the sign-in routes share: settings, an engine, the signing key."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._key: str | None = None

    @property
    def engine(self) -> Engine:
        """The process's one engine for the database (shared with the pages)."""
        return db.shared_engine(
            self.settings.database_url,
            busy_timeout_ms=self.settings.sqlite_busy_timeout_ms,
            pool_size=self.settings.pool_size,
        )

    def key(self) -> str:
        """The cookie signing key (blocking: call from a thread)."""
        if self._key is None:
            self._key = sessions.signing_key(engine=self.engine, settings=self.settings)
        return self._key

    def check(self, token: str) -> str | None:
        """None when `token` signs someone in, else why not (blocking: call from a thread)."""
        return self.user_for(token)[1]

    def user_for(self, token: str) -> tuple[User | None, str | None]:
        """The user `token` signs in, or None and why not (blocking: call from a thread)."""
        try:
            with db.session_scope(self.engine) as s:
                user = sessions.read_token(
                    session=s,
                    key=self.key(),
                    token=token,
                    max_age_s=self.settings.session_hours * 3600,
                )
        except AnnotateError as exc:
            # Expired, forged, signed out, or the database is down: either way, no entry.
            return None, str(exc)
        return user, None

    def sign_out(self, token: str) -> None:
        """End the session of `token`'s user, if it still signs anyone in (blocking)."""
        try:
            with db.session_scope(self.engine) as s:
                user = sessions.read_token(
                    session=s,
                    key=self.key(),
                    token=token,
                    max_age_s=self.settings.session_hours * 3600,
                )
                sessions.sign_out(session=s, user=user)
        except AnnotateError:
            # An expired or foreign cookie has no session left to end; with the database down
            # the cookie is still cleared by the caller.
            return

    def dispose(self) -> None:
        """Close the process's engines' connections (server shutdown)."""
        db.dispose_shared()


def _safe_next(value: str | None) -> str:
    """A local path to go to after sign-in; anything else (other sites) becomes `/`."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else "/"


def over_https(request: Request) -> bool:
    """Whether the browser reached us over https: directly, or through a TLS-terminating proxy
    that says so in X-Forwarded-Proto (first hop). Trusting the header is safe here: all it can
    do is add Secure to a cookie, which only ever withholds it from plain http."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def _cookie_header(settings: Settings, request: Request, value: str, max_age: int) -> str:
    always = settings.secure_cookies == "always"
    secure = "; Secure" if always or over_https(request) else ""
    return (
        f"{sessions.COOKIE_NAME}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax"
        + secure
    )


def _form_page(
    *, message: str = "", kind: str = "error", name: str = "", next_path: str = "/"
) -> str:
    note = f'<p class="{kind}" role="alert">{html.escape(message)}</p>' if message else ""
    sso = (
        '<p class="sso"><a href="/signin/sso">Sign in with single sign-on</a></p>'
        if _oidc_configured()
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · annotate</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f6f6f8; color: #1f2328; margin: 0; }}
main {{ max-width: 22rem; margin: 12vh auto; background: #fff; padding: 2rem 2.2rem;
  border-radius: 0.8rem; box-shadow: 0 1px 4px rgba(0,0,0,.12); }}
h1 {{ font-size: 1.4rem; margin: 0 0 1.2rem 0; }}
label {{ display: block; font-size: .9rem; margin: .8rem 0 .3rem; }}
input {{ width: 100%; box-sizing: border-box; padding: .55rem .6rem; font-size: 1rem;
  border: 1px solid #c8c8d0; border-radius: .4rem; }}
button {{ margin-top: 1.3rem; width: 100%; padding: .6rem; font-size: 1rem; border: 0;
  border-radius: .4rem; background: #ff4b4b; color: #fff; cursor: pointer; }}
.error {{ color: #b42318; background: #fef3f2; padding: .5rem .7rem; border-radius: .4rem; }}
.info {{ color: #1f4e8c; background: #eef4ff; padding: .5rem .7rem; border-radius: .4rem; }}
.sso {{ margin-top: 1rem; text-align: center; }}
</style></head>
<body><main>
<h1>Sign in to annotate</h1>
{note}
<form method="post" action="/signin">
<input type="hidden" name="next" value="{html.escape(next_path)}">
<label for="name">User name</label>
<input id="name" name="name" autocomplete="username" autofocus required value="{html.escape(name)}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
{sso}
</main></body></html>"""


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # Old browsers send no Origin on a same-site form post; SameSite covers them.
        return origin is None
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


def routes(auth: Auth) -> list[Route]:
    """GET/POST /signin and GET /signout."""

    async def signin_form(request: Request) -> Response:
        next_path = _safe_next(request.query_params.get("next"))
        token = request.cookies.get(sessions.COOKIE_NAME)
        message, kind = "", "info"
        if request.query_params.get("signed_out"):
            message = "You are signed out."
        if token:
            why = await run_in_threadpool(auth.check, token)
            if why is None:
                return RedirectResponse(next_path, status_code=303)
            message, kind = why, "error"
        response = HTMLResponse(
            _form_page(message=message, kind=kind, next_path=next_path), headers=FORM_HEADERS
        )
        if token:
            response.headers.append("set-cookie", _cookie_header(auth.settings, request, "", 0))
        return response

    async def signin_submit(request: Request) -> Response:
        if not _same_origin(request):
            return HTMLResponse(
                _form_page(message="Sign-in from another site is refused."),
                status_code=403,
                headers=FORM_HEADERS,
            )
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return HTMLResponse(
                _form_page(message="That form is too large."), status_code=413, headers=FORM_HEADERS
            )
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        name = (fields.get("name") or [""])[0]
        password = (fields.get("password") or [""])[0]
        next_path = _safe_next((fields.get("next") or ["/"])[0])
        try:
            user = await run_in_threadpool(
                sessions.sign_in,
                engine=auth.engine,
                settings=auth.settings,
                name=name,
                password=password,
                address=request.client.host if request.client else "",
            )
            key = await run_in_threadpool(auth.key)
        except AnnotateError as exc:
            return _signin_refused(exc, name=name.replace("\x00", ""), next_path=next_path)
        token = sessions.issue_token(key=key, user=user)
        response = RedirectResponse(next_path, status_code=303)
        response.headers.append(
            "set-cookie",
            _cookie_header(auth.settings, request, token, int(auth.settings.session_hours * 3600)),
        )
        return response

    async def sso(request: Request) -> Response:
        # Straight to Streamlit's OIDC login, as st.login() would send the browser: no page,
        # hence no websocket, is opened before the identity provider has vouched for someone.
        if not _oidc_configured():
            return RedirectResponse("/signin", status_code=303)
        from streamlit.user_info import generate_login_redirect_url

        return RedirectResponse(generate_login_redirect_url("default"), status_code=303)

    async def signout(request: Request) -> Response:
        token = request.cookies.get(sessions.COOKIE_NAME)
        if token:
            await run_in_threadpool(auth.sign_out, token)
        response = RedirectResponse("/signin?signed_out=1", status_code=303)
        response.headers.append("set-cookie", _cookie_header(auth.settings, request, "", 0))
        return response

    return [
        Route("/signin", signin_form, methods=["GET"]),
        Route("/signin", signin_submit, methods=["POST"]),
        Route("/signin/sso", sso, methods=["GET"]),
        Route("/signout", signout, methods=["GET"]),
    ]


def _signin_refused(exc: AnnotateError, *, name: str, next_path: str) -> Response:
    """The form again with why: 400 bad input, 401 wrong, 429 slowed down, 503 unavailable."""
    headers = dict(FORM_HEADERS)
    if isinstance(exc, SignInDelayed):
        status = 429
        headers["retry-after"] = str(int(exc.retry_after))
    elif isinstance(exc, AuthError):
        status = 401
    elif isinstance(exc, ValidationProblem):
        status = 400
    else:
        status = 503
    page = _form_page(message=str(exc), name=name, next_path=next_path)
    return HTMLResponse(page, status_code=status, headers=headers)


class SignInGate:
    """ASGI middleware: page loads need a valid cookie; /auth/logout also drops our cookie."""

    def __init__(self, app: ASGIApp, auth: Auth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path = request.url.path
        if path == "/auth/logout":
            await self.app(
                scope,
                receive,
                _with_headers(
                    send, {"set-cookie": _cookie_header(self.auth.settings, request, "", 0)}
                ),
            )
            return
        if not self._is_page_load(request):
            await self.app(scope, receive, send)
            return
        token = request.cookies.get(sessions.COOKIE_NAME)
        why = await run_in_threadpool(self.auth.check, token) if token else "no cookie"
        passes = why is None or (
            # An OIDC identity (st.login) is mapped to a user, or refused, inside the app.
            _oidc_configured() and STREAMLIT_USER_COOKIE in request.cookies
        )
        if not passes:
            target = "/signin?next=" + quote(
                path + (f"?{request.url.query}" if request.url.query else ""), safe=""
            )
            response = RedirectResponse(target, status_code=303)
            if token:
                response.headers.append(
                    "set-cookie", _cookie_header(self.auth.settings, request, "", 0)
                )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, _with_headers(send, PAGE_HEADERS))

    @staticmethod
    def _is_page_load(request: Request) -> bool:
        if request.method not in ("GET", "HEAD"):
            return False
        path = request.url.path
        if any(path.startswith(prefix) for prefix in NOT_PAGES):
            return False
        return "text/html" in request.headers.get("accept", "")


def _with_headers(send: Send, headers: dict[str, str]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            raw = list(message.get("headers", []))
            present = {k.lower() for k, _ in raw}
            for name, value in headers.items():
                if name == "set-cookie" or name.encode() not in present:
                    raw.append((name.encode(), value.encode()))
            message = {**message, "headers": raw}
        await send(message)

    return wrapped


def _log_script_error(exc: Exception) -> bool | None:
    # Domain errors are shown by the pages; anything reaching here is a bug: log it in full,
    # while the browser gets Streamlit's generic message (client.showErrorDetails = none).
    LOG.error("unhandled error in the app script", exc_info=exc)
    return None


def build_app(settings: Settings) -> Any:
    """The ASGI app: Streamlit's `st.App` with our routes and middleware."""
    auth = Auth(settings)

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[dict[str, Any]]:
        from annotate.app import figure_process, warm_start  # (they import Streamlit's runtime)

        warm_start.start(settings, auth.engine)
        yield {"auth": auth}
        figure_process.stop()
        auth.dispose()

    return st.App(
        MAIN_SCRIPT,
        routes=routes(auth),
        middleware=[
            Middleware(SignInGate, auth=auth),
            Middleware(StreamGuard, auth=auth, oidc=_oidc_configured),
        ],
        lifespan=lifespan,
        on_script_error=_log_script_error,
    )


STREAMLIT_CONFIG = {
    "server.headless": True,
    "browser.gatherUsageStats": False,
    "server.fileWatcherType": "none",
    "server.runOnSave": False,
    "runner.postScriptGC": False,
    "client.toolbarMode": "minimal",
    "client.showErrorDetails": "none",
    # Off by default in 1.67; pinned off: it would drive the app over HTTP past our guard.
    "server.enableAgentApi": False,
}


def run(settings: Settings, *, port: int, address: str) -> None:
    """Serve the app on `address:port` until interrupted (blocks)."""
    export_settings(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config: dict[str, Any] = {
        **STREAMLIT_CONFIG,
        "server.port": port,
        "server.address": address,
        "server.maxUploadSize": settings.max_upload_mb,
    }
    public = origin_of(settings.public_url) if settings.public_url else None
    if public is not None:
        # Streamlit checks a websocket's Origin against the Host too, and past a proxy that
        # rewrites Host it would look the machine's addresses up (one over the network);
        # naming the public host lets it match at once. The guard has checked the full origin.
        config["browser.serverAddress"] = public[1]
        config["browser.serverPort"] = public[2]
    build_app(settings).run(config=config)
