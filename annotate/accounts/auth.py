"""Passwords, roles and permission checks. Every core function that needs a role calls these."""

from __future__ import annotations

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from annotate.errors import PermissionDenied, ValidationProblem
from annotate.storage.models import ROLES, User

ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
MIN_PASSWORD_LENGTH = 8

_hasher: PasswordHash | None = None


def _password_hash() -> PasswordHash:
    global _hasher
    if _hasher is None:
        _hasher = PasswordHash((Argon2Hasher(),))
    return _hasher


def hash_password(password: str) -> str:
    """Argon2id hash of `password`; raises ValidationProblem if it is too short."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationProblem(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters")
    return _password_hash().hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Whether `password` matches; a user without a hash (imported judge) never signs in."""
    if not password_hash:
        # Spend the same time as a real check so a missing hash is not detectable by timing.
        _password_hash().verify(password, _dummy_hash())
        return False
    return _password_hash().verify(password, password_hash)


_DUMMY: str | None = None


def _dummy_hash() -> str:
    global _DUMMY
    if _DUMMY is None:
        _DUMMY = _password_hash().hash("not-a-real-password")
    return _DUMMY


def check_role(role: str) -> str:
    """`role` if it is a known role; ValidationProblem otherwise."""
    if role not in ROLE_RANK:
        raise ValidationProblem(f"Role `{role}` is not one of {', '.join(ROLES)}")
    return role


def has_role(user: User | None, minimum: str) -> bool:
    """Whether `user` is active and holds `minimum` or a higher role (admin > lead > annotator)."""
    return (
        user is not None
        and user.active
        and not user.is_machine
        and ROLE_RANK.get(user.role, -1) >= ROLE_RANK[minimum]
    )


def require_role(user: User | None, minimum: str, action: str) -> User:
    """Return `user` if allowed to do `action`; raise PermissionDenied naming both otherwise."""
    if not has_role(user, minimum):
        who = f"`{user.name}` ({user.role})" if user is not None else "An anonymous user"
        raise PermissionDenied(f"{who} may not {action}: it needs the {minimum} role")
    assert user is not None
    return user


def system_actor() -> User:
    """The actor for command-line use: whoever can run the CLI on the database is an admin."""
    return User(id=None, name="cli", role="admin")
