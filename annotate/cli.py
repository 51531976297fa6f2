"""The `annotate` command: parse arguments, call the core, print the result."""

from __future__ import annotations

import functools
import getpass
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.engine import Engine
from sqlmodel import Session

from annotate import db, importers, store
from annotate.auth import system_actor
from annotate.errors import AnnotateError
from annotate.schema import resolve_schema
from annotate.settings import Settings, get_settings

app = typer.Typer(
    help="Label the right action an LLM should take on safety-relevant requests.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
campaign_app = typer.Typer(help="Create and list campaigns.", no_args_is_help=True)
users_app = typer.Typer(help="Add and list users.", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")
app.add_typer(users_app, name="users")

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
    engine = db.make_engine(
        settings.database_url,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        pool_size=settings.pool_size,
    )
    if require_migrated and not db.is_migrated(engine):
        raise AnnotateError(
            f"Database {engine.url.render_as_string(hide_password=True)} is not set up: "
            "run `annotate init` first"
        )
    return engine


@contextmanager
def _session(url: str | None, *, immediate: bool = False) -> Iterator[tuple[Settings, Session]]:
    settings = _settings(url)
    engine = _engine(settings)
    try:
        with db.session_scope(engine, immediate=immediate) as session:
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
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} rows"),
        TimeElapsedColumn(),
        console=err,
    ) as bar:
        task = bar.add_task(f"importing {path.name}", total=None)
        yield lambda n: bar.advance(task, n)


# -- commands ----------------------------------------------------------------------------------


@app.command()
@handle_errors
def init(dbu: DbOpt = None) -> None:
    """Create the database (SQLite file by default) and migrate it to the current schema."""
    settings = _settings(dbu)
    engine = _engine(settings, require_migrated=False)
    db.migrate(engine)
    engine.dispose()
    out.print(f"database ready: {engine.url.render_as_string(hide_password=True)}", markup=False)


@campaign_app.command("create")
@handle_errors
def campaign_create(
    name: Annotated[str, typer.Argument(help="Campaign name (no `/`).")],
    overlap: Annotated[int, typer.Option(help="Annotators per item (k).")] = 2,
    schema: Annotated[
        str | None, typer.Option(help="Schema id (refusal-v1) or path to a schema file.")
    ] = None,
    guidelines: Annotated[
        Path | None, typer.Option(help="Markdown file with the annotation guidelines.")
    ] = None,
    member: Annotated[
        list[str] | None,
        typer.Option("--member", help="Restrict to these annotators (repeatable)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the per-annotator item order.")] = None,
    dbu: DbOpt = None,
) -> None:
    """Create a campaign; the schema defaults to the shipped refusal-v1."""
    with _session(dbu) as (settings, session):
        label_schema = resolve_schema(schema, settings.schemas_dir)
        text = ""
        if guidelines is not None:
            try:
                text = guidelines.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise AnnotateError(f"{guidelines}: cannot read guidelines: {exc}") from None
        campaign = store.create_campaign(
            session=session,
            actor=system_actor(),
            name=name,
            schema=label_schema,
            overlap=overlap,
            guidelines=text,
            members=member or [],
            seed=seed,
        )
        out.print(
            f"campaign {campaign.name} created (schema {label_schema.id}, overlap "
            f"{campaign.overlap})",
            markup=False,
        )


@campaign_app.command("list")
@handle_errors
def campaign_list(as_json: JsonOpt = False, dbu: DbOpt = None) -> None:
    """List campaigns with their schema, overlap and item counts."""
    with _session(dbu) as (_settings_, session):
        rows = []
        for c in store.list_campaigns(session=session, actor=system_actor()):
            st = store.campaign_status(session=session, actor=system_actor(), campaign=c)
            rows.append(
                {
                    "name": c.name,
                    "schema": st.schema_id,
                    "overlap": c.overlap,
                    "items": st.items,
                    "complete_items": st.complete_items,
                    "restricted": c.restricted,
                }
            )
    if as_json:
        out.print(store.dumps(rows), markup=False)
        return
    _table(rows, empty="no campaigns yet: annotate campaign create NAME")


