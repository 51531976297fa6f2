"""The lead's pages through AppTest: dashboard, review queue, adjudication; annotators kept out."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lead_helpers import HUMANS, Seeded, seed_campaign
from sqlmodel import col, select
from streamlit.testing.v1 import AppTest

from annotate import review
from annotate.app import lead
from annotate.schema import LabelSchema
from annotate.storage import db
from annotate.storage.models import Adjudication
from annotate.storage.queries import load_labels
from tests.test_app_support import AppDB, app_db_fixture, click, page_app, texts

CAMPAIGN = "lead"


@pytest.fixture
def app_db(db_url: str, monkeypatch: pytest.MonkeyPatch, schema: LabelSchema) -> Iterator[AppDB]:
    yield from app_db_fixture(db_url, monkeypatch, schema)


@pytest.fixture
def seeded(app_db: AppDB, schema: LabelSchema) -> Seeded:
    with db.session_scope(app_db.engine) as s:
        return seed_campaign(s, schema, name=CAMPAIGN)


def adjudications(app_db: AppDB) -> list[Adjudication]:
    with db.session_scope(app_db.engine) as s:
        return list(s.exec(select(Adjudication).order_by(col(Adjudication.id))).all())


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def page(app_db: AppDB, user: str, module: str, **query: str) -> AppTest:
    at = page_app(app_db, user, module)
    at.query_params["campaign"] = CAMPAIGN
    for k, v in query.items():
        at.query_params[k] = v
    return run(at)


def everything(at: AppTest) -> str:
    """All text an AppTest run shows: markdown, captions, metrics, tables, alerts."""
    parts = texts(at.markdown) + texts(at.caption) + texts(at.error) + texts(at.info)
    parts += texts(at.warning) + texts(at.success) + [str(m.value) for m in at.metric]
    parts += [df.value.to_csv() for df in at.dataframe]
    return "\n".join(parts)


# -- dashboard -------------------------------------------------------------------------------


def test_dashboard_shows_the_figures_and_where_to_look(app_db: AppDB, seeded: Seeded) -> None:
    at = page(app_db, "lena", "dashboard")
    assert [t.value for t in at.title] == ["Dashboard"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Items"] == "6" and metrics["Human annotators"] == "3"
    assert metrics["With 2+ labels"] == "5"
    text = everything(at)
    assert "Where to look first" in text
    assert "Figures from the labels as of" in text  # how old the figures are
    assert "Item: `i3`" in text  # the most disagreed item
    # Five items with two labels are too few for an interval: no reading claims reliability.
    assert "alpha 0.341 (not enough items with two labels)" in text
    assert "banded right-action alpha rises by" in text
    alpha_table = next(df.value for df in at.dataframe if "reading" in df.value.columns)
    measures = alpha_table["measure"].tolist()
    assert {"right_action", "right_action (banded)", "intent (ordinal)"} <= set(measures)
    assert "failure categories (MASI)" in measures
    assert set(alpha_table["reading"]) <= {
        "not enough items with two labels",
        "no variation: alpha undefined (everyone chose the same value)",
    }
    assert alpha_table["ci_low"].isna().all()  # no interval is printed for 5 items
    judges = next(df.value for df in at.dataframe if "judge" in df.value.columns)
    assert set(judges["judge"]) == {"judge-gpt"}
    annotators = next(df.value for df in at.dataframe if "n_labeled" in df.value.columns)
    assert annotators["annotator"].tolist() == list(HUMANS)
    assert annotators["n_labeled"].dtype.kind == "i"  # counts are integers, not 18.0
    # Items carry three labels: the annotator models' competence is in the table.
    assert annotators["ds_competence"].between(0, 1).all()


def test_dashboard_filters_and_fragments(app_db: AppDB, seeded: Seeded) -> None:
    at = page(app_db, "lena", "dashboard")
    at.multiselect(key="dash-category").select("a")
    run(at)
    assert {m.label: m.value for m in at.metric}["Items"] == "3"
    at.segmented_control(key="dash-conf-field").set_value("intent")
    at.selectbox(key="dash-conf-pair").select("alice vs bob")
    run(at)
    at.segmented_control(key="dash-time-by").set_value("batch")
    at.number_input(key="dash-time-batch").set_value(2)
    run(at)
    at.segmented_control(key="dash-ann-field").set_value("observed_action")
    run(at)
    at.segmented_control(key="dash-resamples").set_value(0)
    run(at)


def test_dashboard_on_an_empty_campaign(app_db: AppDB) -> None:
    at = page_app(app_db, "lena", "dashboard")
    at.query_params["campaign"] = "demo"  # items, no labels
    run(at)
    assert {m.label: m.value for m in at.metric}["With 2+ labels"] == "0"


# -- review ----------------------------------------------------------------------------------


def test_review_queue_order_and_next(app_db: AppDB, seeded: Seeded) -> None:
    at = page(app_db, "lena", "review")
    queue = at.dataframe(key="rev-table").value
    assert queue["Item"].tolist() == ["i3", "i4", "i2", "i6", "i1"]
    assert "5 items · 0 adjudicated · 5 waiting, 1 of them unanimous" in everything(at)
    click(at, "rev-next")
    assert at.session_state[lead.TARGET_KEY] == {"campaign": CAMPAIGN, "item": "i3"}
    at.toggle(key="rev-flagged").set_value(True)
    run(at)
    assert at.dataframe(key="rev-table").value["Item"].tolist() == ["i3"]


def test_review_bulk_accepts_unanimous_items(app_db: AppDB, seeded: Seeded) -> None:
    at = page(app_db, "lena", "review")
    assert at.button(key="rev-bulk").disabled
    at.checkbox(key="rev-bulk-sure").check()
    run(at)
    click(at, "rev-bulk")
    assert "Accepted 1 unanimous items" in everything(at)
    rows = adjudications(app_db)
    assert [(r.item_id, r.method) for r in rows] == [(seeded.items["i1"], "bulk_unanimous")]
    assert rows[0].lead_id == app_db.users["lena"].id
    queue = at.dataframe(key="rev-table").value.set_index("Item")
    assert bool(queue.loc["i1", "Adjudicated"])
    at.toggle(key="rev-show-done").set_value(False)
    run(at)
    assert "i1" not in at.dataframe(key="rev-table").value["Item"].tolist()


# -- adjudicate ------------------------------------------------------------------------------


def test_adjudicate_prefills_saves_and_moves_on(app_db: AppDB, seeded: Seeded) -> None:
    at = page(app_db, "lena", "adjudicate", item="i2")
    text = everything(at)
    assert "majority right action: **`answer`**" in text
    # Everyone's labels side by side, named, with their time; the judge marked as such.
    side = next(df.value for df in at.dataframe if "Right action" in df.value.index)
    assert list(side.columns) == [*HUMANS, "judge-gpt (judge)"]
    assert side.loc["Right action"].tolist() == [
        "answer",
        "answer_with_caveat",
        "answer",
        "answer",
    ]
    assert side.loc["Seconds"].tolist()[:3] == ["10", "11", "12"]
    # Pre-filled from the majority: the right action is chosen, confidence is the lead's own.
    assert at.button(key="opt-right_action-answer").proto.type == "primary"
    assert at.button(key="opt-confidence-high").proto.type == "secondary"
    scope = f"adj-{seeded.items['i2']}-0"
    band_key = f"adj-band-{scope}-answer-answer_with_caveat"
    assert at.number_input(key=band_key).value == 0.75
    click(at, "opt-confidence-high")
    at.number_input(key=band_key).set_value(1.0)
    at.checkbox(key=f"adj-gap-{scope}").check()
    run(at)
    click(at, "adj-save")
    rows = adjudications(app_db)
    assert len(rows) == 1
    saved = rows[0]
    assert saved.item_id == seeded.items["i2"] and saved.lead_id == app_db.users["lena"].id
    assert saved.labels["right_action"] == "answer" and saved.labels["confidence"] == "high"
    assert saved.band == {"answer": 1.0, "answer_with_caveat": 1.0, "answer_safe_part": 0.25}
    assert saved.guideline_gap and not saved.overrides_majority
    # The next waiting item of the queue (i3 is the most disagreed).
    assert at.query_params["item"] == "i3"
    assert "Adjudicated `i2`" in everything(at)


def test_overriding_the_majority_needs_a_note(app_db: AppDB, seeded: Seeded) -> None:
    at = page(app_db, "lena", "adjudicate", item="i2")
    at.toggle(key="adj-advance").set_value(False)
    click(at, "opt-right_action-refuse")
    click(at, "opt-confidence-medium")
    assert "overrides the annotators' majority `answer`" in everything(at)
    click(at, "adj-save")
    assert "add a note saying why" in everything(at)
    assert adjudications(app_db) == []
    scope = f"adj-{seeded.items['i2']}-0"
    at.text_area(key=f"adj-note-{scope}").input("The response gives dosages.")
    run(at)
    click(at, "adj-save")
    rows = adjudications(app_db)
    assert len(rows) == 1 and rows[0].overrides_majority
    assert rows[0].note == "The response gives dosages."
    assert at.query_params["item"] == "i2"  # stayed: advancing was turned off
    # Re-adjudicating: a new row pointing at the old one, the old one no longer current.
    click(at, "opt-right_action-answer")
    run(at)
    click(at, "adj-save")
    first, second = adjudications(app_db)
    assert second.previous_id == first.id and not first.is_current and second.is_current
    assert first.labels["right_action"] == "refuse"
    assert "Adjudication history (2)" in [e.label for e in at.expander]


def test_adjudicate_without_an_item_offers_the_top_of_the_queue(
    app_db: AppDB, seeded: Seeded
) -> None:
    at = page(app_db, "lena", "adjudicate")
    click(at, "adj-first")
    assert at.query_params["item"] == "i3"
    at = page(app_db, "lena", "adjudicate", item="nope")
    assert "No item `nope` in campaign `lead`" in everything(at)


# -- annotators are kept out -----------------------------------------------------------------


@pytest.mark.parametrize("module", ["dashboard", "review", "adjudicate"])
def test_annotators_see_no_figures_and_no_labels(
    app_db: AppDB, seeded: Seeded, module: str
) -> None:
    at = page(app_db, "alice", module, item="i3")
    text = everything(at)
    assert "needs the lead role" in text
    assert not at.metric and not at.dataframe
    for other in ("bob", "carol", "judge-gpt"):
        assert other not in text
    assert "response of i3" not in "".join(str(h.proto.body) for h in at.get("html"))
    assert adjudications(app_db) == []


# -- the annotator model (three labels per item) ---------------------------------------------


def test_review_and_adjudicate_show_the_annotator_model(app_db: AppDB, seeded: Seeded) -> None:
    with db.session_scope(app_db.engine) as s:
        lena = app_db.users["lena"]
        table = load_labels(session=s, actor=lena, campaign=seeded.campaign)
        expected = review.model_suggestions(table, actor=lena)
    assert not expected.empty  # most items carry three human labels
    at = page(app_db, "lena", "review")
    queue = at.dataframe(key="rev-table").value.set_index("Item")
    by_external = {v: k for k, v in seeded.items.items()}
    for item_id, row in expected.iterrows():
        name = by_external[int(item_id)]
        if name in queue.index:
            assert queue.loc[name, "Model suggests"] == row["model_label"]
            assert queue.loc[name, "Posterior"] == pytest.approx(row["posterior"])
    assert "no majority" in set(queue["Majority action"]) or queue["Majority action"].notna().all()
    assert "None" not in queue.to_csv()
    item = next(by_external[int(i)] for i in expected.index if by_external[int(i)] == "i2")
    at = page(app_db, "lena", "adjudicate", item=item)
    label = expected.loc[seeded.items[item], "model_label"]
    assert f"Annotator model (Dawid-Skene): `{label}`, posterior" in everything(at)
    other = "refuse" if label != "refuse" else "answer"
    click(at, f"opt-right_action-{other}")
    scope = f"adj-{seeded.items[item]}-0"
    click(at, f"adj-use-model-{scope}")
    assert at.button(key=f"opt-right_action-{label}").proto.type == "primary"
    assert at.button(key=f"opt-right_action-{other}").proto.type == "secondary"


def test_where_to_look_first_links_to_where_to_act(app_db: AppDB, seeded: Seeded) -> None:
    from annotate.app import attention

    with db.session_scope(app_db.engine) as s:
        lena = app_db.users["lena"]
        table = load_labels(session=s, actor=lena, campaign=seeded.campaign)
        report = review.agreement_report(table, actor=lena, n_resamples=0)
        items = review.item_disagreement(table, actor=lena)
        people = review.annotator_table(table, actor=lena)
    targets = {
        line.split(":")[0]: target for line, target in attention.lines(report, items, people)
    }
    assert targets["Item"] == ("adjudicate", {"item": "i3"})
    assert targets["Field"] is not None and targets["Field"][0] == "dashboard"
    field = targets["Field"][1][attention.FIELD_PARAM]
    assert field in {f.name for f in table.schema.choice_fields}
    who = targets["Annotator"][1][attention.ANNOTATOR_PARAM]  # type: ignore[index]
    # Following the links: the dashboard opens the field's confusion view and the
    # annotator's row first.
    at = page(app_db, "lena", "dashboard", field="observed_action", annotator=who)
    assert at.segmented_control(key="dash-conf-field").value == "observed_action"
    annotators = next(df.value for df in at.dataframe if "n_labeled" in df.value.columns)
    assert annotators["annotator"].iloc[0] == who
