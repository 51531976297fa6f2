"""`annotate users add|passwd|list|unlock`."""

from __future__ import annotations

from typing import Annotated

import typer

from annotate.accounts.auth import system_actor
from annotate.cli.common import DbOpt, JsonOpt, _read_password, _session, _table, handle_errors, out
from annotate.storage.releases import dumps
from annotate.storage.users import add_user, get_user, list_users, set_password


@handle_errors
def users_add(
    name: Annotated[str, typer.Argument(help="User name (sign-in name).")],
    role: Annotated[str, typer.Option(help="annotator, lead or admin.")] = "annotator",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    dbu: DbOpt = None,
) -> None:
    """Add a user; the password comes from a hidden prompt or stdin, never an argument."""
    password = _read_password(password_stdin)
    with _session(dbu) as (_s, session):
        user = add_user(
            session=session, actor=system_actor(), name=name, role=role, password=password
        )
    out.print(f"user {user.name} added ({user.role})", markup=False)


@handle_errors
def users_passwd(
    name: Annotated[str, typer.Argument(help="User name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    dbu: DbOpt = None,
) -> None:
    """Set a user's password (hidden prompt or stdin)."""
    password = _read_password(password_stdin, "New password")
    with _session(dbu) as (_s, session):
        set_password(session=session, actor=system_actor(), name=name, password=password)
    out.print(f"password of {name} changed", markup=False)


@handle_errors
def users_list(as_json: JsonOpt = False, dbu: DbOpt = None) -> None:
    """List users with their role; judges are marked as machines."""
    with _session(dbu) as (_s, session):
        rows = [
            {
                "name": u.name,
                "role": u.role,
                "machine": u.is_machine,
                "can_sign_in": bool(u.password_hash) and u.active,
            }
            for u in list_users(session=session, actor=system_actor())
        ]
    if as_json:
        out.print(dumps(rows), markup=False)
        return
    _table(rows, empty="no users yet: annotate users add NAME --role annotator")


@handle_errors
def users_unlock(
    name: Annotated[str, typer.Argument(help="User name.")],
    dbu: DbOpt = None,
) -> None:
    """Forget a user name's failed sign-ins, so its owner may sign in without waiting."""
    from annotate.accounts import throttle

    with _session(dbu, immediate=True) as (_s, session):
        get_user(session=session, name=name)
        had = throttle.unlock(session=session, actor=system_actor(), name=name)
    out.print(
        f"failed sign-ins of {name} cleared" if had else f"{name} had no failed sign-ins",
        markup=False,
    )
