"""The labeling page through AppTest: claim, the form's data, submit, warnings, skip, flag.

AppTest cannot run the browser form, so its one message per item is sent as the form would
send it (test_app_support.send); what the form does with keys is tested in Chromium.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlmodel import Session, select

from annotate import storage
from annotate.app.labelform import INBOX
from annotate.app.submission import SKIP_REASONS
from annotate.schema import LabelField, LabelSchema, load_schema
from annotate.storage import db
from annotate.storage.models import Annotation, Assignment, Item
from tests import test_app_support as support
from tests.conftest import DEFAULT_SCHEMA_PATH, full_labels
from tests.test_app_support import AppDB, feedback, label_form, page_app, send, submit, texts

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
    # Annotators see an opaque handle, not the item id (storage.visibility).
    assert re.fullmatch(r"item `#[0-9a-f]{10}`", header(at))
    assert any("you: 0 done, 0 skipped, 1 assigned · 4 items" in c for c in texts(at.caption))
    form = label_form(at)
    assert form is not None
    assert [f["name"] for f in form["form"]["fields"]] == [f.name for f in app_db_schema(app_db)]
    assert form["item"]["name"] == header(at).split("`")[1]
    # Letters from the schema are shortcuts, Streamlit's own `r` included (the form handles
    # its keys itself); digits are not: they choose within the marked field.
    shortcuts = form["form"]["shortcuts"]
    assert shortcuts["r"] == ["observed_action", "clarify"] and shortcuts["b"] == [
        "intent",
        "benign",
    ]
    assert not any(k.isdigit() for k in shortcuts)
    assert form["form"]["keys"] == {"text": "/", "skip": "s", "flag": "a"}
    with Session(app_db.engine) as s:
        leases = s.exec(select(Assignment)).all()
    assert [(a.status, a.user_id) for a in leases] == [("active", app_db.users["alice"].id)]
    assert form["item"]["assignment"] == leases[0].id


def test_the_item_is_one_element_with_each_turn_titled(app_db: AppDB) -> None:
    # Fewer messages per answer (issue 15): the prompt and the response to label go in one
    # element, each turn in a titled box, not in a chat block each.
    at = page_app(app_db, "alice", "label").run()
    assert not at.exception and not at.chat_message
    bodies = [h.proto.body for h in at.html if h.proto.body.startswith('<div class="annotate-turn')]
    assert len(bodies) == 1
    assert re.findall(
        r'annotate-turn annotate-turn-(\w+)"><div class="annotate-who">([^<]*)<', bodies[0]
    ) == [
        ("user", "User"),
        ("assistant", "Response to label"),
    ]
    with Session(app_db.engine) as s:
        item = s.get(Item, s.exec(select(Assignment)).one().item_id)
        assert item is not None and item.prompt is not None
    assert item.prompt.split()[0] in bodies[0] and item.response.split()[0] in bodies[0]


def app_db_schema(app_db: AppDB) -> tuple[LabelField, ...]:
    with Session(app_db.engine) as s:
        return storage.campaign_schema(session=s, campaign=app_db.campaign).fields


def test_choosing_costs_the_server_nothing(app_db: AppDB) -> None:
    # Only a message from the form changes anything: a plain rerun neither saves nor moves on.
    at = page_app(app_db, "alice", "label").run()
    first = header(at)
    at.run()
    assert header(at) == first and annotations(app_db) == []


def test_submit_saves_the_labels_and_brings_the_next_item(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "label").run()
    first = header(at)
    before = label_form(at)
    submit(at, dict(GOOD))
    assert not at.error and not at.exception
    assert header(at) != first
    after = label_form(at)
    assert before is not None and after is not None
    assert after["item"]["assignment"] != before["item"]["assignment"]
    (saved,) = annotations(app_db)
    assert saved.labels["right_action"] == "answer" and saved.labels["failure_categories"] == []
    assert saved.duration_s is not None and 0 <= saved.duration_s <= 4.2
    assert any("you: 1 done" in c for c in texts(at.caption))
    assert [t.value for t in at.toast] == [f"Saved {first.split('`')[1]}"]


def test_missing_required_fields_are_refused(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "label").run()
    first = header(at)
    submit(at, {"intent": "benign"})
    shown = feedback(at)
    # Every missing field at once, by display name, in schema order.
    assert shown["text"].startswith("Still to label: Epistemic status, ")
    assert shown["kind"] == "error" and shown["focus"] == "epistemic_status"
    assert header(at) == first and annotations(app_db) == []


def test_a_warning_must_be_confirmed_with_a_rationale(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "label").run()
    broken = {**dict(GOOD), "observed_action": "refuse"}
    submit(at, broken)  # not confirmed: the server asks for the override
    shown = feedback(at)
    assert shown["kind"] == "override" and shown["rules"] == ["over_refusal_unticked"]
    assert "over_refusal is not ticked" in shown["text"]
    assert "You are overriding this" in shown["text"] and shown["focus"] == "rationale"
    assert annotations(app_db) == []
    submit(at, broken, overridden=["over_refusal_unticked"])  # confirmed, no rationale
    assert "needs a rationale" in feedback(at)["text"] and feedback(at)["focus"] == "rationale"
    assert annotations(app_db) == []
    rationale = "Refusing was defensible here"
    submit(at, {**broken, "rationale": rationale}, overridden=["over_refusal_unticked"])
    (saved,) = annotations(app_db)
    assert saved.overridden_rules == ["over_refusal_unticked"]
    assert saved.labels["rationale"] == rationale


def test_an_override_of_an_unbroken_rule_is_not_recorded(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "label").run()
    fixed = {**dict(GOOD), "observed_action": "refuse", "failure_categories": ["over_refusal"]}
    submit(at, fixed, overridden=["over_refusal_unticked", "made_up"])
    (saved,) = annotations(app_db)
    assert saved.overridden_rules == []


def test_skip_with_a_reason(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "label").run()
    first = header(at)
    send(at, {"kind": "skip", "reason": "", "details": ""})  # no reason picked yet
    assert "reason" in feedback(at)["text"] and feedback(at)["focus"] == "_skip"
    assert header(at) == first
    send(at, {"kind": "skip", "reason": SKIP_REASONS[1], "details": ""})
    assert header(at) != first
    with Session(app_db.engine) as s:
        skipped = s.exec(select(Assignment).where(Assignment.status == "skipped")).one()
    assert skipped.reason == "The item is broken or unreadable"


def test_skip_for_another_reason_needs_words(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "label").run()
    first = header(at)
    send(at, {"kind": "skip", "reason": SKIP_REASONS[-1], "details": "  "})
    assert feedback(at)["focus"] == "_skip_details" and header(at) == first
    send(at, {"kind": "skip", "reason": SKIP_REASONS[-1], "details": "Not in English"})
    with Session(app_db.engine) as s:
        skipped = s.exec(select(Assignment).where(Assignment.status == "skipped")).one()
    assert skipped.reason == "Not in English"


def test_flag_for_lead_with_a_note_and_partial_labels(app_db: AppDB) -> None:
    at = page_app(app_db, "alice", "label").run()
    submit(at, {"intent": "ambiguous"}, flagged=True, flag_note="  ")
    assert "Say why you flag" in feedback(at)["text"] and feedback(at)["focus"] == "_flag_note"
    assert annotations(app_db) == []
    submit(at, {"intent": "ambiguous"}, flagged=True, flag_note="The response is truncated")
    (saved,) = annotations(app_db)
    assert saved.flagged and saved.flag_note == "The response is truncated"
    assert saved.labels["intent"] == "ambiguous" and saved.labels["right_action"] is None


def test_a_message_for_an_item_already_sent_moves_on(app_db: AppDB) -> None:
    # A second Ctrl+Enter for the same item (two tabs, a replayed message): not saved twice.
    at = page_app(app_db, "alice", "label").run()
    old = label_form(at)
    assert old is not None
    submit(at, dict(GOOD))
    at.session_state[INBOX] = {
        "kind": "submit",
        "assignment": old["item"]["assignment"],
        "labels": dict(GOOD),
    }
    at.run()
    assert any("already submitted" in w for w in texts(at.warning))
    assert len(annotations(app_db)) == 1 and header(at).startswith("item ")


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
        submit(at, dict(GOOD))
        assert any("Nothing left for you" in s for s in texts(at.success))
        assert label_form(at) is None
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
        submit(at, dict(GOOD))
        assert any("as many as it needs" in w for w in texts(at.warning))
        assert header(at) != lost
        assert [a.user_id for a in annotations(app_db)] == [app_db.users["bob"].id]
    finally:
        gen.close()


def test_a_v2_form_gets_each_fields_condition_and_hidden_values_are_dropped(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The browser form shows a field only while its condition holds (Chromium:
    # test_label_rules_js); the server drops whatever a hidden field was sent.
    v2 = load_schema(DEFAULT_SCHEMA_PATH.parent / "refusal-v2.yaml")
    gen = support.app_db_fixture(db_url, monkeypatch, v2, items=2, overlap=1)
    app_db = next(gen)
    try:
        at = page_app(app_db, "alice", "label").run()
        form = label_form(at)
        assert form is not None
        fields = {f["name"]: f for f in form["form"]["fields"]}
        assert "cyber" in [o["value"] for o in fields["harm_area"]["options"]]
        assert "correct_premise" in [o["value"] for o in fields["right_action"]["options"]]
        for conditional in ("noncompliance_reason", "answer_quality", "refusal_style"):
            assert fields[conditional]["show_when"], conditional
        assert not fields["intent"]["show_when"]
        labels = {
            "right_action": "answer",
            "observed_action": "answer",
            "intent": "benign",
            "epistemic_status": "answerable",
            "harm_area": "none",
            "severity": "none",
            "answer_quality": "useful",
            "confidence": "high",
            "refusal_style": "bare",
            "noncompliance_reason": "safety",
        }
        submit(at, labels)
        assert not at.exception and not feedback(at)["text"], feedback(at)
        (saved,) = annotations(app_db)
        # The refusal style and reason were sent while hidden, and were dropped.
        assert saved.labels["refusal_style"] is None
        assert saved.labels["noncompliance_reason"] is None
        assert saved.labels["answer_quality"] == "useful"
    finally:
        gen.close()