def _table(rows: list[dict[str, Any]], *, empty: str) -> None:
    if not rows:
        out.print(empty, markup=False)
        return
    table = Table(*rows[0].keys())
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    out.print(table)


@app.command("import")
@handle_errors
def import_cmd(
    path: Annotated[Path, typer.Argument(help="CSV, TSV, JSONL or Parquet file of items.")],
    campaign: CampaignOpt,
    column: Annotated[
        list[str] | None,
        typer.Option("--column", help="FIELD=COLUMN: read FIELD from COLUMN (repeatable)."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="FIELD=VALUE: the same value for every row (repeatable)."),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(help="YAML/JSON file with `columns`, `constants` and `drop`."),
    ] = None,
    dbu: DbOpt = None,
) -> None:
    """Import items (prompt or conversation, response, metadata); all or nothing."""
    cmap = importers.ColumnMap.build(column, set_, mapping)
    with _progress(path) as tick:
        records = importers.parse_items(path, cmap, progress=tick)
        with _session(dbu) as (_s, session):
            target = store.get_campaign(session=session, name=campaign)
            result = store.import_items(
                session=session,
                actor=system_actor(),
                campaign=target,
                records=records,
                source=str(path),
            )
    out.print(
        f"imported {result.added} items into {campaign} ({result.unchanged} already there)",
        markup=False,
    )


@app.command("import-labels")
@handle_errors
def import_labels_cmd(
    path: Annotated[Path, typer.Argument(help="CSV, TSV, JSONL or Parquet file of labels.")],
    campaign: CampaignOpt,
    values: Annotated[
        Path | None,
        typer.Option(help="YAML/JSON `{field: {from: to}}` translating values."),
    ] = None,
    machine: Annotated[
        bool, typer.Option("--machine", help="The annotators are automatic judges.")
    ] = False,
    wide: Annotated[
        list[str] | None,
        typer.Option(
            "--wide",
            help="COLUMN=ANNOTATOR: read a wide file where COLUMN holds ANNOTATOR's value "
            "of --field (repeatable).",
        ),
    ] = None,
    field: Annotated[
        str | None, typer.Option(help="With --wide: the field the columns hold.")
    ] = None,
    id_column: Annotated[str, typer.Option(help="With --wide: the item id column.")] = "id",
    dbu: DbOpt = None,
) -> None:
    """Import labels made elsewhere, long format: item_id, annotator, field, value."""
    wide_map: dict[str, str] = {}
    for pair in wide or []:
        col_name, sep, who = pair.partition("=")
        if not sep or not col_name or not who:
            raise AnnotateError(f"--wide `{pair}`: expected COLUMN=ANNOTATOR")
        wide_map[col_name] = who
    if wide_map and not field:
        raise AnnotateError("--wide needs --field FIELD (e.g. --field observed_action)")
    rows = importers.parse_label_rows(
        path,
        importers.read_value_mapping(values),
        wide=wide_map or None,
        wide_field=field,
        id_column=id_column if wide_map else "item_id",
    )
    with _session(dbu) as (_s, session):
        target = store.get_campaign(session=session, name=campaign)
        result = store.import_labels(
            session=session,
            actor=system_actor(),
            campaign=target,
            rows=rows,
            machine=machine,
            source=str(path),
        )
    out.print(
        f"labels imported into {campaign}: {result.annotations_added} annotations added, "
        f"{result.annotations_updated} updated, {result.unchanged} unchanged"
        + (f"; new annotators: {', '.join(result.users_created)}" if result.users_created else ""),
        markup=False,
    )


@app.command()
@handle_errors
def status(campaign: CampaignOpt, as_json: JsonOpt = False, dbu: DbOpt = None) -> None:
    """Items, human annotations and annotators, and items with k labels (judges apart)."""
    with _session(dbu) as (_s, session):
        target = store.get_campaign(session=session, name=campaign)
        st = store.campaign_status(session=session, actor=system_actor(), campaign=target)
    if as_json:
        out.print(store.dumps(st.model_dump()), markup=False)
        return
    _table([{"what": k, "value": v} for k, v in st.model_dump().items()], empty="")


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


