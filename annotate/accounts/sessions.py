"""Sign-in, the signed session cookie, sign-out, and the key that signs the cookie.

The cookie holds `{user id, password fingerprint, issued-at}` signed with HMAC (itsdangerous).
It stops working when it is older than `Settings.session_hours`, when the user's password
changes (the fingerprint no longer matches), when the user is deactivated, and when the user
signs out (the sign-out time is kept per user in the `app_secret` key/value table, so a copied
cookie dies with the session it came from). Failed sign-ins are counted per user name in the
`login_attempt` table; past `Settings.login_max_failures` within `login_window_minutes` the
name is locked until the oldest counted failure leaves the window.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from annotate.accounts.auth import verify_password
from annotate.errors import AuthError
from annotate.settings import Settings
from annotate.storage import db
from annotate.storage.models import AppSecret, LoginAttempt, User, utcnow

COOKIE_NAME = "annotate_session"
SIGNING_KEY_NAME = "session_signing_key"
_SALT = "annotate.session.v1"
_SIGNED_OUT = "signed_out:{}"
ATTEMPTS_KEPT = timedelta(days=1)
WRONG_CREDENTIALS = "Unknown user name or wrong password"


# -- the signing key ---------------------------------------------------------------------------


def signing_key(*, engine: Engine, settings: Settings) -> str:
    """`settings.secret_key`, else the key generated on first use and kept in the database.

    Every replica and restart then signs with the same key. Two processes generating it at
    once both end up with the one that was stored first.
    """
    if settings.secret_key:
        return settings.secret_key
    with db.session_scope(engine) as s:
        stored = s.get(AppSecret, SIGNING_KEY_NAME)
        if stored is not None:
            return stored.value
    try:
        with db.session_scope(engine, immediate=True) as s:
            stored = s.get(AppSecret, SIGNING_KEY_NAME)
            if stored is not None:
                return stored.value
            value = secrets.token_urlsafe(48)
            s.add(AppSecret(key=SIGNING_KEY_NAME, value=value))
            return value
    except IntegrityError:
        # PostgreSQL: another process inserted the key between our read and our write.
        with db.session_scope(engine) as s:
            stored = s.get(AppSecret, SIGNING_KEY_NAME)
            assert stored is not None
            return stored.value


# -- tokens ------------------------------------------------------------------------------------


def _serializer(key: str) -> URLSafeSerializer:
    return URLSafeSerializer(key, salt=_SALT)


def _password_fingerprint(user: User) -> str:
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TokenClaims:
    """What a session cookie says, once its signature checked out."""

    user_id: int
    password_fingerprint: str
    issued_at: float


def issue_token(*, key: str, user: User, now: float | None = None) -> str:
    """A signed session token for `user` (the cookie value); `now` in seconds since the epoch."""
    if user.id is None:
        raise AuthError(f"User `{user.name}` is not stored yet")
    issued = time.time() if now is None else now
    return str(
        _serializer(key).dumps({"u": user.id, "p": _password_fingerprint(user), "t": issued})
    )


def parse_token(*, key: str, token: str, max_age_s: float, now: float | None = None) -> TokenClaims:
    """Check `token`'s signature and age (no database); AuthError when either fails."""
    try:
        data: Any = _serializer(key).loads(token)
    except BadSignature:
        raise AuthError("Your sign-in is not valid here; sign in again") from None
    if not (
        isinstance(data, dict)
        and isinstance(data.get("u"), int)
        and isinstance(data.get("p"), str)
        and isinstance(data.get("t"), int | float)
    ):
        raise AuthError("Your sign-in is not valid here; sign in again")
    current = time.time() if now is None else now
    if current - float(data["t"]) > max_age_s:
        raise AuthError("Your session has expired; sign in again")
    return TokenClaims(user_id=data["u"], password_fingerprint=data["p"], issued_at=data["t"])


def read_token(
    *,
    session: Session,
    key: str,
    token: str,
    max_age_s: float,
    now: float | None = None,
) -> User:
    """The user a session token signs in, or AuthError saying why it no longer does."""
    claims = parse_token(key=key, token=token, max_age_s=max_age_s, now=now)
    user = session.get(User, claims.user_id)
    if user is None or not user.active or user.is_machine:
        raise AuthError("This account can no longer sign in; ask an admin")
    if claims.password_fingerprint != _password_fingerprint(user):
        raise AuthError("Your password was changed; sign in again")
    signed_out = session.get(AppSecret, _SIGNED_OUT.format(user.id))
    if signed_out is not None and claims.issued_at <= float(signed_out.value):
        raise AuthError("You signed out; sign in again")
    return user


