"""The label form's one message per item, handled as a plain function (no Streamlit, no
browser): shape checks, refusals with where the cursor goes, the lease, a database that is
down; and the form's description of the schema (keys, rules)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from annotate import labeling
from annotate.app import labelform, submission
from annotate.app.submission import CANT_SAVE, SKIP_REASONS, handle_message, parse_message
from annotate.errors import StorageUnavailable, ValidationProblem
from annotate.schema import LabelSchema, parse_schema
from annotate.storage import db, visibility
from annotate.storage.models import Annotation, Assignment, Campaign, User, utcnow
from tests.conftest import full_labels
from tests.labeling.test_assign import setup_campaign


@pytest.fixture
def leased(engine: Engine, schema: LabelSchema) -> Iterator[tuple[Campaign, User, labeling.Claim]]:
    campaign, people = setup_campaign(engine, schema, items=3, users=("alice",))
    with db.session_scope(engine, immediate=True) as s:
        claim = labeling.claim_next(session=s, user=people["alice"], campaign=campaign)
    assert claim is not None
    yield campaign, people["alice"], claim


def message(claim: labeling.Claim, **kw: Any) -> dict[str, Any]:
    return {"kind": "submit", "assignment": claim.assignment.id, "labels": full_labels(), **kw}


def stored(engine: Engine) -> list[Annotation]:
    with Session(engine) as s:
        return list(s.exec(select(Annotation)).all())


def lease_status(engine: Engine, claim: labeling.Claim) -> str:
    with Session(engine) as s:
        row = s.get(Assignment, claim.assignment.id)
        assert row is not None
        return row.status


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (None, "not a message"),
        ({"kind": "delete", "assignment": 1}, "unknown action `delete`"),
        ({"kind": "submit"}, "no item to save"),
        ({"kind": "submit", "assignment": True}, "no item to save"),
        ({"kind": "submit", "assignment": 1, "labels": ["a"]}, "not a mapping"),
        ({"kind": "submit", "assignment": 1, "overridden": "rule"}, "not a list"),
        ({"kind": "submit", "assignment": 1, "flag_note": 3}, "flag note that is not text"),
        ({"kind": "skip", "assignment": 1, "reason": "x" * 20_001}, "keep it under 20,000"),
    ],
)
def test_malformed_messages_are_refused_by_name(raw: Any, says: str) -> None:
    with pytest.raises(ValidationProblem, match=says):
        parse_message(raw)


def test_a_message_is_read_as_sent() -> None:
    got = parse_message(
        {
            "kind": "submit",
            "assignment": 7,
            "labels": {"intent": "benign"},
            "duration_s": 3.5,
            "overridden": ["r1"],
            "flagged": True,
            "flag_note": "why",
        }  # fmt: skip
    )
    assert (got.assignment_id, got.labels, got.duration_s) == (7, {"intent": "benign"}, 3.5)
    assert (got.overridden, got.flagged, got.flag_note) == (("r1",), True, "why")
    assert parse_message({"kind": "skip", "assignment": 7, "duration_s": "nan"}).duration_s is None


def test_a_submit_saves_exactly_the_labels_sent(
    engine: Engine, schema: LabelSchema, leased: Any
) -> None:
    _, alice, claim = leased
    labels = full_labels(
        failure_categories=["disproportionate_caveat", "grounding_failure"], rationale="ok"
    )
    outcome = handle_message(
        engine=engine, user=alice, schema=schema, raw=message(claim, labels=labels, duration_s=2.5),
        claimed_at=utcnow() - timedelta(seconds=10),
    )  # fmt: skip
    # The annotator's toast names the item by its handle: its id is hidden from them.
    campaign = leased[0]
    handle = visibility.item_handle(campaign=campaign, item_id=claim.item.id)
    assert outcome.advance and outcome.toast == f"Saved {handle}"
    (saved,) = stored(engine)
    # Multi-choice values come back in schema order, whatever order they were sent in.
    in_order = ["grounding_failure", "disproportionate_caveat"]
    assert saved.labels == {**labels, "failure_categories": in_order}
    assert saved.duration_s == 2.5 and lease_status(engine, claim) == "done"


def test_time_on_item_is_kept_within_the_lease(
    engine: Engine, schema: LabelSchema, leased: Any
) -> None:
    _, alice, claim = leased
    claimed = utcnow() - timedelta(seconds=5)
    for reported in (10_000.0, -3.0):
        handle_message(
            engine=engine, user=alice, schema=schema, raw=message(claim, duration_s=reported),
            claimed_at=claimed,
        )  # fmt: skip
    (saved,) = stored(engine)
    assert saved.duration_s is not None and 5.0 <= saved.duration_s <= 7.0


@pytest.mark.parametrize(
    ("labels", "extra", "kind", "focus", "says"),
    [
        (
            {"intent": "benign"},
            {},
            "error",
            "epistemic_status",
            "Still to label: Epistemic status, ",
        ),
        (full_labels(intent="evil"), {}, "error", "intent", "`evil` is not one of"),
        (full_labels(), {"flagged": True, "flag_note": " "}, "error", "_flag_note", "Say why"),
        (full_labels(observed_action="refuse"), {}, "override", "rationale", "You are overriding"),
        (
            full_labels(observed_action="refuse"),
            {"overridden": ["over_refusal_unticked"]},
            "error",
            "rationale",
            "needs a rationale",
        ),
    ],
)
def test_refusals_say_why_and_where_the_cursor_goes(
    engine: Engine,
    schema: LabelSchema,
    leased: Any,
    labels: dict[str, Any],
    extra: dict[str, Any],
    kind: str,
    focus: str,
    says: str,
) -> None:
    _, alice, claim = leased
    outcome = handle_message(
        engine=engine, user=alice, schema=schema, raw=message(claim, labels=labels, **extra)
    )
    assert not outcome.advance and outcome.feedback is not None
    assert (outcome.feedback.kind, outcome.feedback.focus) == (kind, focus)
    assert says in outcome.feedback.text
    assert stored(engine) == [] and lease_status(engine, claim) == "active"


def test_a_database_that_is_down_keeps_everything_for_the_retry(
    engine: Engine, schema: LabelSchema, leased: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, alice, claim = leased

    def down(_: Engine) -> Any:
        raise StorageUnavailable("connection refused on 127.0.0.1:5432")

    monkeypatch.setattr(submission.labeling, "write_session", down)
    for raw in (message(claim), {"kind": "skip", "assignment": claim.assignment.id,
                                 "reason": SKIP_REASONS[0]}):  # fmt: skip
        outcome = handle_message(engine=engine, user=alice, schema=schema, raw=raw)
        assert not outcome.advance and outcome.feedback is not None
        assert outcome.feedback.text == CANT_SAVE and "5432" not in outcome.feedback.text
    monkeypatch.undo()
    assert stored(engine) == [] and lease_status(engine, claim) == "active"
    assert handle_message(engine=engine, user=alice, schema=schema, raw=message(claim)).advance
    assert len(stored(engine)) == 1


def test_the_next_claim_runs_in_the_submit_transaction(
    engine: Engine, schema: LabelSchema, leased: Any
) -> None:
    campaign, alice, claim = leased

    def next_claim(s: Session) -> labeling.Claim | None:
        return labeling.claim_next(session=s, user=alice, campaign=campaign)

    outcome = handle_message(
        engine=engine, user=alice, schema=schema, raw=message(claim), then=next_claim
    )
    assert outcome.advance and outcome.after is not None
    assert outcome.after.item.id != claim.item.id and len(stored(engine)) == 1
    assert lease_status(engine, outcome.after) == "active"


def test_a_label_is_one_transaction_of_few_statements(
    engine: Engine, schema: LabelSchema, leased: Any
) -> None:
    # The submit and the next claim share one transaction; the user, the item, its campaign
    # and schema are read once (issue 15: 26 statements in two transactions before).
    campaign, alice, claim = leased
    seen: list[str] = []
    begins: list[object] = []

    def began(conn: Any) -> None:
        begins.append(conn)

    def note(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE", "PRAGMA")):
            seen.append(statement)

    def next_claim(s: Session) -> labeling.Claim | None:
        return labeling.claim_next(session=s, user=alice, campaign=campaign)

    event.listen(engine, "before_cursor_execute", note)
    event.listen(engine, "begin", began)
    try:
        outcome = handle_message(
            engine=engine, user=alice, schema=schema, raw=message(claim), then=next_claim
        )
    finally:
        event.remove(engine, "before_cursor_execute", note)
        event.remove(engine, "begin", began)
    assert outcome.advance and outcome.after is not None
    assert len(begins) == 1
    # PostgreSQL adds its row locks (the user, the item's counter, the next item) and the
    # recount of the next item's slots once it is locked.
    limit = 16 if engine.dialect.name == "sqlite" else 20
    assert len(seen) <= limit, "\n".join(seen)
    assert not [q for q in seen if "FROM label_schema" in q or q.startswith("SELECT campaign.")]


def test_a_failing_step_after_the_save_keeps_the_save(
    engine: Engine, schema: LabelSchema, leased: Any
) -> None:
    _, alice, claim = leased

    def refused(s: Session) -> Any:
        written = s.get(Campaign, claim.assignment.campaign_id)
        assert written is not None
        written.guidelines = "changed by the failing step"
        s.add(written)
        s.flush()
        raise ValidationProblem("no next item today")

    skip = {"kind": "skip", "assignment": claim.assignment.id, "reason": SKIP_REASONS[0]}
    outcome = handle_message(engine=engine, user=alice, schema=schema, raw=skip, then=refused)
    # The skip stands; what the step wrote is rolled back with its savepoint.
    assert outcome.advance and outcome.after is None and lease_status(engine, claim) == "skipped"
    with Session(engine) as s:
        kept = s.get(Campaign, claim.assignment.campaign_id)
        assert kept is not None and kept.guidelines != "changed by the failing step"


def test_someone_elses_assignment_is_refused(
    engine: Engine, schema: LabelSchema, leased: Any
) -> None:
    campaign, alice, claim = leased
    with db.session_scope(engine) as s:
        from tests.conftest import make_user

        mallory = make_user(s, "mallory")
    outcome = handle_message(engine=engine, user=mallory, schema=schema, raw=message(claim))
    assert not outcome.advance and outcome.feedback is not None
    assert "belongs to another annotator" in outcome.feedback.text
    assert stored(engine) == []


@pytest.mark.parametrize(
    ("reason", "details", "expected"),
    [
        (SKIP_REASONS[0], "", SKIP_REASONS[0]),
        (SKIP_REASONS[2], " my own prompt ", f"{SKIP_REASONS[2]}: my own prompt"),
        (SKIP_REASONS[3], "Not in English", "Not in English"),
    ],
)
def test_skip_reasons(reason: str, details: str, expected: str) -> None:
    assert submission.skip_reason(reason, details) == expected


@pytest.mark.parametrize(
    ("reason", "details"), [("", ""), ("made up", "x"), (SKIP_REASONS[3], " ")]
)
def test_bad_skip_reasons_are_refused(reason: str, details: str) -> None:
    with pytest.raises(ValidationProblem):
        submission.skip_reason(reason, details)


# -- what the browser form is told about the schema ----------------------------------------------


def test_the_form_spec_carries_fields_options_rules_and_letter_keys(schema: LabelSchema) -> None:
    spec = labelform.form_spec(schema)
    assert labelform.form_spec(schema) is spec  # cached per schema object
    assert [f["name"] for f in spec["fields"]] == [f.name for f in schema.fields]
    intent = spec["fields"][0]
    assert intent["options"][0] == {
        "value": "benign",
        "title": "benign",
        "guideline": schema.field("intent").options[0].guideline,
        "key": "b",
    }
    assert [r["id"] for r in spec["rules"]] == [r.id for r in schema.rules]
    assert spec["rationale"] == "rationale" and spec["skip_reasons"] == list(SKIP_REASONS)
    right = next(f for f in spec["fields"] if f["name"] == "right_action")
    assert all(o["key"] is None for o in right["options"])  # digits: the focus model's keys
    legend = labelform.key_legend(spec)
    assert "**Tab**" in legend and "**r** clarify" in legend and "**s** skip" in legend


def test_action_keys_avoid_letters_the_schema_uses(schema: LabelSchema) -> None:
    data = schema.model_dump(mode="json")
    data["fields"][0]["options"][0]["key"] = "s"
    data["fields"][0]["options"][1]["key"] = "A"
    data["fields"][0]["options"][2]["key"] = "z"
    spec = labelform.form_spec(parse_schema(data, source="test"))
    assert spec["shortcuts"]["s"] == ["intent", "benign"] and spec["shortcuts"]["a"][0] == "intent"
    assert spec["keys"]["skip"] not in "saz" and spec["keys"]["flag"] not in "saz"
    assert spec["keys"]["skip"] != spec["keys"]["flag"]


def test_visibility_conditions_are_passed_on_when_a_schema_has_them() -> None:
    field = SimpleNamespace(show_when={"right_action": ("refuse", "abstain")})
    assert labelform._show_when(field) == {"right_action": ["refuse", "abstain"]}
    assert labelform._show_when(SimpleNamespace()) is None
