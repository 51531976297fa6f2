"""Engines, sessions and migrations for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, create_engine

from annotate.errors import AnnotateError, StorageUnavailable
from annotate.settings import Settings
from annotate.storage import files

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def raw_rows(session: Session, query: Any) -> list[Any]:
    """Every row of `query` as the DBAPI driver returns it: plain tuples, no type processing.

    SQLAlchemy's Row objects and result processors were a second of a 100,000-item release
    and most of reading a million item ids; callers convert the few columns that need it
    (booleans, timestamps, JSON text).
    """
    result = session.connection().execute(query)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def is_sqlite(engine: Engine) -> bool:
    """Whether `engine` talks to SQLite."""
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, busy_timeout_ms: int = 30_000, pool_size: int = 10) -> Engine:
    """An engine for `url`: SQLite with WAL, busy timeout and foreign keys; PostgreSQL pooled."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise AnnotateError(
            f"Database URL `{url}` is not valid: expected sqlite:///file.db or "
            "postgresql+psycopg://user@host:port/db"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        memory = parsed.database in (None, "", ":memory:")
        kwargs: dict[str, Any] = {
            "connect_args": {"check_same_thread": False, "timeout": busy_timeout_ms / 1000}
        }
        if memory:
            kwargs["poolclass"] = StaticPool
        else:
            files.prepare_sqlite_file(Path(parsed.database or ""))
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Python's sqlite3 opens transactions lazily; we issue BEGIN ourselves (below) so
            # that a write transaction can take its lock up front when asked to.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            options = conn.get_execution_options()
            immediate = options.get("sqlite_immediate", False)
            patience = options.get("sqlite_busy_ms")
            if patience is None:
                conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
                return
            # A shorter wait for this BEGIN only (begin_write polls so it can report waiting).
            conn.exec_driver_sql(f"PRAGMA busy_timeout={int(patience)}")
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
            finally:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")

        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(
            url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800
        )
    raise AnnotateError(
        f"Database `{parsed.get_backend_name()}` is not supported: use sqlite or postgresql"
    )


_SHARED: dict[str, tuple[tuple[int, int], Engine]] = {}
_SHARED_LOCK = threading.Lock()


def shared_engine(url: str, *, busy_timeout_ms: int = 30_000, pool_size: int = 10) -> Engine:
    """The one engine of this process for `url` (made on first use).

    Every part of the server (sign-in routes, pages) takes its engine from here, so that
    clearing Streamlit's caches never makes a second pool. Asking again with other options
    replaces the engine and disposes the old one, closing its pooled connections.
    """
    options = (busy_timeout_ms, pool_size)
    with _SHARED_LOCK:
        held = _SHARED.get(url)
        if held is not None and held[0] == options:
            return held[1]
        engine = make_engine(url, busy_timeout_ms=busy_timeout_ms, pool_size=pool_size)
        _SHARED[url] = (options, engine)
    if held is not None:
        held[1].dispose()
    return engine


def dispose_shared() -> None:
    """Dispose every shared engine (server shutdown, tests)."""
    with _SHARED_LOCK:
        held = list(_SHARED.values())
        _SHARED.clear()
    for _, engine in held:
        engine.dispose()


@contextmanager
def session_scope(engine: Engine, *, immediate: bool = False) -> Iterator[Session]:
    """A session committed on success and rolled back on error.

    `immediate=True` takes SQLite's write lock at BEGIN, so a read-then-write transaction
    cannot be overtaken by another writer between its read and its write.
    """
    with Session(engine, expire_on_commit=False) as session:
        if immediate and is_sqlite(engine):
            session.connection(execution_options={"sqlite_immediate": True})
        try:
            yield session
            session.commit()
        except OperationalError as exc:
            session.rollback()
            raise StorageUnavailable(f"The database is unavailable right now: {exc.orig}") from exc
        except BaseException:
            session.rollback()
            raise


def begin_write(
    session: Session,
    *,
    on_wait: Callable[[str], None] | None = None,
    patience_s: float = 600.0,
    poll_s: float = 1.0,
) -> None:
    """Start `session`'s next transaction holding the write lock, waiting for it if need be.

    On SQLite: BEGIN IMMEDIATE, so a read-then-write job (an import, a release) cannot fail
    halfway with "database is locked" when annotators wrote between its read and its write.
    While other writers hold the lock it polls (every `poll_s`, backing off to 5 s) and calls
    `on_wait` with a progress message; after `patience_s` it gives up with StorageUnavailable.
    The session must have no transaction open (commit or roll back first). On PostgreSQL a
    plain transaction: row locks (SELECT ... FOR UPDATE) do the work there.
    """
    engine = session.get_bind()
    if not isinstance(engine, Engine) or not is_sqlite(engine):
        return
    started = time.monotonic()
    wait = poll_s
    while True:
        try:
            session.connection(
                execution_options={"sqlite_immediate": True, "sqlite_busy_ms": int(wait * 1000)}
            )
            return
        except OperationalError as exc:
            session.rollback()
            if "locked" not in str(exc.orig) and "busy" not in str(exc.orig):
                raise StorageUnavailable(
                    f"The database is unavailable right now: {exc.orig}"
                ) from exc
            elapsed = time.monotonic() - started
            if elapsed >= patience_s:
                raise StorageUnavailable(
                    f"The database stayed locked by other writers for {elapsed:.0f} s; "
                    "nothing was written: try again when the load is lower"
                ) from exc
            if on_wait is not None:
                on_wait(f"waiting for the database: other writers hold its lock ({elapsed:.0f} s)")
            wait = min(wait * 2, 5.0, max(patience_s - elapsed, 0.05))


@contextmanager
def write_scope(
    engine: Engine,
    *,
    on_wait: Callable[[str], None] | None = None,
    patience_s: float = 600.0,
) -> Iterator[Session]:
    """`session_scope` whose transaction holds the write lock from the start (`begin_write`)."""
    with Session(engine, expire_on_commit=False) as session:
        begin_write(session, on_wait=on_wait, patience_s=patience_s)
        try:
            yield session
            session.commit()
        except OperationalError as exc:
            session.rollback()
            raise StorageUnavailable(f"The database is unavailable right now: {exc.orig}") from exc
        except BaseException:
            session.rollback()
            raise


def alembic_config(engine: Engine) -> Config:
    """Alembic configuration bound to `engine` (no alembic.ini needed)."""
    from alembic.config import Config  # a fifth of a second: only commands that migrate

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema up to `revision` (creating every table on a new database)."""
    from alembic import command

    try:
        command.upgrade(alembic_config(engine), revision)
    except OperationalError as exc:
        raise StorageUnavailable(f"Cannot migrate the database: {exc.orig}") from exc


def is_migrated(engine: Engine) -> bool:
    """Whether the database has the tables (has been through `annotate init`)."""
    try:
        return inspect(engine).has_table("alembic_version")
    except OperationalError as exc:
        raise StorageUnavailable(f"The database is unavailable right now: {exc.orig}") from exc


def engine_for(settings: Settings, *, require_migrated: bool = True) -> Engine:
    """An engine for the settings' database; refuses one that `annotate init` has not set up."""
    engine = make_engine(
        settings.database_url,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        pool_size=settings.pool_size,
    )
    if require_migrated and not is_migrated(engine):
        raise AnnotateError(
            f"Database {engine.url.render_as_string(hide_password=True)} is not set up: "
            "run `annotate init` first"
        )
    return engine
