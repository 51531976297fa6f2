"""Admin pages through AppTest: users, campaigns, browser import with all-or-nothing errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import Session, select

from annotate import storage
from annotate.schema import LabelSchema
from annotate.storage.models import Campaign, Item, User
from tests import test_app_support as support
from tests.test_app_support import AppDB, page_app, texts


@pytest.fixture
def app_db(db_url: str, monkeypatch: pytest.MonkeyPatch, schema: LabelSchema) -> Iterator[AppDB]:
    yield from support.app_db_fixture(db_url, monkeypatch, schema, items=2)


def user(app_db: AppDB, name: str) -> User | None:
    with Session(app_db.engine) as s:
        return s.exec(select(User).where(User.name == name)).first()


def test_users_page_lists_and_adds_users(app_db: AppDB) -> None:
    at = page_app(app_db, "adam", "admin", "render_users").run()
    assert not at.exception and not at.error
    names = at.dataframe[0].value["name"].tolist()
    assert names == ["adam", "alice", "bob", "lena"]
    form = at.get("form")[0]
    form.text_input[0].input("dora")
    form.selectbox[0].select("lead")
    form.text_input[1].input("long enough pw")
    form.button[0].click().run()
    added = user(app_db, "dora")
    assert added is not None and added.role == "lead" and added.password_hash


def test_adding_a_user_with_a_short_password_shows_the_rule(app_db: AppDB) -> None:
    at = page_app(app_db, "adam", "admin", "render_users").run()
    form = at.get("form")[0]
    form.text_input[0].input("dora")
    form.text_input[1].input("short")
    form.button[0].click().run()
    assert any("at least 8 characters" in e for e in texts(at.error))
    assert user(app_db, "dora") is None


def test_role_and_sign_in_can_be_changed(app_db: AppDB) -> None:
    at = page_app(app_db, "adam", "admin", "render_users").run()
    at.selectbox(key="admin-user").select("bob").run()
    form = at.get("form")[1]
    form.selectbox[0].select("lead")
    form.toggle[0].set_value(False)
    form.button[0].click().run()
    bob = user(app_db, "bob")
    assert bob is not None and bob.role == "lead" and not bob.active


def test_admins_cannot_demote_themselves(app_db: AppDB) -> None:
    at = page_app(app_db, "adam", "admin", "render_users").run()
    at.selectbox(key="admin-user").select("adam").run()
    form = at.get("form")[1]
    form.selectbox[0].select("annotator")
    form.button[0].click().run()
    assert any("cannot change your own role" in e for e in texts(at.error))


def test_campaigns_page_shows_progress_and_creates_a_campaign(app_db: AppDB) -> None:
    at = page_app(app_db, "adam", "admin", "render_campaigns").run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert table["campaign"].tolist() == ["demo"] and table["items"].tolist() == [2]
    form = at.get("form")[0]
    form.text_input[0].input("second")
    form.number_input[0].set_value(3)
    form.text_area[0].input("Read **carefully**.")
    form.multiselect[0].select("alice")
    form.text_input[1].input("42")
    form.button[0].click().run()
    assert not at.error
    with Session(app_db.engine) as s:
        created = s.exec(select(Campaign).where(Campaign.name == "second")).one()
        members = storage.campaign_members(session=s, actor=app_db.users["adam"], campaign=created)
    assert (created.overlap, created.seed, created.restricted) == (3, 42, True)
    assert created.guidelines == "Read **carefully**." and members == ["alice"]


def test_browser_import_is_all_or_nothing_and_names_the_file(app_db: AppDB) -> None:
    at = page_app(app_db, "adam", "admin", "render_campaigns").run()
    bad = b"id,prompt,response\nn1,hello,fine\nn2,hello,\n"
    form = at.get("form")[1]
    form.file_uploader[0].set_value(("batch.csv", bad, "text/csv"))
    form.button[0].click().run()
    errors = " ".join(texts(at.error))
    assert "Nothing was imported" in errors and "batch.csv:3" in errors
    assert "annotate-upload-" not in errors
    with Session(app_db.engine) as s:
        assert len(s.exec(select(Item)).all()) == 2
    good = b"id,question,response\nn1,hello,fine\nn2,bye,ok\n"
    form = at.get("form")[1]
    form.file_uploader[0].set_value(("batch.csv", good, "text/csv"))
    form.text_area[0].input("prompt=question")
    form.text_area[1].input("model=model-z")
    form.button[0].click().run()
    assert any("Imported 2 items into demo" in s for s in texts(at.success))
    with Session(app_db.engine) as s:
        new = s.exec(select(Item).where(Item.external_id == "n2")).one()
    assert new.prompt == "bye" and new.model == "model-z"


def test_lapsed_leases_can_be_released(app_db: AppDB) -> None:
    at = page_app(app_db, "adam", "admin", "render_campaigns").run()
    at.button(key=f"expire-{app_db.campaign.id}").click().run()
    assert not at.error and not at.exception


@pytest.mark.parametrize("who", ["alice", "lena"])
def test_non_admins_get_a_permission_error_not_a_page(app_db: AppDB, who: str) -> None:
    at = page_app(app_db, who, "admin", "render_users").run()
    assert any("may not list users" in e for e in texts(at.error))
    assert not at.dataframe


def test_a_failed_add_user_keeps_what_was_typed(app_db: AppDB) -> None:
    at = page_app(app_db, "adam", "admin", "render_users").run()
    form = at.get("form")[0]
    form.text_input[0].input("dora")
    form.selectbox[0].select("lead")
    form.text_input[1].input("short")
    form.button[0].click().run()
    assert any("at least 8 characters" in e for e in texts(at.error))
    form = at.get("form")[0]
    assert form.text_input[0].value == "dora" and form.selectbox[0].value == "lead"
    form.text_input[1].input("long enough pw")
    form.button[0].click().run()
    assert not any("User name" in e for e in texts(at.error)), texts(at.error)
    added = user(app_db, "dora")
    assert added is not None and added.role == "lead"
    # After a success the form is empty again, ready for the next user.
    assert at.get("form")[0].text_input[0].value == ""


def test_campaigns_table_counts_imported_items_at_once(app_db: AppDB) -> None:
    at = page_app(app_db, "adam", "admin", "render_campaigns").run()
    assert at.dataframe[0].value["items"].tolist() == [2]
    form = at.get("form")[1]
    form.file_uploader[0].set_value(
        ("more.csv", b"id,prompt,response\nm1,a,b\nm2,c,d\n", "text/csv")
    )
    form.button[0].click().run()
    assert any("Imported 2 items into demo" in s for s in texts(at.success))
    assert at.dataframe[0].value["items"].tolist() == [4]


def test_browser_import_refuses_label_columns_until_they_are_dropped(app_db: AppDB) -> None:
    at = page_app(app_db, "adam", "admin", "render_campaigns").run()
    labeled = b"id,prompt,response,final_label,verdict\nx1,a,b,yes,answer\nx2,c,d,no,refuse\n"
    form = at.get("form")[1]
    form.file_uploader[0].set_value(("labeled.csv", labeled, "text/csv"))
    form.button[0].click().run()
    errors = " ".join(texts(at.error))
    assert "labeled.csv" in errors and "annotate-upload-" not in errors
    assert "final_label" in errors and "verdict" in errors
    assert "import-labels" in errors and "Drop columns" in errors
    with Session(app_db.engine) as s:
        assert len(s.exec(select(Item)).all()) == 2
    form = at.get("form")[1]
    drop = form.multiselect[0]
    assert drop.label == "Drop columns" and drop.options == ["final_label", "verdict"]
    drop.select("final_label").select("verdict")
    if not form.file_uploader[0].value:  # the file stays chosen; set again if AppTest forgot it
        form.file_uploader[0].set_value(("labeled.csv", labeled, "text/csv"))
    form.button[0].click().run()
    assert not at.error, texts(at.error)
    assert any("Imported 2 items into demo" in s for s in texts(at.success))
    assert at.dataframe[0].value["items"].tolist() == [4]
    with Session(app_db.engine) as s:
        item = s.exec(select(Item).where(Item.external_id == "x1")).one()
    assert "final_label" not in item.meta and "verdict" not in item.meta
