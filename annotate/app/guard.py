"""Streamlit's own endpoints behind the sign-in: the websocket, file uploads and metrics.

`SignInGate` (server.py) guards page loads; this middleware guards what a page talks to
afterwards, so that nothing of the app answers someone who is not signed in:

- `/_stcore/stream` (the websocket every page runs over) is refused at the handshake, with
  HTTP 403 before any upgrade, unless its `Origin` is the app's own (scheme, host and port:
  `Settings.public_url` behind a proxy, else the Host the request came to) and it carries a
  cookie that signs someone in (ours, or Streamlit's single sign-on identity when OIDC is
  configured; the app then maps that identity to a user or shows why not). Over an accepted
  socket, `clear_cache` is only obeyed from an admin (it empties every cache for everyone).
- `/_stcore/upload_file/...` needs a signed-in lead or admin (the pages that upload are the
  admin's import and the leads' Models page; an annotator's page has no uploader, so nothing
  of theirs needs one) and at most `Settings.max_upload_mb`: a larger declared size is refused
  before the body is read, and a body that grows past it is cut off while it streams. An
  upload lands in the uploader's own Streamlit session (whose id only its websocket knows) and
  is read only by a page that role-checks the user again.
- `/_stcore/metrics` answers admins only.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from streamlit.proto.BackMsg_pb2 import BackMsg

from annotate.accounts.auth import has_role
from annotate.settings import Settings, origin_of
from annotate.storage.models import User

LOG = logging.getLogger("annotate.server")
STREAM = "/_stcore/stream"
UPLOAD = "/_stcore/upload_file/"
# The least role that may upload: leads (Models page) and admins (imports).
UPLOAD_ROLE = "lead"
METRICS = "/_stcore/metrics"
STREAMLIT_USER_COOKIE = "_streamlit_user"
# Multipart framing around the one file of an upload (boundaries, part headers).
UPLOAD_OVERHEAD_BYTES = 64 * 1024


class Identity(Protocol):
    """What the guard needs from the sign-in side (server.Auth)."""

    settings: Settings

    def user_for(self, token: str) -> tuple[User | None, str | None]:
        """The user `token` signs in, or None and why not (blocking)."""
        ...


class _TooLarge(Exception):
    """The upload body grew past the cap while streaming."""


def app_origin(settings: Settings, conn: HTTPConnection) -> tuple[str, str, int] | None:
    """The app's own origin: `settings.public_url`, else the scheme and Host of `conn`
    (https when the connection or a TLS-terminating proxy's X-Forwarded-Proto says so)."""
    if settings.public_url:
        return origin_of(settings.public_url)
    forwarded = conn.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    secure = conn.url.scheme in ("https", "wss") or forwarded == "https"
    host = conn.headers.get("host", "")
    return origin_of(f"{'https' if secure else 'http'}://{host}") if host else None


def same_origin(settings: Settings, conn: HTTPConnection) -> bool:
    """Whether the request's Origin header names the app's own origin (no header: False)."""
    origin = conn.headers.get("origin")
    if not origin:
        return False
    own = app_origin(settings, conn)
    return own is not None and origin_of(origin) == own


def _streamlit_identity(conn: HTTPConnection) -> bool:
    """Whether the request carries Streamlit's signed single sign-on cookie, logged in."""
    try:
        from streamlit.web.server.starlette.starlette_websocket import (
            _get_signed_cookie_with_chunks,
        )

        raw = _get_signed_cookie_with_chunks(dict(conn.cookies), STREAMLIT_USER_COOKIE)
        payload = json.loads(raw) if raw else {}
    except Exception:  # noqa: BLE001 - any failure to verify it means no identity
        LOG.warning("could not verify a single sign-on cookie", exc_info=True)
        return False
    return isinstance(payload, dict) and payload.get("is_logged_in") is True


class StreamGuard:
    """ASGI middleware in front of Streamlit's websocket, upload and metrics endpoints."""

    def __init__(self, app: ASGIApp, auth: Identity, oidc: Any = None) -> None:
        self.app = app
        self.auth = auth
        # A callable saying whether single sign-on is configured (read per request).
        self.oidc = oidc or (lambda: False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "websocket" and path.endswith(STREAM):
            await self._stream(scope, receive, send)
        elif scope["type"] == "http" and UPLOAD in path and scope["method"] in ("PUT", "DELETE"):
            await self._upload(scope, receive, send)
        elif scope["type"] == "http" and path.endswith(METRICS):
            await self._metrics(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _user(self, conn: HTTPConnection) -> User | None:
        from annotate.accounts.sessions import COOKIE_NAME

        token = conn.cookies.get(COOKIE_NAME)
        if not token:
            return None
        user, _ = await run_in_threadpool(self.auth.user_for, token)
        return user

    # -- the websocket ---------------------------------------------------------------------

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        conn = HTTPConnection(scope)
        why = None
        user = None
        if not same_origin(self.auth.settings, conn):
            why = f"origin {conn.headers.get('origin')!r} is not the app's own"
        else:
            user = await self._user(conn)
            if user is None and not (self.oidc() and _streamlit_identity(conn)):
                why = "no valid sign-in cookie"
        if why is not None:
            LOG.warning("websocket refused at the handshake: %s", why)
            first = await receive()  # websocket.connect
            if first["type"] == "websocket.connect":
                # Closing before accepting makes the server answer the upgrade with 403.
                await send({"type": "websocket.close", "code": 1008})
            return
        admin = has_role(user, "admin")

        async def filtered() -> Message:
            while True:
                message = await receive()
                if admin or message["type"] != "websocket.receive" or not message.get("bytes"):
                    return message
                if _is_clear_cache(message["bytes"]):
                    LOG.warning("clear_cache from a non-admin session ignored")
                    continue
                return message

        await self.app(scope, filtered, send)

    # -- uploads and metrics ---------------------------------------------------------------

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int) -> None:
        text = {403: "Forbidden", 413: "Too large"}.get(status, "Refused")
        await PlainTextResponse(text, status_code=status)(scope, receive, send)

    async def _upload(self, scope: Scope, receive: Receive, send: Send) -> None:
        conn = HTTPConnection(scope)
        if "origin" in conn.headers and not same_origin(self.auth.settings, conn):
            await self._refuse(scope, receive, send, 403)
            return
        user = await self._user(conn)
        if not has_role(user, UPLOAD_ROLE):
            LOG.warning("upload refused: %s", "not a lead" if user else "not signed in")
            await self._refuse(scope, receive, send, 403)
            return
        cap = self.auth.settings.max_upload_mb * 1024 * 1024 + UPLOAD_OVERHEAD_BYTES
        declared = conn.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            await self._refuse(scope, receive, send, 413)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise _TooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            LOG.warning("upload refused: the body passed %d bytes", cap)
            if not started:
                await self._refuse(scope, receive, send, 413)

    async def _metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not has_role(await self._user(HTTPConnection(scope)), "admin"):
            await self._refuse(scope, receive, send, 403)
            return
        await self.app(scope, receive, send)


def _is_clear_cache(frame: bytes) -> bool:
    message = BackMsg()
    try:
        message.ParseFromString(frame)
    except Exception:  # noqa: BLE001 - Streamlit itself closes on a frame that is no BackMsg
        return False
    return message.WhichOneof("type") == "clear_cache"