def sign_out(*, session: Session, user: User, now: float | None = None) -> None:
    """End every session `user` has open: tokens issued until now stop working."""
    stamp = repr(time.time() if now is None else now)
    key = _SIGNED_OUT.format(user.id)
    existing = session.get(AppSecret, key)
    if existing is None:
        session.add(AppSecret(key=key, value=stamp))
    else:
        existing.value = stamp
        session.add(existing)
    session.flush()


# -- sign-in -----------------------------------------------------------------------------------


def sign_in(
    *,
    engine: Engine,
    settings: Settings,
    name: str,
    password: str,
    now: datetime | None = None,
) -> User:
    """The user `name` if `password` is theirs; AuthError otherwise (and when rate-limited).

    Every attempt is recorded; the failed one must be committed although sign-in fails, so
    this function owns its transaction instead of taking a session. The message never says
    whether the name exists.
    """
    name = name.strip()
    if not name or len(name) > 200 or not password:
        raise AuthError("Give a user name and a password")
    now = now or utcnow()
    window = timedelta(minutes=settings.login_window_minutes)
    with db.session_scope(engine) as s:
        wait = _lockout(s, name, now, window, settings.login_max_failures)
    if wait is not None:
        minutes = max(1, math.ceil(wait.total_seconds() / 60))
        raise AuthError(
            f"Too many failed sign-ins for `{name}`; try again in {minutes} minute"
            + ("s" if minutes > 1 else "")
        )
    with db.session_scope(engine) as s:
        user = s.exec(select(User).where(User.name == name)).first()
    # The hash check is slow on purpose, so it runs outside the write transaction; that one
    # is IMMEDIATE because on SQLite a read-then-write transaction that meets another writer
    # fails at once with "database is locked" (concurrent sign-ins did, under load).
    ok = verify_password(password, user.password_hash if user is not None else None)
    ok = ok and user is not None and user.active and not user.is_machine
    with db.session_scope(engine, immediate=True) as s:
        s.add(LoginAttempt(user_name=name, success=ok, at=now))
        # Attempts older than a day can no longer count; keep the table small.
        s.execute(delete(LoginAttempt).where(col(LoginAttempt.at) < now - ATTEMPTS_KEPT))
    if not ok or user is None:
        raise AuthError(WRONG_CREDENTIALS)
    return user


def _lockout(
    session: Session, name: str, now: datetime, window: timedelta, max_failures: int
) -> timedelta | None:
    """How long `name` stays locked, or None when it may try now."""
    since = now - window
    last_success = session.exec(
        select(func.max(LoginAttempt.at)).where(
            LoginAttempt.user_name == name,
            col(LoginAttempt.success).is_(True),
            col(LoginAttempt.at) > since,
        )
    ).one()
    start = max(since, last_success) if last_success is not None else since
    failures = session.exec(
        select(LoginAttempt.at)
        .where(
            LoginAttempt.user_name == name,
            col(LoginAttempt.success).is_(False),
            col(LoginAttempt.at) > start,
        )
        .order_by(col(LoginAttempt.at).desc())
        .limit(max_failures)
    ).all()
    if len(failures) < max_failures:
        return None
    # Unlocked once the oldest of the last `max_failures` failures leaves the window.
    return failures[-1] + window - now


def user_for_identity(*, session: Session, identity: Mapping[str, Any]) -> User:
    """The user an OIDC identity (`st.user`) signs in: the one named by its email, else `sub`.

    Users are not created on the fly: an admin adds them (name = their email) first.
    """
    for claim in ("email", "preferred_username", "sub"):
        value = identity.get(claim)
        if isinstance(value, str) and value.strip():
            user = session.exec(select(User).where(User.name == value.strip())).first()
            if user is not None:
                if not user.active or user.is_machine:
                    raise AuthError(f"Account `{user.name}` cannot sign in; ask an admin")
                return user
    who = identity.get("email") or identity.get("sub") or "this identity"
    raise AuthError(f"No annotate user for `{who}`: ask an admin to add one with that name")
