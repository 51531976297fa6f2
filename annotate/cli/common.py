"""What every command shares: the Typer apps, consoles, options, error handling, sessions."""

from __future__ import annotations

import functools
import getpass
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import typer.core
from rich.console import Console
from sqlalchemy.engine import Engine
from sqlmodel import Session

from annotate.errors import AnnotateError
from annotate.settings import Settings, get_settings
from annotate.storage import db
from annotate.storage.releases import dumps


def _flags_take_no_value() -> None:
    """Rich help without a type after flags (`--json`, not `--json <bool>`, as if it took one).

    Typer's rich help prints every option's type, flags' included; its plain help leaves them
    out, and so do we.
    """
    option = typer.core.TyperOption
    show_type = getattr(option, "display_type_rich", None)
    if show_type is None or getattr(show_type, "_flags_without_type", False):
        return  # a Typer that does not print types, or patched already

    def display_type_rich(self: typer.core.TyperOption, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        return show_type(self, ctx)

    display_type_rich._flags_without_type = True  # type: ignore[attr-defined]
    option.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_take_no_value()

app = typer.Typer(
    help="Label the right action an LLM should take on safety-relevant requests.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

campaign_app = typer.Typer(help="Create and list campaigns.", no_args_is_help=True)

users_app = typer.Typer(help="Add, list and unlock users.", no_args_is_help=True)

app.add_typer(campaign_app, name="campaign")

app.add_typer(users_app, name="users")

controls_app = typer.Typer(help="Control items and qualification.", no_args_is_help=True)

app.add_typer(controls_app, name="controls")

out = Console(highlight=False, soft_wrap=True, emoji=False)

err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", help="Database URL; defaults to $ANNOTATE_DATABASE_URL or sqlite:///annotate.db."
    ),
]

CampaignOpt = Annotated[str, typer.Option("--campaign", "-c", help="Campaign name.")]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(fn: F) -> F:
    """Turn domain errors into a message on stderr and exit code 1; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AnnotateError as exc:
            err.print(f"error: {exc}", markup=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("interrupted; nothing was changed by the unfinished step", markup=False)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _settings(url: str | None) -> Settings:
    return get_settings(database_url=url)


def _engine(settings: Settings, *, require_migrated: bool = True) -> Engine:
    return db.engine_for(settings, require_migrated=require_migrated)


@contextmanager
def _session(url: str | None, *, immediate: bool = False) -> Iterator[tuple[Settings, Session]]:
    settings = _settings(url)
    engine = _engine(settings)
    try:
        with db.session_scope(engine, immediate=immediate) as session:
            yield settings, session
    finally:
        engine.dispose()


def _waiting(message: str) -> None:
    """Tell the person at the terminal that a job waits for the database's write lock."""
    err.print(message + " ...", markup=False)


@contextmanager
def _write_session(url: str | None) -> Iterator[tuple[Settings, Session]]:
    """Like `_session`, but the transaction holds the write lock from its start.

    For read-then-write jobs (imports): under annotators' writes they wait for the lock,
    saying so on stderr, instead of failing halfway with "database is locked".
    """
    settings = _settings(url)
    engine = _engine(settings)
    try:
        with db.write_scope(engine, on_wait=_waiting) as session:
            yield settings, session
    finally:
        engine.dispose()


@contextmanager
def _progress(path: Path) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr for files over ~5 MB; silent for small ones."""
    size = path.stat().st_size if path.exists() else 0
    if size < 5_000_000 or not sys.stderr.isatty():
        yield lambda _n: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} rows"),
        TimeElapsedColumn(),
        console=err,
    ) as bar:
        task = bar.add_task(f"importing {path.name}", total=None)
        yield lambda n: bar.advance(task, n)


def _table(rows: list[dict[str, Any]], *, empty: str, compact: bool = False) -> None:
    """`rows` as a table on stdout (`compact`: no vertical rules; only the first column wraps)."""
    if not rows:
        out.print(empty, markup=False)
        return
    from rich import box
    from rich.table import Table

    if compact:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        for i, name in enumerate(rows[0]):
            table.add_column(name, no_wrap=i > 0, overflow="fold" if i == 0 else "ellipsis")
    else:
        table = Table(*rows[0].keys())
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    # Piped or captured output is read by scripts and grep: lay tables out up to 120 columns
    # there rather than rich's 80, so that no row wraps; a terminal keeps its own width.
    if out.is_terminal:
        out.print(table)
        return
    wide = Console(file=out.file, width=max(out.width, 120), highlight=False, emoji=False)
    wide.print(table)


def _read_password(password_stdin: bool, prompt: str = "Password") -> str:
    if password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise AnnotateError("--password-stdin: nothing on standard input")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise AnnotateError("No terminal to ask for a password: pipe it in with --password-stdin")
    first = getpass.getpass(f"{prompt}: ")
    if getpass.getpass(f"{prompt} (again): ") != first:
        raise AnnotateError("The two passwords differ; nothing was changed")
    return first


OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out", help="Folder holding the releases; defaults to $ANNOTATE_EXPORTS_DIR or exports/."
    ),
]


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else dumps(value)
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