@users_app.command("add")
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
        user = store.add_user(
            session=session, actor=system_actor(), name=name, role=role, password=password
        )
    out.print(f"user {user.name} added ({user.role})", markup=False)


@users_app.command("passwd")
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
        store.set_password(session=session, actor=system_actor(), name=name, password=password)
    out.print(f"password of {name} changed", markup=False)


@users_app.command("list")
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
            for u in store.list_users(session=session, actor=system_actor())
        ]
    if as_json:
        out.print(store.dumps(rows), markup=False)
        return
    _table(rows, empty="no users yet: annotate users add NAME --role annotator")


# The seed files carry the author's expected labels; annotators must not see them (blind labeling).
SEED_HINTS = {"behaviour", "expected_right_action", "expected_intent", "expected_epistemic_status"}
DEMO_USERS = (
    ("alice", "annotator"),
    ("bob", "annotator"),
    ("carol", "annotator"),
    ("lena", "lead"),
    ("adam", "admin"),
)


def load_demo(settings: Settings) -> dict[str, str]:
    """Set up the `demo` campaign with the seed prompts and demo users; returns their passwords."""
    engine = _engine(settings, require_migrated=False)
    try:
        db.migrate(engine)
        actor = system_actor()
        with db.session_scope(engine) as session:
            try:
                campaign = store.get_campaign(session=session, name="demo")
            except AnnotateError:
                campaign = store.create_campaign(
                    session=session,
                    actor=actor,
                    name="demo",
                    schema=resolve_schema(None, settings.schemas_dir),
                    overlap=2,
                    guidelines=_demo_guidelines(),
                    seed=7,
                )
            files = sorted(settings.seed_dir.glob("*.jsonl"))
            if not files:
                raise AnnotateError(f"No seed prompts (*.jsonl) in {settings.seed_dir}")
            for path in files:
                records = importers.parse_items(path, importers.ColumnMap(drop=SEED_HINTS))
                store.import_items(
                    session=session,
                    actor=actor,
                    campaign=campaign,
                    records=records,
                    source=str(path),
                )
            passwords: dict[str, str] = {}
            for name, role in DEMO_USERS:
                password = secrets.token_urlsafe(9)
                try:
                    store.get_user(session=session, name=name)
                    store.set_password(session=session, actor=actor, name=name, password=password)
                except AnnotateError:
                    store.add_user(
                        session=session, actor=actor, name=name, role=role, password=password
                    )
                passwords[name] = password
        return passwords
    finally:
        engine.dispose()


def _demo_guidelines() -> str:
    return (
        "Read the prompt and the response. Decide what the model **should** have done "
        "(the right action), what it **did**, and tick every failure you see. Judge intent "
        "by what a reasonable reader would take the request to mean, not by its trigger words."
    )


@app.command()
@handle_errors
def demo(
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Load the demo and exit (for scripts).")
    ] = False,
    port: Annotated[int, typer.Option(help="Port of the app.")] = 8501,
    dbu: DbOpt = None,
) -> None:
    """One command: database, seed prompts in campaign `demo`, demo users, then the app."""
    settings = _settings(dbu)
    passwords = load_demo(settings)
    out.print("demo campaign ready; sign in as:", markup=False)
    for (name, role), password in zip(DEMO_USERS, passwords.values(), strict=True):
        out.print(f"  {name:6} {role:9} password: {password}", markup=False)
    if not no_serve:
        serve_app(settings, port=port, address="127.0.0.1")


def serve_app(settings: Settings, *, port: int, address: str) -> None:
    """Run the Streamlit app in this process (blocks until stopped)."""
    from annotate.app.server import run

    run(settings, port=port, address=address)


@app.command()
@handle_errors
def serve(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8501,
    address: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    dbu: DbOpt = None,
) -> None:
    """Start the labeling app (http://127.0.0.1:8501 by default)."""
    settings = _settings(dbu)
    _engine(settings).dispose()
    out.print(f"serving on http://{address}:{port}", markup=False)
    serve_app(settings, port=port, address=address)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
