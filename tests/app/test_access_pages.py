"""Every page as every kind of user, through AppTest; and an annotator reaching for others' labels.

A page a role may not use must not show its content, whichever way it is reached: the pages
run here directly (as if navigation had been bypassed), with the query parameters and
session-state keys a curious annotator would try. Bob's labels carry marker strings; Alice
must never see them, however she asks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import streamlit as st
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from annotate import storage
from annotate.accounts import sessions
from annotate.app import context, lead
from annotate.app.pages import my_work
from annotate.schema import LabelSchema
from annotate.storage import db
from annotate.storage.models import Annotation, Campaign, Item, User
from tests.conftest import ADMIN, full_labels, make_item
from tests.test_app_support import (
    AppDB,
    label_form,
    page_app,
    password_hash,
    seed_app_db,
    texts,
)

BOB_SECRET = "BOB-SECRET-RATIONALE"
RESTRICTED_SECRET = "RESTRICTED-PROMPT-TEXT"

# (module, function, least role, does the page show its content?)
PAGES: list[tuple[str, str, str]] = [
    ("label", "render", "annotator"),
    ("my_work", "render", "annotator"),
    ("review", "render", "lead"),
    ("dashboard", "render", "lead"),
    ("adjudicate", "render", "lead"),
    ("models", "render", "lead"),
    ("admin", "render_users", "admin"),
    ("admin", "render_campaigns", "admin"),
]
USERS = {
    "annotator": "alice",
    "lead": "lena",
    "admin": "adam",
    "machine": "judge",
    "inactive": "ivy",
}
ALLOWED = {
    "annotator": {"annotator", "lead", "admin"},
    "lead": {"lead", "admin"},
    "admin": {"admin"},
}


@pytest.fixture(scope="module")
def app_db(tmp_path_factory: pytest.TempPathFactory, schema: LabelSchema) -> Iterator[AppDB]:
    """demo (open): bob and alice labeled it-00, alice it-01; secret (bob only): s-00."""
    url = f"sqlite:///{tmp_path_factory.mktemp('pages') / 'pages.db'}"
    engine = db.make_engine(url)
    db.migrate(engine)
    engine.dispose()
    mp = pytest.MonkeyPatch()
    seeded = seed_app_db(url, mp, schema)
    with db.session_scope(seeded.engine) as s:
        for name, role, machine, active in (
            ("judge", "annotator", True, True),
            ("ivy", "lead", False, False),
        ):
            user = storage.add_user(
                session=s, actor=ADMIN, name=name, role=role, is_machine=machine
            )
            user.password_hash = password_hash()
            user.active = active
            s.add(user)
            seeded.users[name] = user
        items = {i.external_id: i for i in s.exec(select(Item)).all()}
        bob, alice = seeded.users["bob"], seeded.users["alice"]
        storage.save_annotation(
            session=s,
            user=bob,
            item=items["it-00"],
            labels=full_labels(right_action="refuse", rationale=BOB_SECRET),
            flagged=True,
            flag_note=BOB_SECRET + "-NOTE",
        )
        for ext in ("it-00", "it-01"):
            storage.save_annotation(session=s, user=alice, item=items[ext], labels=full_labels())
        secret = storage.create_campaign(
            session=s, actor=ADMIN, name="secret", schema=schema, members=["bob"], seed=1
        )
        storage.import_items(
            session=s,
            actor=ADMIN,
            campaign=secret,
            records=[make_item(external_id="s-00", prompt=RESTRICTED_SECRET)],
        )
        s_item = s.exec(select(Item).where(Item.external_id == "s-00")).one()
        storage.save_annotation(
            session=s, user=bob, item=s_item, labels=full_labels(rationale=BOB_SECRET + "-2")
        )
    try:
        yield seeded
    finally:
        seeded.engine.dispose()
        db.dispose_shared()
        st.cache_resource.clear()
        mp.undo()


def everything(at: AppTest) -> str:
    """All text a run shows: alerts, markdown, captions, metrics, tables, HTML, inputs."""
    parts = texts(at.markdown) + texts(at.caption) + texts(at.error) + texts(at.info)
    parts += texts(at.warning) + texts(at.success) + texts(at.title) + texts(at.subheader)
    parts += [str(m.value) for m in at.metric]
    parts += [df.value.to_csv() for df in at.dataframe]
    parts += [str(h.proto.body) for h in at.get("html")]
    parts += [str(t.value) for t in at.text_area] + [str(t.value) for t in at.text_input]
    parts += [str(j.proto.body) for j in at.get("json")]
    return "\n".join(parts)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shows_content(module: str, function: str, at: AppTest) -> bool:
    """Whether the page drew what it is for (not just its title and an error)."""
    if module == "label":
        return label_form(at) is not None
    if module == "my_work":
        return any(t.key == "mw-search" for t in at.text_input)
    if module == "dashboard":
        return len(at.metric) > 0
    if module == "adjudicate":
        return any("What the annotators said" in m for m in texts(at.markdown))
    if module == "models":  # the release picker, or why there is none to pick
        return texts(at.title) == ["Models"] and bool(at.selectbox or at.info)
    return len(at.dataframe) > 0  # review, users, campaigns


@pytest.mark.parametrize("role", list(USERS))
@pytest.mark.parametrize(
    ("module", "function", "least"), PAGES, ids=[f"{m}.{f}" for m, f, _ in PAGES]
)
def test_every_page_as_every_role(
    app_db: AppDB, module: str, function: str, least: str, role: str
) -> None:
    at = page_app(app_db, USERS[role], module, function)
    # Reached directly with the parameters a link would carry.
    at.query_params["campaign"] = "demo"
    at.query_params["item"] = "it-00"
    run(at)
    text = everything(at)
    if role in ALLOWED[least]:
        assert not at.error, texts(at.error)
        assert shows_content(module, function, at), text
    else:
        assert not shows_content(module, function, at), text
        assert at.error, "a refused page must say why"
        assert not at.dataframe and not at.metric
        assert BOB_SECRET not in text
        # No form to act with either: labeling, adjudicating, bulk-accepting.
        forms = ("opt-", "adj-save", "rev-next", "rev-bulk", "mw-save")
        assert not any(b.key and b.key.startswith(forms) for b in at.button)
        assert label_form(at) is None


# -- an annotator reaching for someone else's labels -------------------------------------------


def bobs_annotation(app_db: AppDB, ext: str = "it-00") -> Annotation:
    with db.session_scope(app_db.engine) as s:
        return s.exec(
            select(Annotation)
            .join(Item, Item.id == Annotation.item_id)  # type: ignore[arg-type]
            .where(Annotation.user_id == app_db.users["bob"].id, Item.external_id == ext)
        ).one()


def assert_nothing_of_bobs(at: AppTest) -> None:
    text = everything(at)
    assert BOB_SECRET not in text
    assert RESTRICTED_SECRET not in text
    assert "bob" not in text.lower().replace("bob-secret", "")


@pytest.mark.parametrize(
    ("module", "query"),
    [
        ("my_work", {"item": "it-00"}),
        ("my_work", {"annotation": "BOBS"}),
        ("my_work", {"campaign": "secret"}),
        ("label", {"campaign": "secret"}),
        ("label", {"campaign": "demo", "item": "it-00"}),
        ("adjudicate", {"campaign": "demo", "item": "it-00"}),
        ("adjudicate", {"campaign": "secret", "item": "s-00"}),
        ("review", {"campaign": "secret"}),
        ("dashboard", {"campaign": "demo"}),
    ],
    ids=lambda v: v if isinstance(v, str) else "&".join(f"{k}={x}" for k, x in v.items()),
)
def test_changing_the_url_shows_no_one_elses_labels(
    app_db: AppDB, module: str, query: dict[str, str]
) -> None:
    at = page_app(app_db, "alice", module)
    for key, value in query.items():
        at.query_params[key] = str(bobs_annotation(app_db).id) if value == "BOBS" else value
    run(at)
    assert_nothing_of_bobs(at)
    if module == "my_work":
        # Her own list, whatever the URL says: two labels, both hers.
        assert any("2 labeled items" in c for c in texts(at.caption))


def test_session_state_cannot_open_bobs_label_in_my_work(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "my_work")
    at.session_state[my_work.EDIT_KEY] = bobs_annotation(app_db).id
    run(at)
    assert any("another annotator's" in e for e in texts(at.error))
    assert_nothing_of_bobs(at)
    assert all(b.key != "mw-save" for b in at.button)


def test_session_state_cannot_open_an_item_for_adjudication(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "adjudicate")
    at.session_state[lead.TARGET_KEY] = {"campaign": "demo", "item": "it-00"}
    run(at)
    assert any("needs the lead role" in e for e in texts(at.error))
    assert_nothing_of_bobs(at)


def test_a_poisoned_campaign_cache_does_not_open_a_restricted_campaign(app_db: AppDB) -> None:
    with db.session_scope(app_db.engine) as s:
        secret = storage.get_campaign(session=s, name="secret")
    at = page_app(app_db, "alice", "label")
    # The label page caches the campaigns it offers in session state; forge that cache.
    at.session_state["annotate.campaigns"] = {
        "user": app_db.users["alice"].id,
        "at": time.time() + 3600,
        "value": [secret],
    }
    at.query_params["campaign"] = "secret"
    run(at)
    assert any("not a member of campaign `secret`" in e for e in texts(at.error))
    assert label_form(at) is None
    assert_nothing_of_bobs(at)


@pytest.mark.parametrize(
    "forge",
    [
        # Bob's id in a token signed with some other key.
        lambda db_: sessions.issue_token(key="guessed-key" * 4, user=db_.users["bob"]),
        # Alice's real token with its payload changed to Bob's id, signature kept.
        lambda db_: _swap_payload(db_.token("alice"), db_.token("bob")),
        lambda db_: "",
    ],
    ids=["other-key", "swapped-payload", "empty"],
)
def test_a_forged_session_token_signs_nobody_in(app_db: AppDB, forge: Any) -> None:
    at = AppTest.from_function(_whoami, default_timeout=30)
    at.session_state[context.SESSION_TOKEN_KEY] = forge(app_db)
    run(at)
    assert texts(at.markdown) == ["nobody"]


def _swap_payload(mine: str, theirs: str) -> str:
    """`theirs`'s payload with `mine`'s signature (itsdangerous: payload.signature)."""
    return theirs.rsplit(".", 1)[0] + "." + mine.rsplit(".", 1)[1]


def _whoami() -> None:
    import streamlit as st

    from annotate.app import context

    settings = context.load_settings()
    user, _ = context.current_user(settings, context.get_engine(settings))
    st.markdown(user.name if user is not None else "nobody")


def test_the_page_grid_names_real_users(app_db: AppDB) -> None:
    with db.session_scope(app_db.engine) as s:
        names = {u.name: u for u in s.exec(select(User)).all()}
        restricted = s.exec(select(Campaign).where(Campaign.name == "secret")).one()
    assert set(USERS.values()) <= set(names)
    assert names["judge"].is_machine and not names["ivy"].active
    assert restricted.restricted
