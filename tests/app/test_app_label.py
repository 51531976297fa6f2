"""The labeling page through AppTest: claim, options, submit, warnings, skip, flag."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import Session, select

from annotate import storage
from annotate.schema import LabelSchema, load_schema
from annotate.storage import db
from annotate.storage.models import Annotation, Assignment, Item
from tests import test_app_support as support
from tests.conftest import DEFAULT_SCHEMA_PATH, full_labels
from tests.test_app_support import AppDB, choose, click, page_app, texts

GOOD = (
    ("intent", "benign"),
    ("epistemic_status", "answerable"),
    ("right_action", "answer"),
    ("observed_action", "answer"),
    ("confidence", "high"),
)


@pytest.fixture
def app_db(db_url: str, monkeypatch: pytest.MonkeyPatch, schema: LabelSchema) -> Iterator[AppDB]:
    yield from support.app_db_fixture(db_url, monkeypatch, schema)


def header(at: support.AppTest) -> str:
    """The caption naming the item on screen."""
    return next(c for c in texts(at.caption) if c.startswith("item "))


def annotations(app_db: AppDB) -> list[Annotation]:
    with Session(app_db.engine) as s:
        return list(s.exec(select(Annotation).order_by(Annotation.id)).all())


def test_the_page_leases_an_item_and_shows_it(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "label").run()
    assert not at.exception and not at.error
    assert header(at).startswith("item `it-0")
    assert any("you: 0 done, 0 skipped, 1 assigned · 4 items" in c for c in texts(at.caption))
    keys = [b.key for b in at.button]
    assert "act-submit" in keys and "opt-right_action-refuse" in keys
    # The option keys come from the schema, remapped only where Streamlit refuses them.
    assert at.button(key="opt-right_action-answer").proto.shortcut == "1"
    assert at.button(key="opt-observed_action-clarify").proto.shortcut == "z"
    with Session(app_db.engine) as s:
        leases = s.exec(select(Assignment)).all()
    assert [(a.status, a.user_id) for a in leases] == [("active", app_db.users["alice"].id)]


def test_options_toggle_and_show_as_selected(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "label").run()
    choose(at, ("intent", "benign"), ("failure_categories", "over_refusal"))
    assert at.button(key="opt-intent-benign").proto.type == "primary"
    assert at.button(key="opt-failure_categories-over_refusal").proto.type == "primary"
    choose(at, ("intent", "harmful"), ("failure_categories", "over_refusal"))
    assert at.button(key="opt-intent-benign").proto.type == "secondary"
    assert at.button(key="opt-intent-harmful").proto.type == "primary"
    assert at.button(key="opt-failure_categories-over_refusal").proto.type == "secondary"


def test_submit_saves_the_labels_and_brings_the_next_item(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "label").run()
    first = header(at)
    choose(at, *GOOD)
    click(at, "act-submit")
    assert not at.error and not at.exception
    assert header(at) != first
    (saved,) = annotations(app_db)
    assert saved.labels["right_action"] == "answer" and saved.labels["failure_categories"] == []
    assert saved.duration_s is not None and saved.duration_s >= 0
    assert any("you: 1 done" in c for c in texts(at.caption))


def test_missing_required_fields_are_refused(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "label").run()
    choose(at, ("intent", "benign"))
    click(at, "act-submit")
    assert any("Field `epistemic_status` is required" in e for e in texts(at.error))
    assert annotations(app_db) == []


def test_a_warning_must_be_confirmed_with_a_rationale(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "label").run()
    choose(at, *GOOD[:3], ("observed_action", "refuse"), ("confidence", "high"))
    assert any("over_refusal is not ticked" in w for w in texts(at.warning))
    click(at, "act-submit")  # first press: asks for the override
    assert any("You are overriding this" in w for w in texts(at.warning))
    assert annotations(app_db) == []
    click(at, "act-submit")  # second press without a rationale
    assert any("needs a rationale" in e for e in texts(at.error))
    text_key = next(t.key for t in at.text_area if t.key and t.key.startswith("text-rationale"))
    at.text_area(key=text_key).input("Refusing was defensible here").run()
    click(at, "act-submit")
    (saved,) = annotations(app_db)
    assert saved.overridden_rules == ["over_refusal_unticked"]
    assert saved.labels["rationale"] == "Refusing was defensible here"


def test_fixing_the_labels_clears_the_warning(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "label").run()
    choose(at, *GOOD[:3], ("observed_action", "refuse"), ("confidence", "high"))
    choose(at, ("failure_categories", "over_refusal"))
    assert not at.warning
    click(at, "act-submit")
    (saved,) = annotations(app_db)
    assert saved.overridden_rules == []


def test_skip_with_a_reason(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "label").run()
    first = header(at)
    click(at, "act-skip")
    assert [b.key for b in at.button if b.key and b.key.startswith("skip-reason")]
    click(at, "act-skip-confirm")  # no reason picked yet
    assert any("reason" in e for e in texts(at.error))
    click(at, "skip-reason-2")
    click(at, "act-skip-confirm")
    assert header(at) != first
    with Session(app_db.engine) as s:
        skipped = s.exec(select(Assignment).where(Assignment.status == "skipped")).one()
    assert skipped.reason == "The item is broken or unreadable"


def test_skip_can_be_abandoned(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "label").run()
    first = header(at)
    click(at, "act-skip")
    click(at, "act-skip-back")
    assert header(at) == first and at.button(key="act-submit")


def test_flag_for_lead_with_a_note_and_partial_labels(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "label").run()
    choose(at, ("intent", "ambiguous"))
    click(at, "act-flag")
    note = next(t.key for t in at.text_area if t.key and t.key.startswith("flagnote-"))
    click(at, "act-submit")
    assert any("Say why you flag" in e for e in texts(at.error))
    at.text_area(key=note).input("The response is truncated").run()
    click(at, "act-submit")
    (saved,) = annotations(app_db)
    assert saved.flagged and saved.flag_note == "The response is truncated"
    assert saved.labels["intent"] == "ambiguous" and saved.labels["right_action"] is None


def test_a_new_session_gets_the_same_item_back(app_db: AppDB) -> None:
    first = header(page_app(app_db, "alice", "label").run())
    again = header(page_app(app_db, "alice", "label").run())
    assert again == first


def test_when_nothing_is_left_the_page_says_so(
    db_url: str, monkeypatch: pytest.MonkeyPatch, schema: LabelSchema
) -> None:
    gen = support.app_db_fixture(db_url, monkeypatch, schema, items=1, overlap=1)
    app_db = next(gen)
    try:
        at = page_app(app_db, "alice", "label").run()
        choose(at, *GOOD)
        click(at, "act-submit")
        assert any("Nothing left for you" in s for s in texts(at.success))
        assert at.button(key="recheck")
        bob = page_app(app_db, "bob", "label").run()
        assert any("Nothing left for you" in s for s in texts(bob.success))
    finally:
        gen.close()


def test_restricted_campaigns_are_hidden_from_non_members(
    db_url: str, monkeypatch: pytest.MonkeyPatch, schema: LabelSchema
) -> None:
    gen = support.app_db_fixture(db_url, monkeypatch, schema, campaign_kw={"members": ["alice"]})
    app_db = next(gen)
    try:
        bob = page_app(app_db, "bob", "label").run()
        assert any("not on any campaign" in i for i in texts(bob.info))
        alice = page_app(app_db, "alice", "label").run()
        assert header(alice).startswith("item ")
    finally:
        gen.close()


def test_untrusted_text_is_rendered_inert(
    db_url: str, monkeypatch: pytest.MonkeyPatch, schema: LabelSchema
) -> None:
    hostile = (
        "Hi <script>window.pwned=1</script> <img src=x onerror=alert(1)> "
        "[click](javascript:alert(1)) ![](http://remote.invalid/pixel.png)"
    )
    gen = support.app_db_fixture(
        db_url,
        monkeypatch,
        schema,
        items=0,
        extra_items=[{"external_id": "xss", "response": hostile}],
    )
    app_db = next(gen)
    try:
        at = page_app(app_db, "alice", "label").run()
        body = " ".join(h.proto.body for h in at.html)
        assert "<script>window" not in body and "<img" not in body and "href=" not in body
        assert "&lt;script&gt;" in body and "remote.invalid/pixel.png" in body
        assert "not loaded" in body
    finally:
        gen.close()


def test_anonymous_visitors_see_no_page(app_db: AppDB) -> None:
    at = support.AppTest.from_function(support.page_script, args=("label", "render"))
    at.run()
    assert texts(at.error) == ["not signed in"]
    with db.session_scope(app_db.engine) as s:
        assert s.exec(select(Assignment)).all() == []


def test_an_item_filled_meanwhile_moves_on_with_a_notice(
    db_url: str, monkeypatch: pytest.MonkeyPatch, schema: LabelSchema
) -> None:
    gen = support.app_db_fixture(db_url, monkeypatch, schema, items=3, overlap=1)
    app_db = next(gen)
    try:
        at = page_app(app_db, "alice", "label").run()
        lost = header(at)
        # Bob's label fills the item's only slot meanwhile (as when a claim lands the instant
        # Alice's lease lapses).
        with db.session_scope(app_db.engine) as s:
            lease = s.exec(select(Assignment)).one()
            item = s.get(Item, lease.item_id)
            assert item is not None
            storage.save_annotation(
                session=s, user=app_db.users["bob"], item=item, labels=full_labels()
            )
        choose(at, *GOOD)
        click(at, "act-submit")
        assert any("as many as it needs" in w for w in texts(at.warning))
        assert header(at) != lost
        assert [a.user_id for a in annotations(app_db)] == [app_db.users["bob"].id]
    finally:
        gen.close()


def test_a_v2_form_draws_a_field_only_while_its_condition_holds(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    v2 = load_schema(DEFAULT_SCHEMA_PATH.parent / "refusal-v2.yaml")
    gen = support.app_db_fixture(db_url, monkeypatch, v2, items=2, overlap=1)
    app_db = next(gen)
    try:
        at = page_app(app_db, "alice", "label").run()
        drawn = {b.key for b in at.button}
        assert "opt-harm_area-cyber" in drawn and "opt-right_action-correct_premise" in drawn
        for hidden in ("noncompliance_reason", "answer_quality", "refusal_style"):
            assert not any(k.startswith(f"opt-{hidden}-") for k in drawn), hidden
        choose(at, ("right_action", "refuse"), ("observed_action", "refuse"))
        drawn = {b.key for b in at.button}
        assert "opt-noncompliance_reason-safety" in drawn and "opt-refusal_style-bare" in drawn
        assert not any(k.startswith("opt-answer_quality-") for k in drawn)
        choose(
            at,
            ("right_action", "answer"),
            ("observed_action", "answer"),
            ("intent", "benign"),
            ("epistemic_status", "answerable"),
            ("harm_area", "none"),
            ("severity", "none"),
            ("answer_quality", "useful"),
            ("confidence", "high"),
        )
        drawn = {b.key for b in at.button}
        assert not any(k.startswith("opt-refusal_style-") for k in drawn)
        click(at, "act-submit")
        assert not at.error and not at.exception
        (saved,) = annotations(app_db)
        # The refusal style and reason chosen while they showed were dropped with them.
        assert saved.labels["refusal_style"] is None
        assert saved.labels["noncompliance_reason"] is None
        assert saved.labels["answer_quality"] == "useful"
    finally:
        gen.close()
