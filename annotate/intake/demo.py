"""The demo campaign: the seed prompts without their hints, and demo users."""

from __future__ import annotations

import secrets

from sqlmodel import col, select

from annotate import intake
from annotate.accounts.auth import system_actor
from annotate.errors import AnnotateError, Conflict, NotFound
from annotate.schema import resolve_schema
from annotate.settings import Settings
from annotate.storage import db
from annotate.storage.campaigns import (
    create_campaign,
    get_campaign,
)
from annotate.storage.items import import_items
from annotate.storage.models import User
from annotate.storage.users import add_user, get_user

# The seed files carry the author's expected labels; annotators must not see them (blind labeling).
SEED_HINTS = {"behaviour", "expected_right_action", "expected_intent", "expected_epistemic_status"}

DEMO_USERS = (
    ("alice", "annotator"),
    ("bob", "annotator"),
    ("carol", "annotator"),
    ("lena", "lead"),
    ("adam", "admin"),
)


def load_demo(settings: Settings, *, force: bool = False) -> dict[str, str]:
    """Set up the `demo` campaign with the seed prompts and demo users.

    Returns the passwords of the demo users created now; existing users keep theirs. A
    database holding users other than the demo ones is refused unless `force`.
    """
    engine = db.engine_for(settings, require_migrated=False)
    try:
        db.migrate(engine)
        actor = system_actor()
        with db.session_scope(engine) as session:
            others = session.exec(
                select(User.name).where(col(User.name).not_in([n for n, _ in DEMO_USERS]))
            ).all()
            if others and not force:
                shown = ", ".join(f"`{n}`" for n in sorted(others)[:5])
                raise Conflict(
                    f"This database already has users who are not demo users ({shown}"
                    + (", ..." if len(others) > 5 else "")
                    + "); `annotate demo` refuses to add demo accounts to it. Use another "
                    "--db, or pass --force to add them anyway (existing passwords are kept)."
                )
            try:
                campaign = get_campaign(session=session, name="demo")
            except AnnotateError:
                campaign = create_campaign(
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
                records = intake.parse_items(path, intake.ColumnMap(drop=SEED_HINTS))
                import_items(
                    session=session,
                    actor=actor,
                    campaign=campaign,
                    records=records,
                    source=str(path),
                )
            passwords: dict[str, str] = {}
            for name, role in DEMO_USERS:
                try:
                    get_user(session=session, name=name)
                    continue  # never reset an existing password
                except NotFound:
                    pass
                password = secrets.token_urlsafe(9)
                add_user(session=session, actor=actor, name=name, role=role, password=password)
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
