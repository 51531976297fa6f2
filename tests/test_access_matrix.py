"""Who may call which core function: one table, every public function the pages reach.

Each row names a function, the least role that may call it, and a call that succeeds when the
role allows it. Every row runs as each kind of user: annotator, lead, admin, an imported judge
(machine user) and a deactivated admin; the call must be refused (PermissionDenied, or
AuthError for sign-in) exactly when the role does not allow it. Calls act on the caller's own
things where the function is about "your own" (labels, leases), so a refusal is the role check
and not a missing object. Each call runs in a transaction that is rolled back.

`test_every_public_function_taking_a_user_has_a_row` fails when someone adds a public function
taking `actor` (or `user`) to these modules without deciding who may call it here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from annotate import adjudication, assign, db, queries, release, reports, sessions, store
from annotate.errors import AuthError, PermissionDenied
from annotate.importers import LabelRow
from annotate.models import Assignment, Campaign, Item, User, utcnow
from annotate.queries import LabelTable
from annotate.schema import LabelSchema
from annotate.settings import Settings
from tests.conftest import ADMIN, full_labels, make_campaign, make_item
from tests.test_app_support import PASSWORD, password_hash

MODULES: tuple[ModuleType, ...] = (store, assign, adjudication, reports, release, queries, sessions)
KEY = "matrix-signing-key-" + "k" * 30

# role -> user name; `bot` is an imported judge, `ina` a deactivated admin.
ROLES = {
    "annotator": "ann",
    "lead": "lea",
    "admin": "adm",
    "machine": "bot",
    "inactive": "ina",
}
ALLOWED = {
    "annotator": {"annotator", "lead", "admin"},
    "lead": {"lead", "admin"},
    "admin": {"admin"},
}


@dataclass
class World:
    """What a call needs: a session, the caller and their own lease and label, the campaign."""

    s: Session
    engine: Engine
    actor: User
    c: Campaign
    schema: LabelSchema
    table: LabelTable
    items: dict[str, int]
    own_annotation: int
    own_assignment: int
    out: Path


Call = Callable[[World], Any]


def _settings(w: World) -> Settings:
    return Settings(database_url=str(w.engine.url), secret_key=KEY, login_max_failures=50)


# (module.function, least role, call). A call returning False counts as refused (predicates).
MATRIX: list[tuple[str, str, Call]] = [
    # -- store ------------------------------------------------------------------------------
    ("store.add_user", "admin", lambda w: store.add_user(session=w.s, actor=w.actor, name="n")),
    (
        "store.set_password",
        "admin",
        lambda w: store.set_password(session=w.s, actor=w.actor, name="oth", password="p" * 9),
    ),
    (
        "store.set_password (own)",
        "annotator",
        lambda w: store.set_password(
            session=w.s, actor=w.actor, name=w.actor.name, password="p" * 9
        ),
    ),
    ("store.list_users", "admin", lambda w: store.list_users(session=w.s, actor=w.actor)),
    (
        "store.create_campaign",
        "admin",
        lambda w: store.create_campaign(session=w.s, actor=w.actor, name="c2", schema=w.schema),
    ),
    (
        "store.list_campaigns",
        "annotator",
        lambda w: store.list_campaigns(session=w.s, actor=w.actor),
    ),
    (
        "store.set_members",
        "admin",
        lambda w: store.set_members(session=w.s, actor=w.actor, campaign=w.c, members=["oth"]),
    ),
    (
        "store.import_items",
        "admin",
        lambda w: store.import_items(
            session=w.s, actor=w.actor, campaign=w.c, records=[make_item(external_id="new")]
        ),
    ),
    (
        "store.import_labels",
        "admin",
        lambda w: store.import_labels(
            session=w.s,
            actor=w.actor,
            campaign=w.c,
            rows=[LabelRow(item_id="i10", annotator="x", field="intent", value="benign", line=2)],
        ),
    ),
    (
        "store.campaign_status",
        "lead",
        lambda w: store.campaign_status(session=w.s, actor=w.actor, campaign=w.c),
    ),
    (
        "store.campaign_members",
        "lead",
        lambda w: store.campaign_members(session=w.s, actor=w.actor, campaign=w.c),
    ),
    (
        "store.set_role",
        "admin",
        lambda w: store.set_role(session=w.s, actor=w.actor, name="oth", role="lead"),
    ),
    (
        "store.set_active",
        "admin",
        lambda w: store.set_active(session=w.s, actor=w.actor, name="oth", active=False),
    ),
    (
        "store.update_campaign",
        "admin",
        lambda w: store.update_campaign(session=w.s, actor=w.actor, campaign=w.c, overlap=3),
    ),
    (
        "store.list_own_annotations",
        "annotator",
        lambda w: store.list_own_annotations(session=w.s, user=w.actor, campaign=w.c),
    ),
    (
        "store.get_own_annotation",
        "annotator",
        lambda w: store.get_own_annotation(
            session=w.s, user=w.actor, annotation_id=w.own_annotation
        ),
    ),
    (
        "store.own_history",
        "annotator",
        lambda w: store.own_history(session=w.s, user=w.actor, annotation_id=w.own_annotation),
    ),
    (
        "store.can_label",
        "annotator",
        lambda w: store.can_label(session=w.s, user=w.actor, campaign=w.c),
    ),
    # -- assign -----------------------------------------------------------------------------
    (
        "assign.claim_next",
        "annotator",
        lambda w: assign.claim_next(session=w.s, user=w.actor, campaign=w.c),
    ),
    (
        "assign.current_claim",
        "annotator",
        lambda w: assign.current_claim(session=w.s, user=w.actor, campaign=w.c),
    ),
    (
        "assign.submit",
        "annotator",
        lambda w: assign.submit(
            session=w.s, user=w.actor, assignment_id=w.own_assignment, labels=full_labels()
        ),
    ),
    (
        "assign.skip",
        "annotator",
        lambda w: assign.skip(
            session=w.s, user=w.actor, assignment_id=w.own_assignment, reason="unclear"
        ),
    ),
    (
        "assign.release",
        "annotator",
        lambda w: assign.release(session=w.s, user=w.actor, assignment_id=w.own_assignment),
    ),
    (
        "assign.edit",
        "annotator",
        lambda w: assign.edit(
            session=w.s,
            user=w.actor,
            annotation_id=w.own_annotation,
            labels=full_labels(confidence="low"),
        ),
    ),
    (
        "assign.progress",
        "annotator",
        lambda w: assign.progress(session=w.s, user=w.actor, campaign=w.c),
    ),
    (
        "assign.expire_leases",
        "lead",
        lambda w: assign.expire_leases(session=w.s, actor=w.actor, campaign=w.c),
    ),
    # -- adjudication -----------------------------------------------------------------------
    (
        "adjudication.queue_from_table",
        "lead",
        lambda w: adjudication.queue_from_table(w.table, actor=w.actor),
    ),
    (
        "adjudication.review_queue",
        "lead",
        lambda w: adjudication.review_queue(session=w.s, actor=w.actor, campaign=w.c),
    ),
    (
        "adjudication.current_adjudications",
        "lead",
        lambda w: adjudication.current_adjudications(session=w.s, actor=w.actor, campaign=w.c),
    ),
    (
        "adjudication.find_item",
        "lead",
        lambda w: adjudication.find_item(
            session=w.s, actor=w.actor, campaign=w.c, external_id="i00"
        ),
    ),
    (
        "adjudication.item_detail",
        "lead",
        lambda w: adjudication.item_detail(session=w.s, actor=w.actor, item_id=w.items["i00"]),
    ),
    (
        "adjudication.adjudication_history",
        "lead",
        lambda w: adjudication.adjudication_history(
            session=w.s, actor=w.actor, item_id=w.items["i00"]
        ),
    ),
    (
        "adjudication.adjudicate",
        "lead",
        lambda w: adjudication.adjudicate(
            session=w.s, actor=w.actor, item_id=w.items["i00"], labels=full_labels()
        ),
    ),
    (
        "adjudication.bulk_accept_unanimous",
        "lead",
        lambda w: adjudication.bulk_accept_unanimous(
            session=w.s, actor=w.actor, campaign=w.c, item_ids=[w.items["i01"]]
        ),
    ),
    # -- reports ----------------------------------------------------------------------------
    (
        "reports.agreement_report",
        "lead",
        lambda w: reports.agreement_report(w.table, actor=w.actor, n_resamples=5),
    ),
    ("reports.alpha_over_time", "lead", lambda w: reports.alpha_over_time(w.table, actor=w.actor)),
    (
        "reports.annotator_table",
        "lead",
        lambda w: reports.annotator_table(w.table, actor=w.actor, field="right_action"),
    ),
    (
        "reports.campaign_filters",
        "lead",
        lambda w: reports.campaign_filters(w.table, actor=w.actor),
    ),
    (
        "reports.campaign_report",
        "lead",
        lambda w: reports.campaign_report(session=w.s, actor=w.actor, campaign=w.c, n_resamples=5),
    ),
    (
        "reports.confusion",
        "lead",
        lambda w: reports.confusion(w.table, actor=w.actor, field="right_action"),
    ),
    (
        "reports.item_disagreement",
        "lead",
        lambda w: reports.item_disagreement(w.table, actor=w.actor),
    ),
    (
        "reports.kappa_matrix",
        "lead",
        lambda w: reports.kappa_matrix(w.table, actor=w.actor, field="right_action"),
    ),
    (
        "reports.label_distribution",
        "lead",
        lambda w: reports.label_distribution(w.table, actor=w.actor, field="right_action"),
    ),
    (
        "reports.labels_version",
        "lead",
        lambda w: reports.labels_version(session=w.s, actor=w.actor, campaign=w.c),
    ),
    # -- release, queries -------------------------------------------------------------------
    (
        "release.create_release",
        "lead",
        lambda w: release.create_release(
            session=w.s, actor=w.actor, campaign=w.c, out_dir=w.out, n_resamples=5
        ),
    ),
    (
        "release.list_releases",
        "lead",
        lambda w: release.list_releases(session=w.s, actor=w.actor, campaign=w.c),
    ),
    (
        "queries.load_labels",
        "lead",
        lambda w: queries.load_labels(session=w.s, actor=w.actor, campaign=w.c),
    ),
    # -- sessions: who can sign in at all ---------------------------------------------------
    (
        "sessions.sign_in",
        "annotator",
        lambda w: sessions.sign_in(
            engine=w.engine, settings=_settings(w), name=w.actor.name, password=PASSWORD
        ),
    ),
    (
        "sessions.read_token",
        "annotator",
        lambda w: sessions.read_token(
            session=w.s,
            key=KEY,
            token=sessions.issue_token(key=KEY, user=w.actor),
            max_age_s=3600,
        ),
    ),
    (
        "sessions.user_for_identity",
        "annotator",
        lambda w: sessions.user_for_identity(session=w.s, identity={"email": w.actor.name}),
    ),
]

# Public functions taking a user that need no row, and why.
EXEMPT = {
    "store.save_annotation": "storage primitive behind submit/edit/import_labels, which check "
    "the role first; no page calls it",
    "sessions.issue_token": "signs a token for a user sign_in already admitted",
    "sessions.sign_out": "ends the caller's own sessions; anyone may sign out",
}


@pytest.fixture(scope="module")
def world_db(
    tmp_path_factory: pytest.TempPathFactory, schema: LabelSchema
) -> Iterator[dict[str, Any]]:
    """One seeded SQLite database for the whole matrix; each case rolls its changes back."""
    folder = tmp_path_factory.mktemp("matrix")
    engine = db.make_engine(f"sqlite:///{folder / 'matrix.db'}")
    db.migrate(engine)
    with db.session_scope(engine) as s:
        users: dict[str, User] = {}
        for name, role, machine, active in (
            ("ann", "annotator", False, True),
            ("lea", "lead", False, True),
            ("adm", "admin", False, True),
            ("bot", "annotator", True, True),
            ("ina", "admin", False, False),
            ("oth", "annotator", False, True),
        ):
            user = store.add_user(session=s, actor=ADMIN, name=name, role=role, is_machine=machine)
            user.password_hash = password_hash()
            user.active = active
            s.add(user)
            users[name] = user
        campaign = make_campaign(s, schema, name="c", overlap=2, seed=5)
        store.import_items(
            session=s,
            actor=ADMIN,
            campaign=campaign,
            records=[make_item(external_id=f"i{n:02d}") for n in range(16)],
        )
        items = {i.external_id: i for i in s.exec(select(Item)).all()}
        for n in range(4):  # two matching labels: unanimous, gold
            for who in ("ann", "oth"):
                store.save_annotation(
                    session=s, user=users[who], item=items[f"i{n:02d}"], labels=full_labels()
                )
        own_annotation: dict[str, int] = {}
        own_assignment: dict[str, int] = {}
        now = utcnow()
        for n, (role, name) in enumerate(ROLES.items()):
            ann = store.save_annotation(
                session=s, user=users[name], item=items["i04"], labels=full_labels()
            )
            lease = Assignment(
                campaign_id=campaign.id,  # type: ignore[arg-type]
                item_id=items[f"i{5 + n:02d}"].id,  # type: ignore[arg-type]
                user_id=users[name].id,  # type: ignore[arg-type]
                status="active",
                claimed_at=now,
                expires_at=now + timedelta(hours=2),
            )
            s.add(lease)
            s.flush()
            own_annotation[role] = ann.id or 0
            own_assignment[role] = lease.id or 0
        table = queries.load_labels(session=s, actor=ADMIN, campaign=campaign)
        seeded = {
            "engine": engine,
            "campaign_id": campaign.id,
            "users": {r: users[n].id for r, n in ROLES.items()},
            "items": {k: v.id for k, v in items.items()},
            "own_annotation": own_annotation,
            "own_assignment": own_assignment,
            "table": table,
        }
    yield seeded
    engine.dispose()


def _ids() -> list[str]:
    return [name for name, _, _ in MATRIX]


CASES = [
    pytest.param(name, role, role in ALLOWED[least], call, id=f"{name}-{role}")
    for name, least, call in MATRIX
    for role in ROLES
]


@pytest.mark.parametrize(("name", "role", "allowed", "call"), CASES)
def test_access(
    world_db: dict[str, Any],
    schema: LabelSchema,
    tmp_path: Path,
    name: str,
    role: str,
    allowed: bool,
    call: Call,
) -> None:
    engine: Engine = world_db["engine"]
    with Session(engine, expire_on_commit=False) as s:
        if not name.startswith("sessions."):
            # Claims and submits need SQLite's write lock; sign-in opens its own transactions.
            s.connection(execution_options={"sqlite_immediate": True})
        actor = s.get(User, world_db["users"][role])
        campaign = s.get(Campaign, world_db["campaign_id"])
        assert actor is not None and campaign is not None
        w = World(
            s=s,
            engine=engine,
            actor=actor,
            c=campaign,
            schema=schema,
            table=world_db["table"],
            items=world_db["items"],
            own_annotation=world_db["own_annotation"][role],
            own_assignment=world_db["own_assignment"][role],
            out=tmp_path / "exports",
        )
        try:
            result = call(w)
            refused = result is False
            why = "returned False"
        except (PermissionDenied, AuthError) as exc:
            refused, why = True, str(exc)
        finally:
            s.rollback()
    if allowed:
        assert not refused, f"{role} was refused {name}: {why}"
    else:
        assert refused, f"{role} may call {name}, but should not"


def _public_functions_taking_a_user() -> set[str]:
    found = set()
    for module in MODULES:
        short = module.__name__.rsplit(".", 1)[1]
        for fname, fn in inspect.getmembers(module, inspect.isfunction):
            if fname.startswith("_") or fn.__module__ != module.__name__:
                continue
            params = inspect.signature(fn).parameters
            if "actor" in params or "user" in params:
                found.add(f"{short}.{fname}")
    return found


def test_every_public_function_taking_a_user_has_a_row() -> None:
    rows = {name.split(" ")[0] for name in _ids()}
    missing = _public_functions_taking_a_user() - rows - set(EXEMPT)
    assert not missing, (
        f"Public functions taking `actor`/`user` without a row in MATRIX: {sorted(missing)}. "
        "Add a row saying which role may call each (or an EXEMPT entry with the reason)."
    )
    # ...and no row or exemption names a function that no longer exists.
    public = {
        f"{m.__name__.rsplit('.', 1)[1]}.{n}"
        for m in MODULES
        for n, _ in inspect.getmembers(m, inspect.isfunction)
        if not n.startswith("_")
    }
    stale = (rows | set(EXEMPT)) - public
    assert not stale, f"MATRIX/EXEMPT name functions that are gone: {sorted(stale)}"


def test_the_matrix_covers_every_role_for_every_row() -> None:
    assert len(CASES) == len(MATRIX) * len(ROLES)
    assert {least for _, least, _ in MATRIX} <= set(ALLOWED)
