"""What every page gets: the page contract, and who is signed in.

The page contract: a page module in `annotate.app.pages` exposes

    def render(ctx: AppContext) -> None

and does nothing at import time. `main.py` decides which pages a role sees, but hiding a page
is not authorization: every core function a page calls checks the role itself. Pages parse
input, call core functions inside `ctx.session()`, and show errors from `annotate.errors` with
`show_error` (through `ctx.guard()`), never a traceback.

A page reaches another with `ctx.go("adjudicate", item="xs-017")`, which switches to the
registered page of that name with the given query parameters.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, ParamSpec

import streamlit as st
from sqlalchemy.engine import Engine
from sqlmodel import Session

from annotate import labeling
from annotate.accounts import sessions
from annotate.app.render import inert
from annotate.errors import AnnotateError, AuthError, StorageUnavailable
from annotate.settings import Settings, get_settings
from annotate.storage import db
from annotate.storage.models import User

LOG = logging.getLogger("annotate.app")

# AppTest cannot send cookies (Streamlit 1.67 takes st.context.cookies from the browser's
# connection only), so tests put a signed token here; it is checked exactly like the cookie.
# Browsers cannot write session state, and a token is worthless without the signing key.
SESSION_TOKEN_KEY = "annotate.session_token"


@dataclass(frozen=True)
class AppContext:
    """The signed-in user and the handles a page needs."""

    settings: Settings
    engine: Engine
    user: User
    pages: Mapping[str, Any] = field(default_factory=dict)

    def session(self, *, immediate: bool = False) -> AbstractContextManager[Session]:
        """A committed-on-success session; immediate=True: a write transaction for claims,
        submits and edits (labeling.write_session: SQLite writers queue, then BEGIN IMMEDIATE)."""
        if immediate:
            return labeling.write_session(self.engine)
        return db.session_scope(self.engine)

    def guard(self) -> AbstractContextManager[None]:
        """Show an AnnotateError raised inside the block with st.error instead of a traceback."""
        return guard()

    def go(self, page: str, **query: str) -> None:
        """Switch to the registered page `page` (e.g. "adjudicate") with query parameters."""
        target = self.pages.get(page)
        if target is None:
            st.error(f"There is no `{page}` page for your role")
            return
        st.switch_page(target, query_params=query or None)


def show_error(exc: AnnotateError) -> None:
    """A domain error as the person who caused it should read it (quoted input stays text)."""
    st.error(inert(str(exc)), icon=":material/error:")


@contextmanager
def guard() -> Iterator[None]:
    """Catch AnnotateError (shown with st.error); anything else is a bug and propagates."""
    try:
        yield
    except AnnotateError as exc:
        show_error(exc)


# -- resources ---------------------------------------------------------------------------------


def _env_snapshot() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("ANNOTATE_")))


@st.cache_resource(show_spinner=False)
def _settings_for(env: tuple[tuple[str, str], ...]) -> Settings:
    return get_settings()


def load_settings() -> Settings:
    """The settings from ANNOTATE_* variables (the server exports its own before starting)."""
    return _settings_for(_env_snapshot())


def get_engine(settings: Settings) -> Engine:
    """One engine per database URL for the whole server process, shared with the sign-in
    routes. Not an st.cache_resource: a `clear_cache` message would drop it undisposed and
    every rerun after would open a new pool (connections piled up until PostgreSQL refused)."""
    return db.shared_engine(
        settings.database_url,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        pool_size=settings.pool_size,
    )


@st.cache_resource(show_spinner=False)
def _key_for(url: str, busy_timeout_ms: int, pool_size: int, key_file: str) -> str:
    return sessions.signing_key(
        engine=db.shared_engine(url, busy_timeout_ms=busy_timeout_ms, pool_size=pool_size),
        settings=Settings(database_url=url, secret_key="", secret_key_file=key_file),
    )


def signing_key(settings: Settings) -> str:
    """The session-cookie signing key (Settings.secret_key, else the key file's)."""
    if settings.secret_key:
        return sessions.signing_key(engine=get_engine(settings), settings=settings)
    return _key_for(
        settings.database_url,
        settings.sqlite_busy_timeout_ms,
        settings.pool_size,
        settings.secret_key_file,
    )


# -- who is signed in --------------------------------------------------------------------------


def oidc_configured() -> bool:
    """Whether `[auth]` is configured in Streamlit's secrets (then st.login is offered)."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False


def _session_token() -> str | None:
    cookie = st.context.cookies.get(sessions.COOKIE_NAME)
    # Under AppTest st.context.cookies comes from a mocked runtime and yields mock objects.
    token = cookie if isinstance(cookie, str) else st.session_state.get(SESSION_TOKEN_KEY)
    return str(token) if token else None


def current_user(settings: Settings, engine: Engine) -> tuple[User | None, str | None]:
    """The signed-in user, or None and why not (None, None: nobody tried to sign in).

    Sources, in order: the session cookie set by the sign-in page; a token in session state
    (tests); an OIDC identity from `st.login` when OIDC is configured.
    """
    token = _session_token()
    try:
        with db.session_scope(engine) as s:
            if token:
                user = sessions.read_token(
                    session=s,
                    key=signing_key(settings),
                    token=str(token),
                    max_age_s=settings.session_hours * 3600,
                )
                return user, None
            if oidc_configured() and st.user.is_logged_in:
                return sessions.user_for_identity(session=s, identity=st.user.to_dict()), None
    except AuthError as exc:
        return None, str(exc)
    return None, None


# -- fragments ---------------------------------------------------------------------------------

P = ParamSpec("P")
SESSION_NOTICE_KEY = "annotate.session_notice"
SESSION_CHANGED = (
    "Your session changed (signed out, new password, deactivated, or a new role): the page "
    "was reloaded and your last action was not carried out."
)


def _fragment_run() -> bool:
    """Whether this script run reruns fragments only (main() and its sign-in check are
    skipped). Unknown (no run context, another Streamlit): True, so the check runs."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    run = get_script_run_ctx()
    return run is None or bool(getattr(run, "fragment_ids_this_run", True))


def fragment_run() -> bool:
    """Whether this script run reruns fragments only (not the whole page)."""
    return _fragment_run()


def still_signed_in(ctx: AppContext) -> bool:
    """Whether the cookie still signs in `ctx.user`, as the same user with the same role
    (StorageUnavailable when the database cannot say)."""
    user, _ = current_user(ctx.settings, ctx.engine)
    return user is not None and user.id == ctx.user.id and user.role == ctx.user.role


def cookie_still_matches(ctx: AppContext) -> bool:
    """Whether the session cookie, checked without the database (signature, age), was issued
    to `ctx.user` as loaded (same id, session generation and password). What the database
    says of the user now is left to the caller's own read (`fragment`'s `deferred`)."""
    token = _session_token()
    if token is None:
        return False
    return sessions.token_matches(
        key=signing_key(ctx.settings),
        token=token,
        max_age_s=ctx.settings.session_hours * 3600,
        user=ctx.user,
    )


def check_session(ctx: AppContext) -> None:
    """A fragment run's sign-in check: when the cookie no longer signs in `ctx.user` as the
    same user with the same role, rerun the whole app (the sign-in gate or the new role's
    pages) with a notice, so that nothing of this run is carried out."""
    try:
        changed = not still_signed_in(ctx)
    except StorageUnavailable:
        # The check cannot be made, and neither can any write of the fragment: it runs
        # and meets the same outage (the label form then says it cannot save, and keeps
        # the choices for the retry).
        changed = False
    if changed:
        LOG.warning("fragment run refused for user %s: session changed", ctx.user.name)
        st.session_state[SESSION_NOTICE_KEY] = SESSION_CHANGED
        st.rerun(scope="app")


def fragment(
    func: Callable[P, None] | None = None,
    *,
    deferred: Callable[[AppContext], bool] | None = None,
    run_every: float | None = None,
) -> Any:
    """`st.fragment`, checking the session on every fragment run like a full run does
    (`run_every`: seconds between the browser's reruns of it, as `st.fragment` takes).

    A fragment rerun runs only the fragment, never main(), so without this a tab left open
    after sign-out, a password change, deactivation or demotion could still save a label or
    read a lead's table. The wrapped function's first argument is the page's AppContext. A
    changed session reruns the whole app, which shows the sign-in gate or the new role's pages.

    `deferred(ctx)`, when given, is asked first on each fragment run: True means this run's
    first database work is a write transaction that reads the user back itself (as every
    labeling write does, `accounts.auth.current_actor`), so the check is left to the
    function, which must call `check_session` whenever that transaction did not succeed.
    """
    if func is None:
        return functools.partial(fragment, deferred=deferred, run_every=run_every)

    @functools.wraps(func)
    def checked(*args: P.args, **kwargs: P.kwargs) -> None:
        ctx = args[0]
        assert isinstance(ctx, AppContext), "a checked fragment takes the AppContext first"
        if _fragment_run() and not (deferred is not None and deferred(ctx)):
            check_session(ctx)
        func(*args, **kwargs)

    return st.fragment(checked, run_every=run_every)
