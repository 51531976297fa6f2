"""The entry script through AppTest: sign-in gate, navigation by role, sign-out, OIDC."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlmodel import Session, select

from annotate.accounts import sessions
from annotate.app import main
from annotate.schema import LabelSchema
from annotate.storage.models import User
from tests import test_app_support as support
from tests.test_app_support import AppDB, entry_app, texts


@pytest.fixture
def app_db(db_url: str, monkeypatch: pytest.MonkeyPatch, schema: LabelSchema) -> Iterator[AppDB]:
    yield from support.app_db_fixture(db_url, monkeypatch, schema)


def test_visitors_who_are_not_signed_in_see_the_gate(app_db: AppDB) -> None:
    at = entry_app().run()
    assert not at.exception
    assert "Sign in to label." in texts(at.markdown)
    assert [b.key for b in at.button] == ["go-signin"]
    at.button(key="go-signin").click().run()  # st.logout(): the browser is sent to sign in
    assert not at.exception


def test_a_bad_token_says_why(app_db: AppDB) -> None:
    at = entry_app("not-a-token").run()
    assert texts(at.warning) == ["Your sign-in is not valid here; sign in again"]


def test_an_annotator_lands_on_the_label_page(app_db: AppDB) -> None:
    at = entry_app(app_db.token("alice")).run()
    assert not at.exception and not at.error
    assert any(re.fullmatch(r"item `#[0-9a-f]{10}`", c) for c in texts(at.caption))
    assert "Signed in as `alice` · annotator" in texts(at.sidebar.caption)
    assert at.sidebar.button(key="signout")


def test_reruns_stay_on_the_page(app_db: AppDB) -> None:
    at = entry_app(app_db.token("alice")).run()
    first = [c for c in texts(at.caption) if c.startswith("item ")]
    at.run()
    assert [c for c in texts(at.caption) if c.startswith("item ")] == first


def test_sign_out_ends_the_session_on_the_server(app_db: AppDB) -> None:
    token = app_db.token("alice")
    at = entry_app(token).run()
    at.sidebar.button(key="signout").click().run()
    with Session(app_db.engine) as s:
        alice = s.get(User, app_db.users["alice"].id)
        assert alice is not None and alice.session_generation == 1
        with pytest.raises(sessions.AuthError, match="signed out"):
            sessions.read_token(session=s, key=support.SECRET, token=token, max_age_s=3600)


def test_deactivated_users_are_stopped_at_the_next_rerun(app_db: AppDB) -> None:
    at = entry_app(app_db.token("alice")).run()
    with Session(app_db.engine) as s:
        alice = s.exec(select(User).where(User.name == "alice")).one()
        alice.active = False
        s.add(alice)
        s.commit()
    at.run()
    assert texts(at.warning) == ["This account can no longer sign in; ask an admin"]


@pytest.mark.parametrize(
    ("role", "lead_pages", "expected"),
    [
        ("annotator", True, ["label", "my_work"]),
        ("lead", True, ["label", "my_work", "review", "dashboard", "models", "adjudicate"]),
        ("lead", False, ["label", "my_work"]),
        (
            "admin",
            True,
            [
                "label",
                "my_work",
                "review",
                "dashboard",
                "models",
                "adjudicate",
                "users",
                "campaigns",
            ],
        ),
        ("admin", False, ["label", "my_work", "users", "campaigns"]),
    ],
)
def test_navigation_by_role(
    monkeypatch: pytest.MonkeyPatch, role: str, lead_pages: bool, expected: list[str]
) -> None:
    ours = {"label", "my_work", "admin"}
    monkeypatch.setattr(main, "page_exists", lambda m: lead_pages or m in ours)
    user = User(id=1, name="x", role=role)
    assert [p.name for p in main.pages_for(user)] == expected


def test_the_lead_pages_are_found_once_they_exist() -> None:
    assert main.page_exists("label") and main.page_exists("admin")
    assert not main.page_exists("no_such_page")


def test_oidc_identities_sign_in_when_configured(app_db: AppDB) -> None:
    at = entry_app()
    at.secrets["auth"] = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback"}
    at.user = {"is_logged_in": True, "email": "alice"}
    at.run()
    assert "Signed in as `alice` · annotator" in texts(at.sidebar.caption)


def test_an_unknown_oidc_identity_is_told_to_ask_an_admin(app_db: AppDB) -> None:
    at = entry_app()
    at.secrets["auth"] = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback"}
    at.user = {"is_logged_in": True, "email": "stranger@example.org"}
    at.run()
    assert any("No annotate user for `stranger@example.org`" in w for w in texts(at.warning))
    assert "sso" in [b.key for b in at.button]


def test_an_unreachable_database_is_an_error_message_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: support.Any
) -> None:
    monkeypatch.setenv("ANNOTATE_DATABASE_URL", f"sqlite:///{tmp_path}/missing/dir/x.db")
    monkeypatch.setenv("ANNOTATE_SECRET_KEY", support.SECRET)
    token = sessions.issue_token(key=support.SECRET, user=User(id=1, name="alice"))
    at = entry_app(token).run()
    assert not at.exception
    assert any("database is unavailable" in e for e in texts(at.error))
