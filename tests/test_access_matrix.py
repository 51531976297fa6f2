"""Who may call which core function: one table, every public function the pages reach.

Each row names a function, the least role that may call it, and a call that succeeds when the
role allows it. Every row runs as each kind of user: annotator, lead, admin, an imported judge
(machine user) and a deactivated admin; the call must be refused (PermissionDenied, or
AuthError for sign-in) exactly when the role does not allow it. Calls act on the caller's own
things where the function is about "your own" (labels, leases), so a refusal is the role check
and not a missing object. Each call runs in a transaction that is rolled back.

`test_a_stale_actor_is_refused` runs every row again with an actor object loaded before its
account changed in the database: a lead since demoted, an admin since deactivated, and an admin
whose session generation moved on (password change or sign-out); every row must refuse it.

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
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from annotate import labeling, review, storage
from annotate.accounts import sessions, throttle
from annotate.errors import AuthError, PermissionDenied
from annotate.intake.labels import LabelRow
from annotate.labeling import claims, qualify, slots, submission
from annotate.release import publish as release
from annotate.review import adjudication, breakdowns, controls, figures, queue
from annotate.schema import LabelSchema
from annotate.settings import Settings
from annotate.storage import (
    annotations,
    campaigns,
    db,
    items,
    queries,
    releases,
    schemas,
    users,
    visibility,
)
from annotate.storage.models import (
    Adjudication,
    Annotation,
    Assignment,
    Campaign,
    Control,
    Item,
    User,
    utcnow,
)
from annotate.table import LabelTable
from tests.conftest import ADMIN, full_labels, make_campaign, make_item
from tests.test_app_support import PASSWORD, password_hash

MODULES: tuple[ModuleType, ...] = (
    schemas,
    users,
    campaigns,
    items,
    annotations,
    releases,
    slots,
    claims,
    submission,
    figures,
    breakdowns,
    queue,
    adjudication,
    controls,
    qualify,
    release,
    queries,
    sessions,
    throttle,
    visibility,
)
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
    return Settings(
        database_url=str(w.engine.url),
        secret_key=KEY,
        login_max_failures=50,  # the setting before growing delays
        login_free_failures=1000,
        login_free_failures_per_address=1000,
    )


def _control(w: World, ext: str) -> int:
    """Make item `ext` adjudicated and a control (rows written directly: no role involved)."""
    item_id = w.items[ext]
    lead = w.s.exec(select(User).where(User.name == "lea")).one()
    w.s.add(
        Adjudication(
            campaign_id=w.c.id or 0, item_id=item_id, lead_id=lead.id or 0, labels=full_labels()
        )
    )
    w.s.add(Control(item_id=item_id, campaign_id=w.c.id or 0, marked_by=lead.id or 0))
    w.s.flush()
    return item_id


def _adjudicated(w: World, ext: str) -> str:
    lead = w.s.exec(select(User).where(User.name == "lea")).one()
    w.s.add(
        Adjudication(
            campaign_id=w.c.id or 0,
            item_id=w.items[ext],
            lead_id=lead.id or 0,
            labels=full_labels(),
        )
    )
    w.s.flush()
    return ext


def _feedback(w: World) -> Any:
    """The caller's own qualification answer on i04, then their feedback on it."""
    item_id = _control(w, "i04")
    w.c.qualification_items = 1
    w.s.add(w.c)
    w.s.execute(
        update(Annotation).where(col(Annotation.id) == w.own_annotation).values(origin="control")
    )
    return labeling.qualification_feedback(session=w.s, user=w.actor, campaign=w.c, item_id=item_id)


def _reset(w: World) -> Any:
    w.c.qualification_items = 1
    w.s.add(w.c)
    other = w.s.exec(select(User).where(User.name == "oth")).one()
    return labeling.reset_qualification(session=w.s, actor=w.actor, campaign=w.c, annotator=other)


