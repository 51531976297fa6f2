"""Sign-in, the signed session cookie and sign-out.

The cookie holds `{user id, password fingerprint, session generation, issued-at}` signed with
HMAC (itsdangerous) under the key from `annotate.accounts.keys`. It stops working when it is
older than `Settings.session_hours`, when the user's password changes (the fingerprint no
longer matches), and when the user's `session_generation` moves on: a password change,
deactivation or signing out bumps it, so every cookie issued before dies with it. A role change
does not end the session: the cookie then signs in the user with the new role, while any User
object loaded before the change is refused by `require_role`.
Sign-in is slowed after failures (`annotate.accounts.throttle`), and at most
`Settings.password_checks_at_once` password checks run at the same time (`accounts.auth`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from annotate.accounts import keys, throttle
from annotate.accounts.auth import configure_passwords, verify_password
from annotate.errors import AuthError, ValidationProblem
from annotate.settings import Settings
from annotate.storage import db
from annotate.storage.models import LoginAttempt, User, utcnow

COOKIE_NAME = "annotate_session"
SIGNING_KEY_NAME = keys.SIGNING_KEY_NAME
_SALT = "annotate.session.v1"
ATTEMPTS_KEPT = throttle.FORGET_AFTER
WRONG_CREDENTIALS = "Unknown user name or wrong password"


def signing_key(*, engine: Engine, settings: Settings) -> str:
    """The cookie signing key (see `annotate.accounts.keys`)."""
    return keys.signing_key(engine=engine, settings=settings)


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
    generation: int
    issued_at: float


def issue_token(*, key: str, user: User, now: float | None = None) -> str:
    """A signed session token for `user` (the cookie value); `now` in seconds since the epoch."""
    if user.id is None:
        raise AuthError(f"User `{user.name}` is not stored yet")
    issued = time.time() if now is None else now
    return str(
        _serializer(key).dumps(
            {
                "u": user.id,
                "p": _password_fingerprint(user),
                "g": user.session_generation,
                "t": issued,
            }
        )
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
        and isinstance(data.get("g", 0), int)
        and isinstance(data.get("t"), int | float)
    ):
        raise AuthError("Your sign-in is not valid here; sign in again")
    current = time.time() if now is None else now
    if current - float(data["t"]) > max_age_s:
        raise AuthError("Your session has expired; sign in again")
    return TokenClaims(
        user_id=data["u"],
        password_fingerprint=data["p"],
        # Cookies issued before generations existed count as generation 0.
        generation=data.get("g", 0),
        issued_at=data["t"],
    )


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
    user = session.get(User, claims.user_id, populate_existing=True)  # the row as stored now
    if user is None or not user.active or user.is_machine:
        raise AuthError("This account can no longer sign in; ask an admin")
    if claims.password_fingerprint != _password_fingerprint(user):
        raise AuthError("Your password was changed; sign in again")
    if claims.generation != user.session_generation:
        # Password changes and deactivation were reported above; what is left is a sign-out.
        raise AuthError("You signed out; sign in again")
    return user


def token_matches(
    *, key: str, token: str, max_age_s: float, user: User, now: float | None = None
) -> bool:
    """Whether `token` is valid (signature, age) and was issued to `user` as loaded: same id,
    session generation and password. No database: whether `user` is still stored so is the
    caller's to check (`accounts.auth.current_actor` compares the generation, which moves on
    with every password change, deactivation and sign-out)."""
    try:
        claims = parse_token(key=key, token=token, max_age_s=max_age_s, now=now)
    except AuthError:
        return False
    return (
        user.id is not None
        and claims.user_id == user.id
        and claims.generation == user.session_generation
        and claims.password_fingerprint == _password_fingerprint(user)
    )


def sign_out(*, session: Session, user: User) -> None:
    """End every session `user` has open: cookies and loaded copies from before stop working."""
    stored = session.get(User, user.id)
    if stored is None:
        return
    stored.session_generation += 1
    session.add(stored)
    session.flush()


# -- sign-in -----------------------------------------------------------------------------------


def sign_in(
    *,
    engine: Engine,
    settings: Settings,
    name: str,
    password: str,
    address: str = "",
    now: datetime | None = None,
) -> User:
    """The user `name` if `password` is theirs; AuthError otherwise (SignInDelayed when slowed).

    `address` is the client's address, throttled alongside the name. The attempt is counted
    before the password is checked (one write transaction), then settled; this function owns
    its transactions because a failed attempt must be committed although sign-in fails. The
    message never says whether the name exists.
    """
    if "\x00" in name or "\x00" in password:
        raise ValidationProblem("User names and passwords cannot contain NUL characters")
    name = name.strip()
    if not name or len(name) > 200 or not password:
        raise AuthError("Give a user name and a password")
    now = now or utcnow()
    configure_passwords(settings)
    with db.session_scope(engine, immediate=True) as s:
        reservation = throttle.reserve(
            s, name=name, address=address[:200], now=now, settings=settings
        )
    with db.session_scope(engine) as s:
        user = s.exec(select(User).where(User.name == name)).first()
    # The hash check is slow on purpose (and waits its turn), so it runs outside any
    # transaction; the attempt was already counted as a failure above.
    ok = False
    try:
        ok = verify_password(password, user.password_hash if user is not None else None)
        ok = ok and user is not None and user.active and not user.is_machine
    finally:
        with db.session_scope(engine, immediate=True) as s:
            throttle.settle(s, reservation, success=ok, now=now)
            s.add(LoginAttempt(user_name=name, success=ok, at=now))
            # Attempts older than a day are only history; keep the table small.
            s.execute(delete(LoginAttempt).where(col(LoginAttempt.at) < now - ATTEMPTS_KEPT))
    if not ok or user is None:
        raise AuthError(WRONG_CREDENTIALS)
    return user


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
