"""The protocol-level load benchmark's checks afterwards (bench/bench_protocol_load.py) find what
they are for: a clean run passes, and each planted fault (an item over k, a label stored unlike
what was sent, a lost or an unacknowledged label, an item shown twice, a wrong label counter)
is reported. Labels are made through the core functions, as the server makes them."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from annotate import labeling, storage
from annotate.accounts.auth import system_actor
from annotate.storage import db, visibility
from bench.bench_protocol_load import CAMPAIGN, LABEL_SETS, setup
from bench.protocol_check import AnnotatorRun, check

OVERLAP = 2
EACH = 2


def claim(url: str, name: str) -> tuple[int, str]:
    """Lease the next item to `name`: its assignment and its handle."""
    engine = db.make_engine(url)
    try:
        with labeling.write_session(engine) as s:
            user = storage.get_user(session=s, name=name)
            campaign = storage.get_campaign(session=s, name=CAMPAIGN)
            got = labeling.claim_next(session=s, user=user, campaign=campaign)
            assert got is not None
            handle = visibility.item_handle(campaign=campaign, item_id=got.item.id or 0)
            return got.assignment.id or 0, handle
    finally:
        engine.dispose()


def submit(url: str, name: str, assignment: int, labels: dict[str, object]) -> None:
    engine = db.make_engine(url)
    try:
        with labeling.write_session(engine) as s:
            user = storage.get_user(session=s, name=name)
            labeling.submit(session=s, user=user, assignment_id=assignment, labels=labels)
    finally:
        engine.dispose()


def sql(url: str, statement: str) -> None:
    engine = db.make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def labeled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[AnnotatorRun]]:
    """Three annotators, two labels each, on six items with k = 2: the database file and the
    runs as the bench records them (the item left on screen after the last submit too)."""
    path = tmp_path_factory.mktemp("check") / "base.db"
    url = f"sqlite:///{path}"
    names = setup(url, items=6, annotators=3, overlap=OVERLAP)
    runs = [AnnotatorRun(name=n, base_url="") for n in names]
    for n in range(EACH + 1):
        for run in runs:
            shown = claim(url, run.name)
            run.shown.append(shown)
            if n < EACH:
                labels = LABEL_SETS[n % len(LABEL_SETS)]
                submit(url, run.name, shown[0], labels)
                run.sent[shown[0]] = labels
    return path, runs


def copy(labeled: tuple[Path, list[AnnotatorRun]], tmp_path: Path) -> tuple[str, list]:
    path, runs = labeled
    shutil.copy(path, tmp_path / "case.db")
    fresh = [
        AnnotatorRun(name=r.name, base_url="", shown=list(r.shown), sent=dict(r.sent)) for r in runs
    ]
    return f"sqlite:///{tmp_path / 'case.db'}", fresh


def test_a_clean_run_passes(labeled: tuple[Path, list[AnnotatorRun]], tmp_path: Path) -> None:
    url, runs = copy(labeled, tmp_path)
    assert check(url, runs, items=EACH, overlap=OVERLAP) == []


def _over_k(url: str, runs: list[AnnotatorRun]) -> None:
    # A fourth person labels an item that already has k labels, behind the claims' back.
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        outsider = storage.add_user(session=s, actor=system_actor(), name="outsider")
        full = s.execute(
            text("SELECT id FROM item WHERE human_labels = :k LIMIT 1"), {"k": OVERLAP}
        ).scalar_one()
        item = s.get(storage.models.Item, full)
        assert item is not None
        storage.save_annotation(session=s, user=outsider, item=item, labels=dict(LABEL_SETS[0]))
    engine.dispose()


def _changed(url: str, runs: list[AnnotatorRun]) -> None:
    sql(url, "UPDATE annotation SET labels = json_set(labels, '$.confidence', 'low') "
        "WHERE id = (SELECT min(id) FROM annotation)")  # fmt: skip


def _lost(url: str, runs: list[AnnotatorRun]) -> None:
    # The page acknowledged the item still on screen, but nothing was saved for it.
    runs[0].sent[runs[0].shown[-1][0]] = dict(LABEL_SETS[0])


def _unacknowledged(url: str, runs: list[AnnotatorRun]) -> None:
    runs[1].sent.pop(runs[1].shown[0][0])


def _shown_twice(url: str, runs: list[AnnotatorRun]) -> None:
    runs[2].shown.append(runs[2].shown[0])


def _miscounted(url: str, runs: list[AnnotatorRun]) -> None:
    sql(url, "UPDATE item SET human_labels = 0 WHERE human_labels > 0 AND id = "
        "(SELECT min(id) FROM item WHERE human_labels > 0)")  # fmt: skip


@pytest.mark.parametrize(
    ("plant", "expected"),
    [
        (_over_k, "over k = 2"),
        (_changed, "stored ['confidence'] unlike what was sent"),
        (_lost, "not stored"),
        (_unacknowledged, "stored but never acknowledged"),
        (_shown_twice, "was shown item"),
        (_miscounted, "counts 0 human labels"),
    ],
)
def test_a_planted_fault_is_reported(
    labeled: tuple[Path, list[AnnotatorRun]],
    tmp_path: Path,
    plant: Callable[[str, list[AnnotatorRun]], None],
    expected: str,
) -> None:
    url, runs = copy(labeled, tmp_path)
    plant(url, runs)
    problems = check(url, runs, items=EACH, overlap=OVERLAP)
    assert any(expected in p for p in problems), problems
