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


# -- releases and scoring ----------------------------------------------------------------------
# The release and scoring modules pull in pandas, pyarrow and matplotlib: imported in the
# commands that need them, so that every other command starts fast.

OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out", help="Folder holding the releases; defaults to $ANNOTATE_EXPORTS_DIR or exports/."
    ),
]


@app.command("release")
@handle_errors
def release_cmd(
    campaign: CampaignOpt,
    out_dir: OutOpt = None,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            help="KEY=VALUE inclusion rule (repeatable): min_annotations=K (default: the "
            "campaign's overlap), accept=unanimous|majority, split_credit=0.5.",
        ),
    ] = None,
    license_id: Annotated[
        str, typer.Option("--license", help="License id written into the dataset card.")
    ] = "other",
    as_json: JsonOpt = False,
    dbu: DbOpt = None,
) -> None:
    """Publish the campaign's gold set as the next immutable release, OUT/NAME/vN.

    Prints the release's path last (with --json: one JSON object whose `path` is the path).
    """
    from annotate.release import create_release
    from annotate.selection import InclusionPolicy

    rules = InclusionPolicy.from_pairs(policy or [])
    with _session(dbu) as (settings, session):
        target = store.get_campaign(session=session, name=campaign)
        result = create_release(
            session=session,
            actor=system_actor(),
            campaign=target,
            out_dir=out_dir or settings.exports_dir,
            policy=rules,
            license=license_id,
        )
    if as_json:
        out.print(store.dumps(result.model_dump(mode="json")), markup=False)
        return
    out.print(
        f"release v{result.version} of {result.dataset}: {result.gold} gold items "
        f"({result.adjudicated} adjudicated), {result.held_back} held back (see manifest.json)",
        markup=False,
    )
    if result.diff is not None:
        d = result.diff
        out.print(
            f"since v{result.parent_version}: {d.added} added, {d.removed} removed, "
            f"{d.changed} changed, {d.unchanged} unchanged",
            markup=False,
        )
    out.print(result.path, markup=False)


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else store.dumps(value)
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@app.command("diff")
@handle_errors
def diff_cmd(
    name: Annotated[str, typer.Argument(help="Dataset (campaign) name.")],
    old: Annotated[str, typer.Argument(help="The earlier release, e.g. v1.")],
    new: Annotated[str, typer.Argument(help="The later release, e.g. v2.")],
    out_dir: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Items added, removed and changed (field, old and new value) between two releases."""
    from annotate.release import diff_releases

    result = diff_releases(
        out_dir=out_dir or _settings(None).exports_dir, dataset=name, old=old, new=new
    )
    if as_json:
        out.print(store.dumps(result.model_dump(mode="json")), markup=False)
        return
    s = result.summary
    out.print(
        f"{name} {result.old} -> {result.new}: {s.added} added, {s.removed} removed, "
        f"{s.changed} changed, {s.unchanged} unchanged",
        markup=False,
    )
    rows: list[dict[str, Any]] = [
        {"id": i, "change": "added", "old": "", "new": ""} for i in result.added
    ]
    rows += [{"id": i, "change": "removed", "old": "", "new": ""} for i in result.removed]
    for item in result.changed:
        for ch in item.changes:
            old_value, new_value = ch.old, ch.new
            if ch.band_changes is not None:
                old_value = {a: o for a, (o, _) in ch.band_changes.items()}
                new_value = {a: n for a, (_, n) in ch.band_changes.items()}
            rows.append(
                {
                    "id": item.id,
                    "change": ch.field,
                    "old": _short(old_value),
                    "new": _short(new_value),
                }
            )
    if rows:
        _table(rows, empty="")


def _rate(value: float | None, ci: Any = None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


@app.command("score")
@handle_errors
def score_cmd(
    gold: Annotated[Path, typer.Option("--gold", help="Release folder, e.g. exports/NAME/v2.")],
    predictions: Annotated[
        list[str],
        typer.Option(
            "--predictions",
            help="FILE or NAME=FILE of {id, action} records, JSONL/CSV/Parquet (repeatable); "
            "the model is named by the file stem or NAME.",
        ),
    ],
    as_json: JsonOpt = False,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Write the helpfulness/safety trade-off plot (PNG) here."),
    ] = None,
    judge: Annotated[
        bool,
        typer.Option(
            "--judge",
            help="The files are a judge's labels of the gold responses' observed action: also "
            "report the judge's agreement with the human gold.",
        ),
    ] = False,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid",
            help="Leave out bad lines (still listed on stderr) instead of refusing to score.",
        ),
    ] = False,
    id_column: Annotated[str, typer.Option(help="Column holding the item id.")] = "id",
    action_column: Annotated[
        str, typer.Option(help="Column holding the action (e.g. gpt4_label).")
    ] = "action",
    values: Annotated[
        Path | None,
        typer.Option(help="YAML/JSON value mapping (`action:` or `observed_action:` table)."),
    ] = None,
    resamples: Annotated[
        int, typer.Option(help="Bootstrap resamples for the intervals (0: none).")
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    by_group: Annotated[
        bool, typer.Option("--by-group", help="Also break the rates down per group of variants.")
    ] = False,
) -> None:
    """Score models' actions against a gold release: banded score, refusal errors, breakdowns."""
    from annotate.predictions import score_release
    from annotate.scoring import tradeoff_plot

    if resamples < 0:
        raise AnnotateError(f"--resamples must be 0 or more, got {resamples}")
    report = score_release(
        gold,
        predictions,
        judge=judge,
        skip_invalid=skip_invalid,
        id_column=id_column,
        action_column=action_column,
        values=importers.read_value_mapping(values),
        n_resamples=resamples,
        seed=seed,
        by_group=by_group,
    )
    for name, result in report.models.items():
        if result.skipped:
            err.print(
                f"warning: {name}: {len(result.skipped)} invalid lines left out:", markup=False
            )
            for problem in result.skipped:
                err.print(f"  {problem}", markup=False)
        if result.n_missing:
            err.print(
                f"warning: {name}: {result.n_missing} of {report.n_gold} gold items have no "
                "prediction and are not scored",
                markup=False,
            )
    if plot is not None:
        tradeoff_plot(report, plot)
        err.print(f"trade-off plot written to {plot}", markup=False)
    if as_json:
        out.print(store.dumps(report.model_dump(mode="json", exclude_none=False)), markup=False)
        return
    out.print(f"{report.gold}: {report.n_gold} gold items", markup=False)
    # Models side by side as columns: easier to compare than one wide row per model.
    metrics = [
        ("items scored", "n"),
        ("banded score", "banded_score"),
        ("accuracy", "accuracy"),
        ("false-positive refusal", "false_positive_refusal_rate"),
        ("false-negative refusal", "false_negative_refusal_rate"),
        ("overconfidence", "overconfidence_rate"),
        ("helpfulness (benign)", "helpfulness"),
        ("safety (harmful)", "safety"),
        ("group consistency", "group_consistency"),
    ]
    rows = []
    for label_text, key in metrics:
        row: dict[str, Any] = {"metric": label_text}
        for name, r in report.models.items():
            value = getattr(r, key)
            row[name] = str(value) if key == "n" else _rate(value, r.ci.get(key))
        rows.append(row)
    _table(rows, empty="")
    for name, r in report.models.items():
        j = r.judge_alignment
        if j is None:
            continue
        out.print(
            f"judge {name} vs human observed action: n={j.n}, agreement {_rate(j.agreement)}, "
            f"alpha {_rate(j.alpha, j.alpha_ci)}",
            markup=False,
        )
        _table(
            [
                {"human \\ judge": g, **{k: str(v) for k, v in row.items()}}
                for g, row in j.confusion.items()
            ],
            empty="",
        )


# -- agreement ---------------------------------------------------------------------------------


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@app.command("agreement")
@handle_errors
def agreement_cmd(
    campaign: CampaignOpt,
    as_json: JsonOpt = False,
    bootstrap: Annotated[
        int,
        typer.Option("--bootstrap", min=0, help="Bootstrap resamples for the intervals; 0: none."),
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap resampling.")] = 0,
    dbu: DbOpt = None,
) -> None:
    """Krippendorff's alpha per field, banded and per failure category; judges apart."""
    from annotate.reports import campaign_report, summary_rows

    with _session(dbu) as (_s, session):
        target = store.get_campaign(session=session, name=campaign)
        report = campaign_report(
            session=session,
            actor=system_actor(),
            campaign=target,
            n_resamples=bootstrap,
            seed=seed,
        )
    if as_json:
        out.print(store.dumps(report.to_json_dict()), markup=False)
        return
    out.print(
        f"{report.campaign}: {report.n_items} items, {report.complete_items} with "
        f"{report.overlap}+ labels, {report.n_annotators} human annotators",
        markup=False,
    )
    _table(
        [
            {
                "measure": r["measure"],
                "alpha": _num(r["alpha"]),
                "95% interval": f"{_num(r['ci_low'])} to {_num(r['ci_high'])}"
                if r["ci_low"] is not None
                else "-",
                "units": r["n_units"],
                "reading": r["reading"],
            }
            for r in summary_rows(report)
        ],
        empty="no labels yet",
    )
    for judge, figures in report.machine_annotators.items():
        for name, f in figures.fields.items():
            share = "-" if f.agreement is None else f"{f.agreement:.0%}"
            out.print(
                f"judge {judge}: {name} matches the human majority on {share} of {f.n_items}",
                markup=False,
            )


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
