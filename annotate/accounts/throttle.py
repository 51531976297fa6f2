"""Growing delays after failed sign-ins, per user name and per client address.

Schedule (the defaults; every number is a setting): a user name may fail
`login_free_failures` (3) times with no wait; after that, each attempt must wait
`login_delay_seconds` (1 s) after the previous failure, doubling with every further failure
(1, 2, 4, 8 ... s) up to `login_max_delay_seconds` (15 min). A client address gets
`login_free_failures_per_address` (20) free failures across all names, then the same doubling.
Failures are forgotten once the last one is `login_window_minutes` (15) old; a successful
sign-in clears the name's count and takes its own attempt off the address's. Nobody is ever
locked out for good: the owner of an account can always try again after the wait, and an admin
can clear a name's count with `annotate users unlock NAME`.

An attempt is reserved (counted as a failure) in one write transaction before the password is
checked, with the rows locked (`BEGIN IMMEDIATE` on SQLite, `SELECT ... FOR UPDATE` on
PostgreSQL), so parallel requests cannot all slip in before the first failure is counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from annotate.accounts.auth import require_role
from annotate.errors import SignInDelayed
from annotate.settings import Settings
from annotate.storage.models import LoginThrottle, User

FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Reservation:
    """The throttle keys an attempt was counted under."""

    user_key: str
    address_key: str | None


def user_key(name: str) -> str:
    """The throttle key of a user name."""
    return f"user:{name}"


def address_key(address: str) -> str:
    """The throttle key of a client address."""
    return f"addr:{address}"


def delay_after(failures: int, free: int, settings: Settings) -> float:
    """Seconds the next attempt waits after `failures` recent failures (0 while free)."""
    if failures < free:
        return 0.0
    steps = failures - free
    if steps > 60:
        return settings.login_max_delay_seconds
    return min(settings.login_delay_seconds * 2**steps, settings.login_max_delay_seconds)


def reserve(
    session: Session, *, name: str, address: str, now: datetime, settings: Settings
) -> Reservation:
    """Count one attempt for `name` and `address`, or SignInDelayed if either must wait.

    `session` must be a write transaction (IMMEDIATE on SQLite); nothing is counted when
    the attempt is refused.
    """
    wanted = {user_key(name): settings.login_free_failures}
    if address:
        wanted[address_key(address)] = settings.login_free_failures_per_address
    rows = _locked_rows(session, sorted(wanted), now)
    window = timedelta(minutes=settings.login_window_minutes)
    waits: list[float] = []
    for row in rows:
        if now - row.last_failure_at > window:
            row.failures = 0
        delay = delay_after(row.failures, wanted[row.key], settings)
        # `now` may trail a failure that a parallel request stamped while this one waited
        # for the lock: never ask for more than the delay itself.
        waits.append(min((row.last_failure_at - now).total_seconds() + delay, delay))
    wait = max(waits)
    if wait > 0:
        seconds = math.ceil(wait)
        raise SignInDelayed(
            f"Too many failed sign-ins for `{name}` or from your address; try again in "
            + (f"{seconds} seconds" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"),
            retry_after=seconds,
        )
    for row in rows:
        row.failures += 1
        row.last_failure_at = max(row.last_failure_at, now)
        session.add(row)
    session.flush()
    return Reservation(
        user_key=user_key(name), address_key=address_key(address) if address else None
    )


def settle(session: Session, reservation: Reservation, *, success: bool, now: datetime) -> None:
    """After the check: a success clears the name's count and returns the address's attempt."""
    if success:
        session.execute(delete(LoginThrottle).where(col(LoginThrottle.key) == reservation.user_key))
        if reservation.address_key is not None:
            row = session.get(LoginThrottle, reservation.address_key, with_for_update=True)
            if row is not None and row.failures > 0:
                row.failures -= 1
                session.add(row)
    session.execute(
        delete(LoginThrottle).where(col(LoginThrottle.last_failure_at) < now - FORGET_AFTER)
    )


def unlock(*, session: Session, actor: User, name: str) -> int:
    """Forget `name`'s failed sign-ins (admins only); how many records were removed (0 or 1)."""
    require_role(actor, "admin", "unlock sign-ins", session=session)
    result = session.execute(
        delete(LoginThrottle).where(col(LoginThrottle.key) == user_key(name.strip()))
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _locked_rows(session: Session, keys: list[str], now: datetime) -> list[LoginThrottle]:
    """The throttle rows of `keys`, created when missing, locked until the transaction ends."""
    dialect = session.get_bind().dialect.name
    make = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = make(LoginThrottle).values(
        [{"key": k, "failures": 0, "last_failure_at": now} for k in keys]
    )
    session.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))
    rows = session.exec(
        select(LoginThrottle)
        .where(col(LoginThrottle.key).in_(keys))
        .order_by(col(LoginThrottle.key))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    return list(rows)
