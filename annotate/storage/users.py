"""Users: add, find, list, set password, role and active flag."""

from __future__ import annotations

from sqlmodel import Session, col, select

from annotate.accounts.auth import check_role, hash_password, require_role
from annotate.errors import (
    Conflict,
    NotFound,
    ValidationProblem,
)
from annotate.storage.models import (
    User,
)


def add_user(
    *,
    session: Session,
    actor: User,
    name: str,
    role: str = "annotator",
    password: str | None = None,
    is_machine: bool = False,
) -> User:
    """Create a user; only admins may. Passwords are stored as argon2 hashes only."""
    require_role(actor, "admin", "add users", session=session)
    name = name.strip()
    if not name or len(name) > 200 or any(c in name for c in "\x00\r\n\t"):
        raise ValidationProblem(f"User name `{name}` must be 1-200 printable characters")
    check_role(role)
    if session.exec(select(User).where(User.name == name)).first() is not None:
        raise Conflict(f"User `{name}` already exists")
    user = User(
        name=name,
        role=role,
        password_hash=hash_password(password) if password is not None else None,
        is_machine=is_machine,
    )
    session.add(user)
    session.flush()
    return user


def set_password(*, session: Session, actor: User, name: str, password: str) -> User:
    """Set `name`'s password: admins for anyone, an active user for herself."""
    user = get_user(session=session, name=name)
    if actor.id != user.id:
        require_role(actor, "admin", "change another user's password", session=session)
    else:
        # A deactivated account or an imported judge cannot sign in; no password for them.
        require_role(actor, "annotator", "change their password", session=session)
    user.password_hash = hash_password(password)
    _new_generation(user)
    session.add(user)
    session.flush()
    return user


def get_user(*, session: Session, name: str) -> User:
    """The user called `name`; NotFound otherwise."""
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None:
        raise NotFound(f"No user `{name}`")
    return user


def list_users(*, session: Session, actor: User) -> list[User]:
    """Every user, by name; admins only."""
    require_role(actor, "admin", "list users", session=session)
    return list(session.exec(select(User).order_by(col(User.name))).all())


def set_role(*, session: Session, actor: User, name: str, role: str) -> User:
    """Give `name` the role `role`; admins only, and not to themselves (no self-demotion)."""
    require_role(actor, "admin", "change roles", session=session)
    check_role(role)
    user = get_user(session=session, name=name)
    if user.id == actor.id and role != user.role:
        raise Conflict("You cannot change your own role; ask another admin")
    if user.is_machine:
        raise Conflict(f"`{name}` is an automatic judge and has no role to change")
    user.role = role  # loaded copies of the old role are refused by require_role
    session.add(user)
    session.flush()
    return user


def set_active(*, session: Session, actor: User, name: str, active: bool) -> User:
    """Allow or stop `name` signing in (their labels stay); admins only, never themselves."""
    require_role(actor, "admin", "activate or deactivate users", session=session)
    user = get_user(session=session, name=name)
    if user.id == actor.id and not active:
        raise Conflict("You cannot deactivate yourself; ask another admin")
    if active != user.active:
        user.active = active
        _new_generation(user)
    session.add(user)
    session.flush()
    return user


def _new_generation(user: User) -> None:
    # Sessions (cookies, loaded User objects) of the old generation are refused from now on.
    user.session_generation += 1
