"""Storage on SQLite and PostgreSQL: campaigns, schemas, users, items, labels, status."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ADMIN, make_campaign, make_item, make_user
from sqlalchemy import func, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from annotate import storage
from annotate.accounts.auth import verify_password
from annotate.errors import Conflict, ImportProblem, NotFound, PermissionDenied, ValidationProblem
from annotate.intake.labels import LabelRow
from annotate.schema import LabelSchema
from annotate.storage.db import make_engine
from annotate.storage.models import Annotation, AnnotationHistory, Item, User


def test_tables_and_indexes_exist(engine: Engine) -> None:
    insp = inspect(engine)
    tables = set(insp.get_table_names())
    assert {
        "user",
        "label_schema",
        "campaign",
        "campaign_member",
        "item",
        "assignment",
        "annotation",
        "annotation_history",
        "adjudication",
        "release",
        "login_attempt",
        "login_throttle",
        "app_secret",
        "alembic_version",
    } <= tables
    item_indexes = {i["name"] for i in insp.get_indexes("item")}
    assert {"ix_item_campaign_category", "ix_item_campaign_model", "ix_item_campaign_group"} <= (
        item_indexes
    )
    ann_indexes = {i["name"] for i in insp.get_indexes("annotation")}
    assert {"ix_annotation_campaign_user", "ix_annotation_campaign_item"} <= ann_indexes


def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_foreign_keys_are_enforced(session: Session) -> None:
    session.add(Item(campaign_id=999, external_id="x", response="r", content_hash="h", meta={}))
    with pytest.raises(Exception, match="(?i)foreign key"):
        session.flush()


def test_campaign_create_and_lookup(session: Session, schema: LabelSchema) -> None:
    c = make_campaign(session, schema, name="xs", overlap=3, guidelines="# Read me")
    assert (c.overlap, c.guidelines) == (3, "# Read me")
    assert storage.get_campaign(session=session, name="xs").id == c.id
    assert storage.campaign_schema(session=session, campaign=c) == schema
    with pytest.raises(Conflict, match="Campaign `xs` already exists"):
        make_campaign(session, schema, name="xs")
    with pytest.raises(NotFound, match="No campaign `nope`"):
        storage.get_campaign(session=session, name="nope")
    with pytest.raises(ValidationProblem, match="Overlap must be at least 1, got 0"):
        make_campaign(session, schema, name="zero", overlap=0)
    with pytest.raises(ValidationProblem, match="without `/`"):
        make_campaign(session, schema, name="a/b")


def test_schema_is_immutable_once_registered(session: Session, schema: LabelSchema) -> None:
    make_campaign(session, schema)
    changed = schema.model_copy(update={"description": "edited in place"})
    with pytest.raises(Conflict, match="Schema refusal-v1 is already registered with different"):
        make_campaign(session, changed, name="c2")
    bumped = schema.model_copy(update={"version": 2, "description": "edited"})
    assert (
        make_campaign(session, bumped, name="c3").schema_id
        != make_campaign(session, schema, name="c4").schema_id
    )


def test_users(session: Session) -> None:
    alice = make_user(session)
    assert alice.password_hash and alice.password_hash.startswith("$argon2")
    assert "correct horse" not in alice.password_hash
    assert verify_password("correct horse", alice.password_hash)
    assert not verify_password("wrong horse", alice.password_hash)
    with pytest.raises(Conflict, match="User `alice` already exists"):
        make_user(session)
    with pytest.raises(ValidationProblem, match="Role `boss` is not one of annotator, lead, admin"):
        make_user(session, name="bob", role="boss")
    with pytest.raises(ValidationProblem, match="at least 8 characters"):
        storage.add_user(session=session, actor=ADMIN, name="carl", password="short")
    assert [u.name for u in storage.list_users(session=session, actor=ADMIN)] == ["alice"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda s, a, c, sc: storage.add_user(session=s, actor=a, name="x", password="12345678"),
            "may not add users",
        ),
        (lambda s, a, c, sc: storage.list_users(session=s, actor=a), "may not list users"),
        (
            lambda s, a, c, sc: storage.create_campaign(session=s, actor=a, name="n", schema=sc),
            "may not create campaigns",
        ),
        (
            lambda s, a, c, sc: storage.import_items(session=s, actor=a, campaign=c, records=[]),
            "may not import items",
        ),
        (
            lambda s, a, c, sc: storage.import_labels(session=s, actor=a, campaign=c, rows=[]),
            "may not import labels",
        ),
        (
            lambda s, a, c, sc: storage.campaign_status(session=s, actor=a, campaign=c),
            "may not see campaign status",
        ),
        (
            lambda s, a, c, sc: storage.set_members(session=s, actor=a, campaign=c, members=[]),
            "may not change campaign membership",
        ),
    ],
)
def test_annotators_cannot_call_admin_functions(
    session: Session,
    schema: LabelSchema,
    call,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    campaign = make_campaign(session, schema)
    annotator = make_user(session)
    with pytest.raises(PermissionDenied, match=message):
        call(session, annotator, campaign, schema)


def test_import_items_all_or_nothing_and_idempotent(session: Session, schema: LabelSchema) -> None:
    c = make_campaign(session, schema)
    records = [make_item(external_id=f"i{n}", prompt=f"Q{n}") for n in range(5)]
    assert storage.import_items(session=session, actor=ADMIN, campaign=c, records=records) == (
        storage.ImportResult(added=5, unchanged=0)
    )
    again = storage.import_items(session=session, actor=ADMIN, campaign=c, records=records)
    assert again == storage.ImportResult(added=0, unchanged=5)
    changed = [make_item(external_id="new", prompt="N"), make_item(external_id="i3", prompt="X")]
    changed[1].line = 7
    with pytest.raises(ImportProblem) as exc:
        storage.import_items(
            session=session, actor=ADMIN, campaign=c, records=changed, source="f.csv"
        )
    assert exc.value.problems == [
        "f.csv:7: field `id`: item `i3` is already in campaign `c1` with different content"
    ]
    count = session.exec(select(func.count()).select_from(Item)).one()
    assert count == 5


def _label_rows(*rows: tuple[str, str, str, str]) -> list[LabelRow]:
    return [LabelRow(n + 2, *r) for n, r in enumerate(rows)]


def test_import_labels_and_status(session: Session, schema: LabelSchema) -> None:
    c = make_campaign(session, schema)
    storage.import_items(
        session=session,
        actor=ADMIN,
        campaign=c,
        records=[make_item(external_id=f"i{n}") for n in range(3)],
    )
    rows = _label_rows(
        ("i0", "ann1", "observed_action", "refuse"),
        ("i0", "ann1", "failure_categories", ""),
        ("i0", "ann2", "observed_action", "answer"),
        ("i1", "ann1", "observed_action", "answer"),
        ("i1", "ann2", "failure_categories", "over_refusal;grounding_failure"),
    )
    result = storage.import_labels(session=session, actor=ADMIN, campaign=c, rows=rows)
    assert result.annotations_added == 4 and result.users_created == ["ann1", "ann2"]
    anns = {(a.item_id, a.user_id): a.labels for a in session.exec(select(Annotation)).all()}
    assert len(anns) == 4
    first = next(v for v in anns.values() if v.get("observed_action") == "refuse")
    assert first == {"observed_action": "refuse", "failure_categories": []}
    assert session.exec(select(func.count()).select_from(AnnotationHistory)).one() == 4
    again = storage.import_labels(session=session, actor=ADMIN, campaign=c, rows=rows)
    assert (again.annotations_added, again.unchanged) == (0, 4)
    status = storage.campaign_status(session=session, actor=ADMIN, campaign=c)
    assert (status.items, status.annotations, status.annotators, status.complete_items) == (
        3,
        4,
        2,
        2,
    )
    more = storage.import_labels(
        session=session,
        actor=ADMIN,
        campaign=c,
        rows=_label_rows(("i0", "ann1", "right_action", "answer")),
    )
    assert more.annotations_updated == 1


def test_machine_annotators_are_kept_apart(session: Session, schema: LabelSchema) -> None:
    c = make_campaign(session, schema)
    storage.import_items(session=session, actor=ADMIN, campaign=c, records=[make_item()])
    storage.import_labels(
        session=session,
        actor=ADMIN,
        campaign=c,
        rows=_label_rows(("item-1", "judge", "observed_action", "refuse")),
        machine=True,
    )
    judge = session.exec(select(User).where(User.name == "judge")).one()
    assert judge.is_machine and judge.password_hash is None
    status = storage.campaign_status(session=session, actor=ADMIN, campaign=c)
    assert (status.annotations, status.machine_annotations, status.machine_annotators) == (0, 1, 1)
    with pytest.raises(ImportProblem, match="already exists as an automatic judge"):
        storage.import_labels(
            session=session,
            actor=ADMIN,
            campaign=c,
            rows=_label_rows(("item-1", "judge", "intent", "benign")),
        )


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            ("nope", "a", "intent", "benign"),
            "f.csv:2: field `item_id`: no item `nope` in campaign `c1`",
        ),
        (("item-1", "a", "mood", "x"), "f.csv:2: field `field`: `mood` is not a field of schema"),
        (
            ("item-1", "a", "intent", "evil"),
            "f.csv:2: field `value`: `evil` is not an allowed intent value "
            "(benign, ambiguous, harmful); map it with --values",
        ),
        (
            ("item-1", "a", "failure_categories", "over_refusal;rude"),
            "f.csv:2: field `value`: `rude` is not an allowed failure_categories value",
        ),
    ],
)
def test_bad_label_rows_change_nothing(
    session: Session, schema: LabelSchema, row: tuple[str, str, str, str], message: str
) -> None:
    c = make_campaign(session, schema)
    storage.import_items(session=session, actor=ADMIN, campaign=c, records=[make_item()])
    good = ("item-1", "b", "intent", "benign")
    with pytest.raises(ImportProblem) as exc:
        storage.import_labels(
            session=session,
            actor=ADMIN,
            campaign=c,
            rows=[LabelRow(2, *row), LabelRow(3, *good)],
            source="f.csv",
        )
    assert exc.value.problems[0].startswith(message)
    assert session.exec(select(func.count()).select_from(Annotation)).one() == 0
    assert session.exec(select(func.count()).select_from(User)).one() == 0


def test_conflicting_labels_are_reported_not_overwritten(
    session: Session, schema: LabelSchema
) -> None:
    c = make_campaign(session, schema)
    storage.import_items(session=session, actor=ADMIN, campaign=c, records=[make_item()])
    storage.import_labels(
        session=session,
        actor=ADMIN,
        campaign=c,
        rows=_label_rows(("item-1", "a", "intent", "benign")),
    )
    with pytest.raises(ImportProblem) as exc:
        storage.import_labels(
            session=session,
            actor=ADMIN,
            campaign=c,
            rows=_label_rows(("item-1", "a", "intent", "harmful")),
            source="g.csv",
        )
    assert exc.value.problems == [
        "g.csv:2: field `value`: a already has intent = benign for item `item-1` in the database "
        "(this file says harmful)"
    ]
    with pytest.raises(
        ImportProblem, match="z already gave intent = benign for item `item-1` on line 2"
    ):
        storage.import_labels(
            session=session,
            actor=ADMIN,
            campaign=c,
            rows=_label_rows(
                ("item-1", "z", "intent", "benign"), ("item-1", "z", "intent", "harmful")
            ),
        )


def test_save_annotation_keeps_history(session: Session, schema: LabelSchema) -> None:
    c = make_campaign(session, schema)
    storage.import_items(session=session, actor=ADMIN, campaign=c, records=[make_item()])
    alice = make_user(session)
    item = session.exec(select(Item)).one()
    storage.save_annotation(session=session, user=alice, item=item, labels={"intent": "benign"})
    storage.save_annotation(session=session, user=alice, item=item, labels={"intent": "harmful"})
    history = session.exec(select(AnnotationHistory).order_by(AnnotationHistory.id)).all()
    assert [(h.action, h.labels["intent"]) for h in history] == [
        ("create", "benign"),
        ("edit", "harmful"),
    ]
    [ann] = session.exec(select(Annotation)).all()
    assert ann.labels == {"intent": "harmful"}


def test_restricted_campaigns(session: Session, schema: LabelSchema) -> None:
    alice = make_user(session)
    bob = make_user(session, name="bob")
    lead = make_user(session, name="lena", role="lead")
    open_c = make_campaign(session, schema, name="open")
    closed = make_campaign(session, schema, name="closed", members=["alice"])
    assert closed.restricted
    names = lambda u: [c.name for c in storage.list_campaigns(session=session, actor=u)]  # noqa: E731
    assert names(alice) == ["closed", "open"]
    assert names(bob) == ["open"]
    assert names(lead) == ["closed", "open"]
    assert storage.can_label(session=session, user=alice, campaign=closed)
    assert not storage.can_label(session=session, user=bob, campaign=closed)
    assert storage.can_label(session=session, user=bob, campaign=open_c)


def test_session_scope_rolls_back_on_error(engine: Engine, schema: LabelSchema) -> None:
    from annotate.storage.db import session_scope

    with pytest.raises(ImportProblem), session_scope(engine) as s:
        c = make_campaign(s, schema)
        storage.import_items(session=s, actor=ADMIN, campaign=c, records=[make_item()])
        raise ImportProblem(["boom"])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM item")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM campaign")).scalar() == 0