# (module.function, least role, call). A call returning False counts as refused (predicates).
MATRIX: list[tuple[str, str, Call]] = [
    # -- store ------------------------------------------------------------------------------
    ("users.add_user", "admin", lambda w: storage.add_user(session=w.s, actor=w.actor, name="n")),
    (
        "users.set_password",
        "admin",
        lambda w: storage.set_password(session=w.s, actor=w.actor, name="oth", password="p" * 9),
    ),
    (
        "users.set_password (own)",
        "annotator",
        lambda w: storage.set_password(
            session=w.s, actor=w.actor, name=w.actor.name, password="p" * 9
        ),
    ),
    ("users.list_users", "admin", lambda w: storage.list_users(session=w.s, actor=w.actor)),
    (
        "campaigns.create_campaign",
        "admin",
        lambda w: storage.create_campaign(session=w.s, actor=w.actor, name="c2", schema=w.schema),
    ),
    (
        "campaigns.list_campaigns",
        "annotator",
        lambda w: storage.list_campaigns(session=w.s, actor=w.actor),
    ),
    (
        "campaigns.set_members",
        "admin",
        lambda w: storage.set_members(session=w.s, actor=w.actor, campaign=w.c, members=["oth"]),
    ),
    (
        "items.import_items",
        "admin",
        lambda w: storage.import_items(
            session=w.s, actor=w.actor, campaign=w.c, records=[make_item(external_id="new")]
        ),
    ),
    (
        "annotations.import_labels",
        "admin",
        lambda w: storage.import_labels(
            session=w.s,
            actor=w.actor,
            campaign=w.c,
            rows=[LabelRow(item_id="i10", annotator="x", field="intent", value="benign", line=2)],
        ),
    ),
    (
        "campaigns.campaign_status",
        "lead",
        lambda w: storage.campaign_status(session=w.s, actor=w.actor, campaign=w.c),
    ),
    (
        "campaigns.campaign_members",
        "lead",
        lambda w: storage.campaign_members(session=w.s, actor=w.actor, campaign=w.c),
    ),
    (
        "users.set_role",
        "admin",
        lambda w: storage.set_role(session=w.s, actor=w.actor, name="oth", role="lead"),
    ),
    (
        "users.set_active",
        "admin",
        lambda w: storage.set_active(session=w.s, actor=w.actor, name="oth", active=False),
    ),
    (
        "campaigns.update_campaign",
        "admin",
        lambda w: storage.update_campaign(session=w.s, actor=w.actor, campaign=w.c, overlap=3),
    ),
    (
        "visibility.set_visible_metadata",
        "admin",
        lambda w: storage.set_visible_metadata(
            session=w.s, actor=w.actor, campaign=w.c, keys=["focus"]
        ),
    ),
    (
        "visibility.metadata_keys",
        "lead",
        lambda w: storage.metadata_keys(session=w.s, actor=w.actor, campaign=w.c),
    ),
    (
        "annotations.list_own_annotations",
        "annotator",
        lambda w: storage.list_own_annotations(session=w.s, user=w.actor, campaign=w.c),
    ),
    (
        "annotations.get_own_annotation",
        "annotator",
        lambda w: storage.get_own_annotation(
            session=w.s, user=w.actor, annotation_id=w.own_annotation
        ),
    ),
    (
        "annotations.own_history",
        "annotator",
        lambda w: storage.own_history(session=w.s, user=w.actor, annotation_id=w.own_annotation),
    ),
    (
        "campaigns.can_label",
        "annotator",
        lambda w: storage.can_label(session=w.s, user=w.actor, campaign=w.c),
    ),
    # -- assign -----------------------------------------------------------------------------
    (
        "claims.claim_next",
        "annotator",
        lambda w: labeling.claim_next(session=w.s, user=w.actor, campaign=w.c),
    ),
    (
        "claims.current_claim",
        "annotator",
        lambda w: labeling.current_claim(session=w.s, user=w.actor, campaign=w.c),
    ),
    (
        "submission.submit",
        "annotator",
        lambda w: labeling.submit(
            session=w.s, user=w.actor, assignment_id=w.own_assignment, labels=full_labels()
        ),
    ),
    (
        "submission.skip",
        "annotator",
        lambda w: labeling.skip(
            session=w.s, user=w.actor, assignment_id=w.own_assignment, reason="unclear"
        ),
    ),
    (
        "slots.release",
        "annotator",
        lambda w: labeling.release(session=w.s, user=w.actor, assignment_id=w.own_assignment),
    ),
    (
        "submission.edit",
        "annotator",
        lambda w: labeling.edit(
            session=w.s,
            user=w.actor,
            annotation_id=w.own_annotation,
            labels=full_labels(confidence="low"),
        ),
    ),
    (
        "slots.progress",
        "annotator",
        lambda w: labeling.progress(session=w.s, user=w.actor, campaign=w.c),
    ),
    (
        "slots.expire_leases",
        "lead",
        lambda w: labeling.expire_leases(session=w.s, actor=w.actor, campaign=w.c),
    ),
    # -- adjudication -----------------------------------------------------------------------
    (
        "queue.queue_from_table",
        "lead",
        lambda w: review.queue_from_table(w.table, actor=w.actor),
    ),
    (
        "queue.review_queue",
        "lead",
        lambda w: review.review_queue(session=w.s, actor=w.actor, campaign=w.c),
    ),
    (
        "queue.current_adjudications",
        "lead",
        lambda w: review.current_adjudications(session=w.s, actor=w.actor, campaign=w.c),
    ),
    (
        "queue.find_item",
        "lead",
        lambda w: review.find_item(session=w.s, actor=w.actor, campaign=w.c, external_id="i00"),
    ),
    (
        "adjudication.item_detail",
        "lead",
        lambda w: review.item_detail(session=w.s, actor=w.actor, item_id=w.items["i00"]),
    ),
    (
        "adjudication.adjudication_history",
        "lead",
        lambda w: review.adjudication_history(session=w.s, actor=w.actor, item_id=w.items["i00"]),
    ),
    (
        "adjudication.adjudicate",
        "lead",
        lambda w: review.adjudicate(
            session=w.s, actor=w.actor, item_id=w.items["i00"], labels=full_labels()
        ),
    ),
    (
        "queue.bulk_accept_unanimous",
        "lead",
        lambda w: review.bulk_accept_unanimous(
            session=w.s, actor=w.actor, campaign=w.c, item_ids=[w.items["i01"]]
        ),
    ),
    # -- reports ----------------------------------------------------------------------------
    (
        "figures.agreement_report",
        "lead",
        lambda w: review.agreement_report(w.table, actor=w.actor, n_resamples=5),
    ),
    (
        "breakdowns.alpha_over_time",
        "lead",
        lambda w: review.alpha_over_time(w.table, actor=w.actor),
    ),
    (
        "breakdowns.annotator_table",
        "lead",
        lambda w: review.annotator_table(w.table, actor=w.actor, field="right_action"),
    ),
    (
        "breakdowns.campaign_filters",
        "lead",
        lambda w: review.campaign_filters(w.table, actor=w.actor),
    ),
    (
        "figures.campaign_report",
        "lead",
        lambda w: review.campaign_report(session=w.s, actor=w.actor, campaign=w.c, n_resamples=5),
    ),
    (
        "breakdowns.confusion",
        "lead",
        lambda w: review.confusion(w.table, actor=w.actor, field="right_action"),
    ),
    (
        "breakdowns.item_disagreement",
        "lead",
        lambda w: review.item_disagreement(w.table, actor=w.actor),
    ),
    (
        "breakdowns.kappa_matrix",
        "lead",
        lambda w: review.kappa_matrix(w.table, actor=w.actor, field="right_action"),
    ),
    (
        "breakdowns.label_distribution",
        "lead",
        lambda w: review.label_distribution(w.table, actor=w.actor, field="right_action"),
    ),
    (
        "breakdowns.labels_version",
        "lead",
        lambda w: review.labels_version(session=w.s, actor=w.actor, campaign=w.c),
    ),
    # -- controls and qualification -----------------------------------------------------
    (
        "controls.mark_controls",
        "lead",
        lambda w: controls.mark_controls(
            session=w.s, actor=w.actor, campaign=w.c, external_ids=[_adjudicated(w, "i02")]
        ),
    ),
    (
        "controls.unmark_controls",
        "lead",
        lambda w: (
            _control(w, "i03")
            and controls.unmark_controls(
                session=w.s, actor=w.actor, campaign=w.c, external_ids=["i03"]
            )
        ),
    ),
    (
        "controls.list_controls",
        "lead",
        lambda w: controls.list_controls(session=w.s, actor=w.actor, campaign=w.c),
    ),
    (
        "controls.is_control_item",
        "lead",
        lambda w: (
            controls.is_control_item(session=w.s, actor=w.actor, item_id=w.items["i00"]) is not None
        ),
    ),
    (
        "controls.control_report",
        "lead",
        lambda w: controls.control_report(session=w.s, actor=w.actor, campaign=w.c, table=w.table),
    ),
    (
        "controls.controls_version",
        "lead",
        lambda w: controls.controls_version(session=w.s, actor=w.actor, campaign=w.c) is not None,
    ),
    (
        "controls.leave_one_out_drift",
        "lead",
        lambda w: controls.leave_one_out_drift(w.table, actor=w.actor) is not None,
    ),
    (
        "controls.set_control_settings",
        "lead",
        lambda w: controls.set_control_settings(
            session=w.s, actor=w.actor, campaign=w.c, control_rate=0.1, qualification_items=2
        ),
    ),
    (
        "qualify.qualification_state",
        "annotator",
        lambda w: labeling.qualification_state(session=w.s, user=w.actor, campaign=w.c),
    ),
    ("qualify.qualification_feedback", "annotator", _feedback),
    ("qualify.reset_qualification", "lead", _reset),
    # -- release, queries -------------------------------------------------------------------
    (
        "publish.create_release",
        "lead",
        lambda w: release.create_release(
            session=w.s, actor=w.actor, campaign=w.c, out_dir=w.out, n_resamples=5
        ),
    ),
    (
        "publish.list_releases",
        "lead",
        lambda w: release.list_releases(session=w.s, actor=w.actor, campaign=w.c),
    ),
    (
        "queries.load_labels",
        "lead",
        lambda w: queries.load_labels(session=w.s, actor=w.actor, campaign=w.c),
    ),
    (
        "queries.refresh_labels",
        "lead",
        lambda w: queries.refresh_labels(session=w.s, actor=w.actor, campaign=w.c),
    ),
    (
        "throttle.unlock",
        "admin",
        lambda w: throttle.unlock(session=w.s, actor=w.actor, name="oth"),
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
    "annotations.save_annotation": "storage primitive behind submit/edit/import_labels, which "
    "check the role first; no page calls it",
    "sessions.issue_token": "signs a token for a user sign_in already admitted",
    "sessions.sign_out": "ends the caller's own sessions; anyone may sign out",
    "sessions.token_matches": "a predicate on a token and the user it names, reading nothing; "
    "the submit's own transaction then reads the user back (accounts.auth.current_actor)",
    "visibility.view_item": "everyone may see an item they are shown; the role decides what "
    "(tests/storage/test_visibility.py)",
    "visibility.item_name": "as view_item: a handle for annotators, the id for leads",
    "visibility.sees_everything": "a predicate on the viewer's role, used by view_item",
    "qualify.pick_control": "claim_next's choice of a control, made after its role check",
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
            user = storage.add_user(
                session=s, actor=ADMIN, name=name, role=role, is_machine=machine
            )
            user.password_hash = password_hash()
            user.active = active
            s.add(user)
            users[name] = user
        campaign = make_campaign(s, schema, name="c", overlap=2, seed=5)
        storage.import_items(
            session=s,
            actor=ADMIN,
            campaign=campaign,
            records=[make_item(external_id=f"i{n:02d}") for n in range(16)],
        )
        items = {i.external_id: i for i in s.exec(select(Item)).all()}
        for n in range(4):  # two matching labels: unanimous, gold
            for who in ("ann", "oth"):
                storage.save_annotation(
                    session=s, user=users[who], item=items[f"i{n:02d}"], labels=full_labels()
                )
        own_annotation: dict[str, int] = {}
        own_assignment: dict[str, int] = {}
        now = utcnow()
        for n, (role, name) in enumerate(ROLES.items()):
            ann = storage.save_annotation(
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


# How an actor object goes stale: (who, the change made in the database behind its back).
STALE = {
    "demoted lead": ("lead", {"role": "annotator"}),
    "deactivated admin": ("admin", {"active": False}),
    "new generation admin": ("admin", {"session_generation": 1}),
}
# Rows that take no signed-in actor: they decide who signs in from the database itself.
NOT_AN_ACTOR = {"sessions.sign_in", "sessions.user_for_identity"}
# A cookie outlives a role change: read_token returns the user as stored now (the new role),
# which every core function then checks. Sign-out, password changes and deactivation end it.
FRESH_AFTER = {("sessions.read_token", "demoted lead")}
STALE_CASES = [
    pytest.param(name, kind, call, id=f"{name}-{kind}")
    for name, _, call in MATRIX
    if name not in NOT_AN_ACTOR
    for kind in STALE
    if (name, kind) not in FRESH_AFTER
]


@pytest.mark.parametrize(("name", "kind", "call"), STALE_CASES)
def test_a_stale_actor_is_refused(
    world_db: dict[str, Any],
    schema: LabelSchema,
    tmp_path: Path,
    name: str,
    kind: str,
    call: Call,
) -> None:
    role, change = STALE[kind]
    engine: Engine = world_db["engine"]
    with Session(engine, expire_on_commit=False) as s:
        if not name.startswith("sessions."):
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
        # The row changes in the database; the object in hand keeps what it was loaded with.
        s.execute(
            update(User).where(col(User.id) == actor.id).values(**change),
            execution_options={"synchronize_session": False},
        )
        try:
            result = call(w)
            refused = result is False
            why = f"returned {type(result).__name__}"
        except (PermissionDenied, AuthError) as exc:
            refused, why = True, str(exc)
        finally:
            s.rollback()
    assert refused, f"a {kind} may still call {name} ({why})"


def _public_functions_taking_a_user() -> set[str]:
    found = set()
    for module in MODULES:
        short = module.__name__.rsplit(".", 1)[1]
        for fname, fn in inspect.getmembers(module, inspect.isfunction):
            if fname.startswith("_") or fn.__module__ != module.__name__:
                continue
            params = inspect.signature(fn).parameters
            if "actor" in params or "user" in params or "viewer" in params:
                found.add(f"{short}.{fname}")
    return found


def test_every_public_function_taking_a_user_has_a_row() -> None:
    rows = {name.split(" ")[0] for name in _ids()}
    missing = _public_functions_taking_a_user() - rows - set(EXEMPT)
    assert not missing, (
        "Public functions taking `actor`/`user`/`viewer` without a row in MATRIX: "
        f"{sorted(missing)}. "
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
    assert len(STALE_CASES) == (len(MATRIX) - len(NOT_AN_ACTOR)) * len(STALE) - len(FRESH_AFTER)
    assert {least for _, least, _ in MATRIX} <= set(ALLOWED)
