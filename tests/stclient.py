"""A Streamlit client without a browser: speaks the app's websocket (`/_stcore/stream`) with
Streamlit's own BackMsg/ForwardMsg protobufs, and its upload endpoint over HTTP.

For protocol-level tests and the load benchmark:

    cookie = sign_in(base_url, "alice", "pw")            # POST /signin, as the form does
    with StreamlitClient(base_url, cookie=cookie) as app: # handshake (HandshakeRefused: 403...)
        run = app.rerun(page="label")                     # a full run; ForwardMsgs until done
        form = app.component_data(key="labelform")       # what the label form was given
        run = app.trigger(key="labelform", event="message", value={"kind": "submit",
            "assignment": form["item"]["assignment"], "labels": {...}})  # a fragment rerun
        app.click(key="recheck")                          # a button (a fragment rerun inside one)

`app.page` mirrors what a browser would show (elements by delta path, stale ones dropped when
a run finishes); `Run` holds one run's messages. The client keeps the values it set, as the
browser does, and sends them with every rerun; button presses are one-shot triggers.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode, urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

COOKIE_NAME = "annotate_session"
XSRF_COOKIE = "_streamlit_xsrf"
DONE = {
    ForwardMsg.FINISHED_SUCCESSFULLY,
    ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
    ForwardMsg.FINISHED_WITH_COMPILE_ERROR,
}


class HandshakeRefused(Exception):
    """The server answered the websocket upgrade with an HTTP status instead of 101."""

    def __init__(self, status: int) -> None:
        super().__init__(f"websocket handshake refused with HTTP {status}")
        self.status = status


class ClosedByServer(Exception):
    """The server closed the websocket while a run was awaited."""


@dataclass(frozen=True)
class SignInReply:
    """The answer to `POST /signin`: its status, the session cookie (None when refused), the
    page's text (a refusal says why) and Retry-After in seconds (0 when absent)."""

    status: int
    cookie: str | None
    page: str
    retry_after: float = 0.0


def try_sign_in(base_url: str, name: str, password: str, *, timeout: float = 60.0) -> SignInReply:
    """`POST /signin` as the form does, whatever the answer."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request(
            "POST",
            "/signin",
            body=urlencode({"name": name, "password": password, "next": "/"}),
            headers={
                "content-type": "application/x-www-form-urlencoded",
                "origin": f"{parts.scheme}://{parts.netloc}",
            },
        )
        reply = conn.getresponse()
        page = reply.read().decode("utf-8", "replace")
        jar: SimpleCookie = SimpleCookie()
        for key, value in reply.getheaders():
            if key.lower() == "set-cookie":
                jar.load(value)
    finally:
        conn.close()
    cookie = jar[COOKIE_NAME].value if reply.status == 303 and COOKIE_NAME in jar else None
    retry = reply.getheader("retry-after") or "0"
    return SignInReply(reply.status, cookie, page, float(retry) if retry.isdigit() else 0.0)


def sign_in(base_url: str, name: str, password: str, *, timeout: float = 60.0) -> str:
    """Sign in through `POST /signin` as the form does; the session cookie's value.
    AssertionError with the page's status when the server refuses."""
    reply = try_sign_in(base_url, name, password, timeout=timeout)
    assert reply.cookie is not None, f"sign-in as {name}: HTTP {reply.status}"
    return reply.cookie


@dataclass(frozen=True)
class Element:
    """One element or block of the page, as a delta put it at `path`."""

    path: tuple[int, ...]
    kind: str  # the Element oneof ("button", "markdown", "text_area"...) or "block"
    proto: Any
    fragment_id: str = ""

    @property
    def id(self) -> str:
        """The widget id ("" for elements that are not widgets)."""
        return str(getattr(self.proto, "id", "") or "") if self.kind != "block" else ""

    @property
    def key(self) -> str:
        """The widget's user key (Streamlit ids read `$$ID-<hash>-<key>`), else ""."""
        parts = self.id.split("-", 2)
        return parts[2] if self.id.startswith("$$ID-") and len(parts) == 3 else ""

    @property
    def text(self) -> str:
        """What the element says: a body, a label, or an exception's message."""
        for name in ("body", "label", "message"):
            value = getattr(self.proto, name, None)
            if isinstance(value, str) and value:
                return value
        return ""


