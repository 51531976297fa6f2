"""Passwords, roles and permission checks. Every core function that needs a role calls these.

`require_role` is the one gate: it reloads the acting user from the database (through the
session it is given, else the one the user object belongs to, else the engine the object was
loaded from) and refuses when the stored role, active flag or session generation differ from
the object's, so a user demoted, deactivated, signed out or given a new password since the
object was loaded can do nothing more with it.

Password hashes are argon2id with the parameters from Settings (`argon2_*`); at most
`password_checks_at_once` hashes run at the same time per process, since each one takes
`argon2_memory_kib` of memory.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import bindparam, event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select

from annotate.errors import (
    PermissionDenied,
    SignInDelayed,
    StaleSession,
    ValidationProblem,
)
from annotate.settings import Settings, get_settings
from annotate.storage.models import ROLES, User

ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
MIN_PASSWORD_LENGTH = 8
_ENGINE_INFO = "annotate.engine"

# -- password hashing ----------------------------------------------------------------------------


class _Hashing:
    """The configured hasher, its dummy hash, and the line in front of it."""

    def __init__(self, memory_kib: int, time_cost: int, parallelism: int, at_once: int) -> None:
        self.params = (memory_kib, time_cost, parallelism)
        self.at_once = at_once
        self.wait_s = 10.0
        self.hasher = PasswordHash(
            (Argon2Hasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=parallelism),)
        )
        self.slots = threading.BoundedSemaphore(at_once)
        self._dummy: str | None = None

    def run(self, fn: Any, *args: Any) -> Any:
        if not self.slots.acquire(timeout=self.wait_s):
            # Busy, not wrong: a 429 with Retry-After (a 401 read like a wrong password).
            raise SignInDelayed("Too many sign-ins at once; try again in a moment", retry_after=2)
        try:
            return fn(*args)
        finally:
            self.slots.release()

    def dummy(self) -> str:
        if self._dummy is None:
            self._dummy = self.run(self.hasher.hash, "not-a-real-password")
        return self._dummy


_hashing: _Hashing | None = None
_lock = threading.Lock()


def configure_passwords(settings: Settings) -> None:
    """Use `settings`' argon2 parameters and verification limit from now on in this process."""
    global _hashing
    params = (settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism)
    with _lock:
        current = _hashing
        if (
            current is None
            or current.params != params
            or (current.at_once != settings.password_checks_at_once)
        ):
            current = _Hashing(*params, settings.password_checks_at_once)
            _hashing = current
        current.wait_s = settings.password_check_wait_seconds


def _current() -> _Hashing:
    if _hashing is None:
        configure_passwords(get_settings())
    assert _hashing is not None
    return _hashing


def hash_password(password: str) -> str:
    """Argon2id hash of `password`; raises ValidationProblem if it is too short."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationProblem(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters")
    h = _current()
    return str(h.run(h.hasher.hash, password))


def verify_password(password: str, password_hash: str | None) -> bool:
    """Whether `password` matches; a user without a hash (imported judge) never signs in.

    Waits for a free slot (AuthError after `password_check_wait_seconds`). A hash made with
    other argon2 parameters verifies with its own (they are stored in the hash).
    """
    h = _current()
    if not password_hash:
        # Spend the same time as a real check so a missing hash is not detectable by timing.
        h.run(h.hasher.verify, password, h.dummy())
        return False
    return bool(h.run(h.hasher.verify, password, password_hash))


# -- roles ---------------------------------------------------------------------------------------


def check_role(role: str) -> str:
    """`role` if it is a known role; ValidationProblem otherwise."""
    if role not in ROLE_RANK:
        raise ValidationProblem(f"Role `{role}` is not one of {', '.join(ROLES)}")
    return role


def has_role(user: User | None, minimum: str) -> bool:
    """Whether `user` (as held in memory) is active and holds `minimum` or a higher role."""
    return (
        user is not None
        and user.active
        and not user.is_machine
        and ROLE_RANK.get(user.role, -1) >= ROLE_RANK[minimum]
    )


def require_role(
    user: User | None, minimum: str, action: str, *, session: Session | None = None
) -> User:
    """Return `user` if allowed to do `action`; raise PermissionDenied naming both otherwise.

    A stored user is first reloaded (see the module docstring); StaleSession when they
    changed since the object was loaded.
    """
    if user is not None:
        current_actor(user, session=session)
    if not has_role(user, minimum):
        who = f"`{user.name}` ({user.role})" if user is not None else "An anonymous user"
        raise PermissionDenied(f"{who} may not {action}: it needs the {minimum} role")
    assert user is not None
    return user


@functools.cache
def _stored_state() -> Any:
    # Built once: every labeling write and page check reads the acting user back with it.
    return select(User.role, User.active, User.is_machine, User.session_generation).where(
        User.id == bindparam("user_id")
    )


def current_actor(user: User, *, session: Session | None = None) -> User:
    """`user` if the database still holds them as the object says; StaleSession otherwise.

    The command-line actor (`system_actor`, never stored) is taken as it is.
    """
    if user.id is None:
        return user
    state = sa_inspect(user)
    own = session or state.session
    query, params = _stored_state(), {"user_id": user.id}
    if own is not None:
        row = own.execute(query, params).first()
    else:
        engine: Engine | None = state.info.get(_ENGINE_INFO)
        if engine is None:
            raise PermissionDenied(
                f"Cannot check who `{user.name}` is: the user was not loaded from a database"
            )
        with Session(engine) as fresh:
            row = fresh.execute(query, params).first()
    if row is None:
        raise StaleSession(f"Account `{user.name}` no longer exists")
    if tuple(row) != (user.role, user.active, user.is_machine, user.session_generation):
        raise StaleSession(
            f"Account `{user.name}` changed since this session began (role, password, "
            "deactivation or sign-out); sign in again"
        )
    return user


def system_actor() -> User:
    """The actor for command-line use: whoever can run the CLI on the database is an admin."""
    return User(id=None, name="cli", role="admin")


# Remember which engine each stored User came from, so `current_actor` can reload one that
# has left its session (the app keeps the signed-in user across sessions).


def _remember(user: User, session: OrmSession | None) -> None:
    if session is not None:
        bind = session.get_bind()
        if isinstance(bind, Engine):
            sa_inspect(user).info[_ENGINE_INFO] = bind
        else:
            sa_inspect(user).info[_ENGINE_INFO] = bind.engine


@event.listens_for(User, "load")
def _on_load(user: User, context: Any) -> None:
    _remember(user, context.session)


@event.listens_for(User, "refresh")
def _on_refresh(user: User, context: Any, _attrs: Any) -> None:
    _remember(user, context.session)


@event.listens_for(OrmSession, "pending_to_persistent")
def _on_insert(session: OrmSession, instance: object) -> None:
    if isinstance(instance, User):
        _remember(instance, session)


@event.listens_for(OrmSession, "detached_to_persistent")
def _on_attach(session: OrmSession, instance: object) -> None:
    if isinstance(instance, User):
        _remember(instance, session)
