"""The campaign agreement report from the database, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import make_user
from lead_helpers import HUMANS, JUDGE, Seeded, seed_campaign
from sqlmodel import Session

from annotate import review, storage
from annotate import stats as ag
from annotate.errors import PermissionDenied, ValidationProblem
from annotate.review.figures import ReportFilters
from annotate.schema import LabelSchema
from annotate.storage.models import User
from annotate.storage.queries import load_labels
from annotate.table import LabelTable


@pytest.fixture
def seeded(session: Session, schema: LabelSchema) -> Seeded:
    return seed_campaign(session, schema, days=True)


@pytest.fixture
def table(session: Session, seeded: Seeded) -> LabelTable:
    return load_labels(session=session, actor=seeded.lead, campaign=seeded.campaign)


def human_matrix(table: LabelTable, field: str) -> np.ndarray:
    return table.matrix(field)[2]


def test_report_fields_match_the_pure_alpha(table: LabelTable, seeded: Seeded) -> None:
    report = review.agreement_report(table, actor=seeded.lead, n_resamples=200)
    assert (report.n_items, report.n_annotators, report.annotators) == (6, 3, list(HUMANS))
    assert report.coverage == {0: 0, 1: 1, 2: 1, 3: 4}
    assert report.complete_items == 5
    schema = table.schema
    right = report.fields["right_action"]
    ra = human_matrix(table, "right_action")
    assert right.alpha == pytest.approx(ag.alpha(ra, "nominal", schema.right_actions))
    credit = schema.credit_matrix()[:6, :6]  # right actions are the first six actions
    assert right.banded_alpha == pytest.approx(
        ag.alpha(ra, ag.band_distance(credit), schema.right_actions)
    )
    assert right.ci is not None and right.banded_ci is not None
    intent = report.fields["intent"]
    assert intent.ordinal_alpha == pytest.approx(
        ag.alpha(human_matrix(table, "intent"), "ordinal", schema.field("intent").values)
    )
    assert report.fields["epistemic_status"].alpha is None  # no variation: undefined
    failure = report.failure_categories
    assert failure is not None
    assert set(failure.per_category) == set(schema.field("failure_categories").values)
    assert failure.masi_alpha == pytest.approx(
        ag.masi_alpha(human_matrix(table, "failure_categories"))
    )


def test_json_shape_of_the_issue(table: LabelTable, seeded: Seeded) -> None:
    payload = review.agreement_report(table, actor=seeded.lead, n_resamples=50).to_json_dict()
    assert {"campaign", "n_items", "n_annotators", "fields", "failure_categories"} <= set(payload)
    for name, entry in payload["fields"].items():
        assert {"alpha", "ci", "n_units"} <= set(entry), name
    assert "banded_alpha" in payload["fields"]["right_action"]
    assert "banded_alpha" not in payload["fields"]["intent"]
    assert {"per_category", "masi_alpha"} <= set(payload["failure_categories"])
    assert set(payload["machine_annotators"]) == {JUDGE}


def test_machine_annotators_are_reported_apart(
    session: Session, schema: LabelSchema, seeded: Seeded, table: LabelTable
) -> None:
    with_judge = review.agreement_report(table, actor=seeded.lead, n_resamples=0)
    plain = seed_campaign(session, schema, name="nojudge", with_judge=False)
    without = review.agreement_report(
        load_labels(session=session, actor=plain.lead, campaign=plain.campaign),
        actor=plain.lead,
        n_resamples=0,
    )
    assert with_judge.fields == without.fields
    assert JUDGE not in with_judge.annotators
    judge = with_judge.machine_annotators[JUDGE]
    assert judge.n_labeled == 4
    # Human plurality of right_action: i1 answer, i2 answer, i3 none (three-way tie), i6 refuse.
    right = judge.fields["right_action"]
    assert right.n_items == 3
    assert right.agreement == pytest.approx(2 / 3)
    assert right.mean_credit == pytest.approx(2 / 3)  # answer for refuse earns 0
    assert "intent" not in judge.fields  # the judge gave no intent


def test_filters_restrict_the_items(table: LabelTable, seeded: Seeded) -> None:
    lead = seeded.lead
    by_category = review.agreement_report(
        table, actor=lead, filters=ReportFilters(categories=("a",)), n_resamples=0
    )
    assert by_category.n_items == 3
    assert by_category.fields["right_action"].n_units == 2  # i5 has one label
    by_model = review.agreement_report(
        table, actor=lead, filters=ReportFilters(models=("m2",)), n_resamples=0
    )
    assert by_model.n_items == 3
    by_group = review.agreement_report(
        table, actor=lead, filters=ReportFilters(groups=("g1",)), n_resamples=0
    )
    assert by_group.n_items == 2
    # Intent: plurality of humans; i3 is a three-way tie and matches no intent.
    harmful = review.item_disagreement(
        table, actor=lead, filters=ReportFilters(intents=("harmful",))
    )
    assert harmful["external_id"].tolist() == ["i6"]
    benign = review.item_disagreement(table, actor=lead, filters=ReportFilters(intents=("benign",)))
    assert benign["external_id"].tolist() == ["i1", "i2", "i5"]


def test_item_disagreement(table: LabelTable, seeded: Seeded) -> None:
    frame = review.item_disagreement(table, actor=seeded.lead).set_index("external_id")
    assert frame.loc["i1", "disagreement"] == 0
    # i2: answer, answer_with_caveat, answer -> 2 of 6 ordered pairs at distance 0.25.
    assert frame.loc["i2", "disagreement"] == pytest.approx(0.25 * 4 / 6)
    assert frame.loc["i3", "disagreement"] == pytest.approx(1.0)
    assert frame.loc["i4", "disagreement"] == pytest.approx(0.5)
    assert frame["unanimous"].to_dict() == {
        "i1": True,
        "i2": False,
        "i3": False,
        "i4": False,
        "i5": True,
        "i6": False,
    }
    assert frame.loc["i6", "d_failure_categories"] > 0
    assert bool(frame.loc["i3", "flagged"]) and not bool(frame.loc["i2", "flagged"])
    assert frame.loc["i2", "majority"] == "answer"
    assert frame.loc["i3", "majority"] is None or math.isnan(frame.loc["i3", "majority"])


def test_annotator_table(table: LabelTable, seeded: Seeded) -> None:
    frame = review.annotator_table(table, actor=seeded.lead)
    assert list(frame.index) == list(HUMANS)
    assert frame["n_labeled"].tolist() == [6, 5, 4]
    assert frame["seconds_per_item"].tolist() == [10.0, 11.0, 12.0]
    assert frame["n_gold"].tolist() == [0, 0, 0]
    kappa = review.kappa_matrix(table, actor=seeded.lead, field="right_action")
    off = kappa.loc["alice", ["bob", "carol"]].mean()
    assert frame.loc["alice", "mean_kappa"] == pytest.approx(off)
    with pytest.raises(ValidationProblem, match="not a single-choice field"):
        review.annotator_table(table, actor=seeded.lead, field="failure_categories")


def test_annotator_table_against_adjudicated_gold(
    session: Session, seeded: Seeded, schema: LabelSchema
) -> None:
    from annotate import review

    review.bulk_accept_unanimous(session=session, actor=seeded.lead, campaign=seeded.campaign)
    table = load_labels(session=session, actor=seeded.lead, campaign=seeded.campaign)
    frame = review.annotator_table(table, actor=seeded.lead)
    assert frame.loc["alice", "n_gold"] == 1  # i1 (i5 has one label: not bulk-acceptable)
    assert frame.loc["alice", "gold_agreement"] == 1.0


def test_confusion_and_distribution(table: LabelTable, seeded: Seeded) -> None:
    lead = seeded.lead
    pooled = review.confusion(table, actor=lead, field="right_action")
    coincidences = ag.coincidence_matrix(
        human_matrix(table, "right_action"), table.schema.right_actions
    )
    assert pooled["count"].sum() == pytest.approx(coincidences.sum())
    pair = review.confusion(table, actor=lead, field="right_action", pair=("alice", "bob"))
    assert pair["count"].sum() == 5  # items both labeled
    hit = pair[(pair["first"] == "clarify") & (pair["second"] == "answer_safe_part")]
    assert hit["count"].tolist() == [1.0]
    with pytest.raises(ValidationProblem, match="`nobody`"):
        review.confusion(table, actor=lead, field="right_action", pair=("alice", "nobody"))
    shares = review.label_distribution(table, actor=lead, field="right_action")
    assert list(shares.index) == [*HUMANS, "(campaign)"]
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    ticks = review.label_distribution(table, actor=lead, field="failure_categories")
    assert ticks.loc["bob", "unsafe_compliance"] == pytest.approx(1 / 5)


def test_alpha_over_time(table: LabelTable, seeded: Seeded) -> None:
    per_day = review.alpha_over_time(table, actor=seeded.lead)
    assert per_day["period"].unique().tolist() == [f"2026-01-0{d}" for d in range(1, 7)]
    assert set(per_day["measure"]) == {
        "intent",
        "epistemic_status",
        "right_action",
        "right_action (banded)",
        "observed_action",
    }
    batches = review.alpha_over_time(table, actor=seeded.lead, by="batch", batch_size=3)
    assert batches["period"].unique().tolist() == ["#1", "#2"]
    first = batches[(batches["period"] == "#1") & (batches["measure"] == "right_action")]
    # Batch 1 holds i1..i3 (the three earliest completed items).
    units = [seeded.items[k] for k in ("i1", "i2", "i3")]
    expected = ag.alpha(table.matrix("right_action", item_ids=units)[2], "nominal")
    assert first["alpha"].iloc[0] == pytest.approx(expected)
    assert first["n_items"].iloc[0] == 3
    with pytest.raises(ValidationProblem, match="per `day` or `batch`"):
        review.alpha_over_time(table, actor=seeded.lead, by="week")  # type: ignore[arg-type]


def test_report_from_the_database_and_cache_key(session: Session, seeded: Seeded) -> None:
    lead = seeded.lead
    first = review.labels_version(session=session, actor=lead, campaign=seeded.campaign)
    report = review.campaign_report(
        session=session, actor=lead, campaign=seeded.campaign, n_resamples=0
    )
    assert report.campaign == "lead"
    from annotate.storage.models import Item

    item = session.get(Item, seeded.items["i5"])
    assert item is not None
    storage.save_annotation(
        session=session,
        user=seeded.users["bob"],
        item=item,
        labels=table_labels(),
    )
    session.flush()
    assert review.labels_version(session=session, actor=lead, campaign=seeded.campaign) != first


@pytest.mark.parametrize(
    "filters",
    [None, ReportFilters(), ReportFilters(models=("m1",)), ReportFilters(intents=("benign",))],
)
def test_report_from_the_database_is_the_report_of_a_full_load(
    session: Session, seeded: Seeded, table: LabelTable, filters: ReportFilters | None
) -> None:
    """Loaded without item attributes unless a filter reads them: the very same report."""
    lead = seeded.lead
    got = review.campaign_report(
        session=session, actor=lead, campaign=seeded.campaign, filters=filters, n_resamples=20
    )
    want = review.agreement_report(table, actor=lead, filters=filters, n_resamples=20)
    assert got.model_dump_json() == want.model_dump_json()
    if filters is not None and filters.models:
        assert got.n_items == 3  # i1..i3 are model m1's


def table_labels() -> dict[str, Any]:
    from conftest import full_labels

    return full_labels()


def test_empty_campaign_reports_without_crashing(session: Session, schema: LabelSchema) -> None:
    from conftest import make_campaign

    campaign = make_campaign(session, schema, name="empty")
    lead = make_user(session, "lead2", role="lead")
    report = review.campaign_report(session=session, actor=lead, campaign=campaign)
    assert report.n_items == 0 and report.fields["right_action"].alpha is None
    table = load_labels(session=session, actor=lead, campaign=campaign)
    assert review.alpha_over_time(table, actor=lead).empty
    assert review.annotator_table(table, actor=lead).empty
    assert review.item_disagreement(table, actor=lead).empty


def test_reading_in_plain_words() -> None:
    assert review.reading(0.85) == "reliable"
    assert review.reading(0.7).startswith("tentative")
    assert review.reading(0.2).startswith("unreliable")
    assert review.reading(None) == "not enough data"
    assert review.reading(math.nan) == "not enough data"


# -- access: annotators never reach agreement figures or other people's labels ---------------

TABLE_FUNCTIONS: list[tuple[str, Callable[[LabelTable, User], Any]]] = [
    ("agreement_report", lambda t, u: review.agreement_report(t, actor=u)),
    ("annotator_table", lambda t, u: review.annotator_table(t, actor=u)),
    ("kappa_matrix", lambda t, u: review.kappa_matrix(t, actor=u, field="right_action")),
    (
        "label_distribution",
        lambda t, u: review.label_distribution(t, actor=u, field="right_action"),
    ),
    ("confusion", lambda t, u: review.confusion(t, actor=u, field="right_action")),
    ("item_disagreement", lambda t, u: review.item_disagreement(t, actor=u)),
    ("alpha_over_time", lambda t, u: review.alpha_over_time(t, actor=u)),
    ("campaign_filters", lambda t, u: review.campaign_filters(t, actor=u)),
]


@pytest.mark.parametrize(
    "call", [c for _, c in TABLE_FUNCTIONS], ids=[n for n, _ in TABLE_FUNCTIONS]
)
def test_annotators_cannot_compute_figures(
    call: Callable[[LabelTable, User], Any], table: LabelTable, seeded: Seeded
) -> None:
    with pytest.raises(PermissionDenied, match="needs the lead role"):
        call(table, seeded.annotator)
    call(table, seeded.lead)  # the lead may


@pytest.mark.parametrize("name", ["campaign_report", "labels_version", "load_labels"])
def test_annotators_cannot_load_figures_or_labels(
    name: str, session: Session, seeded: Seeded
) -> None:
    calls: dict[str, Callable[[User], Any]] = {
        "campaign_report": lambda u: review.campaign_report(
            session=session, actor=u, campaign=seeded.campaign, n_resamples=0
        ),
        "labels_version": lambda u: review.labels_version(
            session=session, actor=u, campaign=seeded.campaign
        ),
        "load_labels": lambda u: load_labels(session=session, actor=u, campaign=seeded.campaign),
    }
    with pytest.raises(PermissionDenied):
        calls[name](seeded.annotator)
    judge = seeded.users[JUDGE]
    with pytest.raises(PermissionDenied):
        calls[name](judge)
    calls[name](seeded.lead)
