"""Helpers for the AppTest suites (no tests here): a seeded database and signed-in apps."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pytest
import streamlit as st
from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from annotate import storage
from annotate.accounts import sessions
from annotate.accounts.auth import hash_password
from annotate.app import context
from annotate.schema import LabelSchema
from annotate.storage import db
from annotate.storage.models import Campaign, User
from tests.conftest import ADMIN, ROOT, make_item

ENTRY = ROOT / "annotate" / "app" / "entry" / "streamlit_app.py"
SECRET = "test-signing-key-" + "x" * 32
PASSWORD = "correct horse"
TIMEOUT = 30.0


@lru_cache(maxsize=1)
def password_hash() -> str:
    """One argon2 hash for every test user (hashing costs ~50 ms each)."""
    return hash_password(PASSWORD)


@dataclass
class AppDB:
    """A seeded database the app is pointed at."""

    url: str
    engine: Engine
    campaign: Campaign
    users: dict[str, User] = field(default_factory=dict)

    def token(self, name: str) -> str:
        """A signed session token for user `name`."""
        return sessions.issue_token(key=SECRET, user=self.users[name])


def seed_app_db(
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    schema: LabelSchema,
    *,
    items: int = 4,
    overlap: int = 2,
    extra_items: list[dict[str, Any]] | None = None,
    campaign_kw: dict[str, Any] | None = None,
) -> AppDB:
    """Users alice and bob (annotators), lena (lead), adam (admin); campaign `demo`."""
    monkeypatch.setenv("ANNOTATE_DATABASE_URL", db_url)
    monkeypatch.setenv("ANNOTATE_SECRET_KEY", SECRET)
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s:
        users = {}
        for name, role in (
            ("alice", "annotator"),
            ("bob", "annotator"),
            ("lena", "lead"),
            ("adam", "admin"),
        ):
            user = storage.add_user(session=s, actor=ADMIN, name=name, role=role)
            user.password_hash = password_hash()
            s.add(user)
            users[name] = user
        campaign = storage.create_campaign(
            session=s,
            actor=ADMIN,
            name="demo",
            schema=schema,
            overlap=overlap,
            guidelines="Judge the **request**, not its trigger words.",
            seed=3,
            **(campaign_kw or {}),
        )
        records = [
            make_item(external_id=f"it-{i:02d}", prompt=f"Prompt number {i}") for i in range(items)
        ]
        records += [make_item(**kw) for kw in extra_items or []]
        storage.import_items(session=s, actor=ADMIN, campaign=campaign, records=records)
    return AppDB(url=db_url, engine=engine, campaign=campaign, users=users)


def page_script(module: str, function: str) -> None:
    """AppTest script rendering one page for the signed-in user (no navigation).

    AppTest.switch_page() only reaches file-based pages, and ours are callables registered with
    st.navigation, so each page is tested through this harness; the navigation itself is
    tested on the real entry script.
    """
    import importlib

    import streamlit as st

    from annotate.app import context

    settings = context.load_settings()
    engine = context.get_engine(settings)
    user, why = context.current_user(settings, engine)
    if user is None:
        st.error(why or "not signed in")
        return
    ctx = context.AppContext(settings=settings, engine=engine, user=user)
    with context.guard():
        getattr(importlib.import_module(f"annotate.app.pages.{module}"), function)(ctx)


def page_app(app_db: AppDB, user: str, module: str, function: str = "render") -> AppTest:
    """An AppTest of page `module.function` signed in as `user` (not run yet)."""
    at = AppTest.from_function(page_script, args=(module, function), default_timeout=TIMEOUT)
    at.session_state[context.SESSION_TOKEN_KEY] = app_db.token(user)
    return at


def entry_app(token: str | None = None) -> AppTest:
    """An AppTest of the real entry script, optionally signed in with `token`."""
    at = AppTest.from_file(ENTRY, default_timeout=TIMEOUT)
    if token is not None:
        at.session_state[context.SESSION_TOKEN_KEY] = token
    return at


def app_db_fixture(
    db_url: str, monkeypatch: pytest.MonkeyPatch, schema: LabelSchema, **kw: Any
) -> Iterator[AppDB]:
    """Body of each module's `app_db` fixture: seed, yield, then release the app's engines."""
    seeded = seed_app_db(db_url, monkeypatch, schema, **kw)
    try:
        yield seeded
    finally:
        seeded.engine.dispose()
        # The app keeps one engine per URL for the process; close this test's for good.
        db.dispose_shared()
        st.cache_resource.clear()


def texts(elements: Any) -> list[str]:
    """The `.value` of every element in an AppTest element list."""
    return [str(e.value) for e in elements]


def click(at: AppTest, key: str) -> AppTest:
    """Click the button with widget key `key` and rerun."""
    return at.button(key=key).click().run()


def choose(at: AppTest, *pairs: tuple[str, str]) -> AppTest:
    """Click option buttons (field, value) one after another."""
    for name, value in pairs:
        click(at, f"opt-{name}-{value}")
    return at
