"""The demo campaign: the v2 seed prompts without their hints, demo users, and demo labels.

The seed files (seed_prompts/v2/*.jsonl) carry the authors' suggested labels in hint columns;
they never reach annotators (blind labeling): every hint column is dropped on import, and
only the simulated annotators of `demo_labels` use them, to label part of the set.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from annotate import intake
from annotate.accounts.auth import system_actor
from annotate.errors import AnnotateError, Conflict, NotFound
from annotate.intake.demo_labels import SIMULATED_NAMES, add_simulated_labels
from annotate.intake.readers import read_rows
from annotate.schema import resolve_schema
from annotate.settings import Settings
from annotate.storage import db
from annotate.storage.campaigns import (
    create_campaign,
    get_campaign,
)
from annotate.storage.items import import_items
from annotate.storage.models import Campaign, User
from annotate.storage.schemas import campaign_schema
from annotate.storage.users import add_user, get_user

# The seed files carry the authors' expected labels and design notes; annotators must not see
# them (blind labeling). Any other `expected_*` column a seed file has is dropped as well.
SEED_HINTS = {
    "behaviour",
    "cell",
    "persona",
    "persona_attribute",
    "expected_right_action",
    "expected_observed_action",
    "expected_intent",
    "expected_epistemic_status",
    "expected_harm_area",
    "expected_severity",
    "expected_failure_categories",
    "expected_refusal_style",
    "expected_answer_quality",
    "expected_noncompliance_reason",
}
HINT_PREFIX = "expected_"

DEMO_USERS = (
    ("alice", "annotator"),
    ("bob", "annotator"),
    ("carol", "annotator"),
    ("lena", "lead"),
    ("adam", "admin"),
)


def load_demo(settings: Settings, *, force: bool = False) -> dict[str, str]:
    """Set up the `demo` campaign with the v2 seed prompts, demo users and demo labels.

    Returns the passwords of the demo users created now; existing users keep theirs. A
    database holding users other than the demo ones (and the simulated annotators) is refused
    unless `force`. Running it again adds nothing that is already there.
    """
    engine = db.engine_for(settings, require_migrated=False)
    try:
        db.migrate(engine)
        actor = system_actor()
        with db.session_scope(engine) as session:
            known = [n for n, _ in DEMO_USERS] + list(SIMULATED_NAMES)
            others = session.exec(select(User.name).where(col(User.name).not_in(known))).all()
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
            hints = _import_seeds(session, actor, campaign, seed_files(settings))
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
            add_simulated_labels(
                session=session,
                schema=campaign_schema(session=session, campaign=campaign),
                campaign_id=campaign.id or 0,
                hints=hints,
                users=_simulated_users(session, actor),
            )
        return passwords
    finally:
        engine.dispose()


def seed_files(settings: Settings) -> list[Path]:
    """The seed files the demo loads: `SEED_DIR/v2/*.jsonl`, or `SEED_DIR/*.jsonl` without v2."""
    folder = settings.seed_dir / "v2"
    if not folder.is_dir():
        folder = settings.seed_dir
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise AnnotateError(f"No seed prompts (*.jsonl) in {folder}")
    return files


def _import_seeds(
    session: Session, actor: User, campaign: Campaign, files: list[Path]
) -> dict[str, dict[str, Any]]:
    """Import every seed item without its hints; returns each item's hints by id."""
    hints: dict[str, dict[str, Any]] = {}
    for path in files:
        rows = [row for _, row in read_rows(path)]
        hinted = SEED_HINTS | {k for row in rows for k in row if k.startswith(HINT_PREFIX)}
        for row in rows:
            hints[str(row.get("id"))] = {k: v for k, v in row.items() if k in hinted}
        records = intake.parse_items(path, intake.ColumnMap(drop=hinted))
        import_items(
            session=session, actor=actor, campaign=campaign, records=records, source=str(path)
        )
    return hints


def _simulated_users(session: Session, actor: User) -> dict[str, User]:
    """The simulated annotators, created without a password and deactivated (no sign-in)."""
    users: dict[str, User] = {}
    for name in SIMULATED_NAMES:
        try:
            users[name] = get_user(session=session, name=name)
        except NotFound:
            user = add_user(session=session, actor=actor, name=name, role="annotator")
            user.active = False
            session.add(user)
            users[name] = user
    session.flush()
    return users


def _demo_guidelines() -> str:
    return (
        "Read the prompt and the response. Decide what the model **should** have done "
        "(the right action), what it **did**, and tick every failure you see. Judge intent "
        "by what a reasonable reader would take the request to mean, not by its trigger words."
    )