@dataclass
class Run:
    """The ForwardMsgs of one script run (and of any run it triggered with st.rerun)."""

    messages: list[ForwardMsg] = field(default_factory=list)
    elements: list[Element] = field(default_factory=list)
    status: int | None = None
    seconds: float = 0.0  # from the request (or the wait) until the run finished

    def texts(self) -> list[str]:
        """The text of every element this run sent, in order."""
        return [e.text for e in self.elements if e.text]

    def of_type(self, kind: str) -> list[ForwardMsg]:
        """The messages of one ForwardMsg type ("page_not_found", "auth_redirect"...)."""
        return [m for m in self.messages if m.WhichOneof("type") == kind]

    @property
    def exceptions(self) -> list[Element]:
        """Exception elements (a traceback shown to the user)."""
        return [e for e in self.elements if e.kind == "exception"]


class StreamlitClient:
    """One browser tab's websocket session with a Streamlit server."""

    def __init__(
        self,
        base_url: str,
        *,
        cookie: str | None = None,
        origin: str | None = None,
        timeout: float = 60.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        self.base_url = f"{parts.scheme}://{parts.netloc}"
        self.cookie = cookie
        # A browser always sends Origin with a websocket; by default, the app's own.
        self.origin = self.base_url if origin is None else origin
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.session_id = ""
        self.page: dict[tuple[int, ...], Element] = {}
        self.query_string = ""
        self.page_script_hash = ""
        self._values: dict[str, WidgetState] = {}
        self._ws: ClientConnection | None = None
        self._cm: Any = None

    # -- connection ----------------------------------------------------------------------------

    def connect(self) -> StreamlitClient:
        """Open the websocket; HandshakeRefused when the server answers with a status."""
        scheme = "wss" if self.base_url.startswith("https") else "ws"
        headers = dict(self.headers)
        if self.cookie is not None:
            headers["Cookie"] = f"{COOKIE_NAME}={self.cookie}"
        if self.origin:
            headers["Origin"] = self.origin
        try:
            self._cm = connect(
                f"{scheme}://{urlsplit(self.base_url).netloc}/_stcore/stream",
                additional_headers=headers,
                subprotocols=["streamlit"],  # type: ignore[list-item]
                max_size=None,
                open_timeout=self.timeout,
                ping_interval=None,
                compression=None,
            )
            self._ws = self._cm.__enter__()
        except InvalidStatus as exc:
            raise HandshakeRefused(exc.response.status_code) from None
        return self

    def close(self) -> None:
        """Close the websocket (the server then ends the session)."""
        if self._cm is not None:
            self._cm.__exit__(None, None, None)
        self._cm = self._ws = None

    def __enter__(self) -> StreamlitClient:
        return self.connect() if self._ws is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, message: BackMsg) -> None:
        """Send one BackMsg as it is."""
        assert self._ws is not None, "not connected"
        self._ws.send(message.SerializeToString())

    def receive(self, timeout: float | None = None) -> ForwardMsg:
        """The next ForwardMsg; ClosedByServer when the socket closed, TimeoutError."""
        assert self._ws is not None, "not connected"
        from websockets.exceptions import ConnectionClosed

        try:
            raw = self._ws.recv(timeout=self.timeout if timeout is None else timeout)
        except ConnectionClosed as exc:
            raise ClosedByServer(str(exc)) from None
        message = ForwardMsg()
        message.ParseFromString(raw if isinstance(raw, bytes) else raw.encode())
        return message

    # -- runs ----------------------------------------------------------------------------------

    def rerun(
        self,
        *,
        page: str | None = None,
        query: str | None = None,
        fragment_id: str = "",
        triggers: Iterable[str] = (),
    ) -> Run:
        """Ask for a run (a full one, or of `fragment_id`) and wait until it finished.

        `page` switches to the page of that URL path ("" the default page); `query` sets the
        query string; `triggers` are widget ids pressed for this run only.
        """
        message = BackMsg()
        state = message.rerun_script
        if page is not None:
            state.page_name = page
            self.page_script_hash = ""
        else:
            state.page_script_hash = self.page_script_hash
        if query is not None:
            self.query_string = query
        state.query_string = self.query_string
        state.fragment_id = fragment_id
        state.context_info.url = self.base_url + "/" + (page or "")
        state.context_info.timezone = "UTC"
        for value in self._values.values():
            state.widget_states.widgets.add().CopyFrom(value)
        for widget_id in triggers:
            trigger = state.widget_states.widgets.add()
            trigger.id = widget_id
            trigger.trigger_value = True
        started = time.perf_counter()
        self.send(message)
        return self.wait(fragment_id=fragment_id, started=started)

    def wait(self, *, fragment_id: str = "", started: float | None = None) -> Run:
        """Collect ForwardMsgs until a run finished (not one stopped early for a rerun)."""
        run = Run()
        started = time.perf_counter() if started is None else started
        touched: set[tuple[int, ...]] = set()
        while True:
            message = self.receive()
            run.messages.append(message)
            kind = message.WhichOneof("type")
            if kind == "new_session":
                touched.clear()
                if message.new_session.HasField("initialize"):
                    self.session_id = message.new_session.initialize.session_id
            elif kind == "navigation":
                self.page_script_hash = message.navigation.page_script_hash
            elif kind == "page_info_changed":
                self.query_string = message.page_info_changed.query_string
            elif kind == "delta":
                element = _element(message)
                if element is not None:
                    self.page[element.path] = element
                    touched.add(element.path)
                    run.elements.append(element)
            elif kind == "script_finished":
                run.status = message.script_finished
                if message.script_finished in DONE:
                    # A fragment run that called st.rerun() ends as a full run.
                    partial = (
                        message.script_finished == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY
                    )
                    self._drop_stale(touched, fragment_id if partial else "")
                    run.seconds = time.perf_counter() - started
                    return run

    def _drop_stale(self, touched: set[tuple[int, ...]], fragment_id: str) -> None:
        for path, element in list(self.page.items()):
            if path in touched:
                continue
            if not fragment_id or element.fragment_id == fragment_id:
                del self.page[path]
        # As the browser does: values of widgets no longer shown are not sent again.
        shown = {e.id for e in self.page.values() if e.id}
        self._values = {k: v for k, v in self._values.items() if k in shown}

    # -- widgets -------------------------------------------------------------------------------

    def find(self, *, key: str | None = None, label: str | None = None) -> Element:
        """The element on the page with widget key `key` or text `label` (exactly one)."""
        found = [
            e
            for e in self.page.values()
            if (key is None or e.key == key) and (label is None or e.text == label)
        ]
        if len(found) != 1:
            shown = sorted(e.key or e.text[:40] for e in self.page.values() if e.key or e.text)
            raise LookupError(f"{len(found)} elements match key={key} label={label}: {shown}")
        return found[0]

    def elements(self, *, key_prefix: str = "", kind: str | None = None) -> list[Element]:
        """The page's elements in delta-path order, optionally those whose widget key starts
        with `key_prefix` (e.g. "text-rationale-", whose suffix changes per item) or of `kind`."""
        return [
            self.page[p]
            for p in sorted(self.page)
            if (not key_prefix or self.page[p].key.startswith(key_prefix))
            and (kind is None or self.page[p].kind == kind)
        ]

    def click(self, *, key: str | None = None, label: str | None = None) -> Run:
        """Press a button: a fragment rerun when it sits in a fragment, else a full run."""
        button = self.find(key=key, label=label)
        return self.rerun(fragment_id=button.fragment_id, triggers=[button.id])

    def component_data(self, *, key: str) -> Any:
        """The data the page gave the custom component with key `key` (JSON)."""
        return json.loads(self.find(key=key).proto.json)

    def trigger(self, *, key: str, event: str, value: Any) -> Run:
        """What a custom component's setTriggerValue(event, value) sends: a one-shot trigger
        on its events widget, and a rerun of its fragment."""
        component = self.find(key=key)
        message = BackMsg()
        state = message.rerun_script
        state.page_script_hash = self.page_script_hash
        state.query_string = self.query_string
        state.fragment_id = component.fragment_id
        state.context_info.url = self.base_url + "/"
        state.context_info.timezone = "UTC"
        for kept in self._values.values():
            state.widget_states.widgets.add().CopyFrom(kept)
        fired = state.widget_states.widgets.add()
        fired.id = f"$$STREAMLIT_INTERNAL_KEY_{component.id}__events"
        fired.json_trigger_value = json.dumps({"event": event, "value": value})
        started = time.perf_counter()
        self.send(message)
        return self.wait(fragment_id=component.fragment_id, started=started)

    def stage(self, *, key: str, value: str | bool | float | int) -> Element:
        """Set a widget's value for the next rerun (as typing does before a click)."""
        widget = self.find(key=key)
        state = WidgetState(id=widget.id)
        if isinstance(value, bool):
            state.bool_value = value
        elif isinstance(value, str):
            state.string_value = value
        elif isinstance(value, int):
            state.int_value = value
        else:
            state.double_value = value
        self._values[widget.id] = state
        return widget

    def set_value(self, *, key: str, value: str | bool | float | int) -> Run:
        """Set a widget's value and rerun (its fragment, if it sits in one)."""
        widget = self.stage(key=key, value=value)
        return self.rerun(fragment_id=widget.fragment_id)

    def texts(self) -> list[str]:
        """The text of everything on the page, in delta-path order."""
        return [self.page[p].text for p in sorted(self.page) if self.page[p].text]

    # -- other messages ------------------------------------------------------------------------

    def clear_cache(self) -> None:
        """Send `clear_cache` (Streamlit's "Clear caches"; no reply is sent)."""
        message = BackMsg()
        message.clear_cache = True
        self.send(message)

    def upload(
        self,
        data: bytes | Iterable[bytes],
        *,
        name: str = "items.jsonl",
        file_id: str = "f1",
        content_type: str = "application/octet-stream",
        cookie: str | None = None,
    ) -> int:
        """PUT one file to `/_stcore/upload_file/<session>/<file_id>` as the uploader widget
        does (multipart, Streamlit's XSRF header); the HTTP status. `cookie` overrides the
        client's session cookie ("" sends none). `data` given as chunks is
        sent with chunked encoding (no Content-Length, so the server must count)."""
        token = os.urandom(16).hex()
        boundary = "annotate" + os.urandom(8).hex()
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{name}"\r\nContent-Type: {content_type}\r\n\r\n'
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        cookies = [f"{XSRF_COOKIE}={token}"]
        session_cookie = self.cookie if cookie is None else cookie
        if session_cookie:
            cookies.append(f"{COOKIE_NAME}={session_cookie}")
        headers = {
            "content-type": f"multipart/form-data; boundary={boundary}",
            "x-xsrftoken": token,
            "cookie": "; ".join(cookies),
            "origin": self.base_url,
        }
        body: bytes | Iterator[bytes]
        if isinstance(data, bytes):
            body = head + data + tail
        else:
            body = _chain(head, data, tail)
            headers["transfer-encoding"] = "chunked"
        parts = urlsplit(self.base_url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=self.timeout)
        try:
            conn.request(
                "PUT",
                f"/_stcore/upload_file/{self.session_id}/{file_id}",
                body=body,
                headers=headers,
                encode_chunked=not isinstance(data, bytes),
            )
            reply = conn.getresponse()
            reply.read()
            return reply.status
        except (BrokenPipeError, ConnectionResetError):
            # The server answered (413/403) and closed while the body was still going out.
            return _early_status(conn)
        finally:
            conn.close()


def _chain(head: bytes, chunks: Iterable[bytes], tail: bytes) -> Iterator[bytes]:
    yield head
    yield from chunks
    yield tail


def _early_status(conn: http.client.HTTPConnection) -> int:
    try:
        reply = conn.getresponse()
        return reply.status
    except (OSError, http.client.HTTPException):
        return 0


def _element(message: ForwardMsg) -> Element | None:
    delta = message.delta
    path = tuple(message.metadata.delta_path)
    kind = delta.WhichOneof("type")
    if kind == "new_element":
        inner = delta.new_element.WhichOneof("type") or "empty"
        proto = getattr(delta.new_element, inner)
        return Element(path=path, kind=inner, proto=proto, fragment_id=delta.fragment_id)
    if kind == "add_block":
        return Element(
            path=path, kind="block", proto=delta.add_block, fragment_id=delta.fragment_id
        )
    return None
