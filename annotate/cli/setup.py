"""`annotate init`, `demo` and `serve`: a database, the demo campaign, the app."""

from __future__ import annotations

from typing import Annotated

import typer

from annotate.cli.common import DbOpt, _engine, _settings, handle_errors, out
from annotate.settings import Settings
from annotate.storage import db


@handle_errors
def init(dbu: DbOpt = None) -> None:
    """Create the database (SQLite file by default) and migrate it to the current schema."""
    settings = _settings(dbu)
    engine = _engine(settings, require_migrated=False)
    db.migrate(engine)
    engine.dispose()
    out.print(f"database ready: {engine.url.render_as_string(hide_password=True)}", markup=False)


@handle_errors
def demo(
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Load the demo and exit (for scripts).")
    ] = False,
    port: Annotated[int, typer.Option(help="Port of the app.")] = 8501,
    force: Annotated[
        bool,
        typer.Option("--force", help="Add the demo users even if the database has other users."),
    ] = False,
    dbu: DbOpt = None,
) -> None:
    """One command: database, seed prompts in campaign `demo`, demo users, then the app.

    Simulated annotators (demo-ann-N, no sign-in) label part of the seed set, so the lead's
    pages, a release and a score work at once. Only demo users created now get a printed
    password; existing ones keep theirs.
    """
    from annotate.accounts.keys import signing_key
    from annotate.intake.demo import DEMO_USERS, load_demo
    from annotate.intake.demo_labels import SIMULATED_NAMES

    settings = _settings(dbu)
    passwords = load_demo(settings, force=force)
    out.print("demo campaign ready; sign in as:", markup=False)
    for name, role in DEMO_USERS:
        shown = passwords.get(name)
        what = f"password: {shown}" if shown else "(existing user; password unchanged)"
        out.print(f"  {name:6} {role:9} {what}", markup=False)
    out.print(
        f"demo labels: simulated annotators {', '.join(SIMULATED_NAMES)} labeled part of the "
        "seed set (demo data; nobody can sign in as them); the rest is open to label.",
        markup=False,
    )
    if not no_serve:
        engine = _engine(settings)
        try:
            signing_key(engine=engine, settings=settings)
        finally:
            engine.dispose()
        serve_app(settings, port=port, address="127.0.0.1")


def serve_app(settings: Settings, *, port: int, address: str) -> None:
    """Run the Streamlit app in this process (blocks until stopped)."""
    from annotate.app.server import run

    run(settings, port=port, address=address)


@handle_errors
def serve(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8501,
    address: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    dbu: DbOpt = None,
) -> None:
    """Start the labeling app (http://127.0.0.1:8501 by default)."""
    from annotate.accounts.keys import signing_key

    settings = _settings(dbu)
    engine = _engine(settings)
    try:
        signing_key(engine=engine, settings=settings)  # a short or unreadable key stops here
    finally:
        engine.dispose()
    out.print(f"serving on http://{address}:{port}", markup=False)
    serve_app(settings, port=port, address=address)
