"""`annotate demo`: the v2 seed set without hints, simulated annotators' labels, and a lead's
pages, a release and a score that work on the first run while real annotators still get items."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from annotate.cli import app
from annotate.intake.demo import SEED_HINTS, load_demo, seed_files
from annotate.intake.demo_labels import SIMULATED_NAMES, demo_item_ids
from annotate.labeling import claim_next, write_session
from annotate.labeling.submission import review_labels
from annotate.review.queue import review_queue
from annotate.settings import Settings
from annotate.storage import db
from annotate.storage.campaigns import get_campaign
from annotate.storage.models import Annotation, AnnotationHistory, Item, User
from annotate.storage.schemas import campaign_schema

SEEDS = Path(__file__).resolve().parents[2] / "seed_prompts" / "v2"
ROWS = {
    row["id"]: row
    for path in sorted(SEEDS.glob("*.jsonl"))
    for row in map(json.loads, path.read_text(encoding="utf-8").splitlines())
}
PREMISE = ("correct_premise",)
runner = CliRunner()


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


@pytest.fixture
def loaded(db_url: str, tmp_path: Path) -> Settings:
    settings = Settings(database_url=db_url, exports_dir=tmp_path / "exports")
    load_demo(settings)
    return settings


def test_demo_loads_the_v2_seed_set() -> None:
    files = seed_files(Settings())
    assert [p.parent.name for p in files] == ["v2"] * len(files) and len(files) >= 9


def test_no_hint_reaches_an_item(loaded: Settings) -> None:
    hint_keys = SEED_HINTS | {k for row in ROWS.values() for k in row if k.startswith("expected")}
    assert hint_keys <= SEED_HINTS  # SEED_HINTS names every hint column the files carry
    engine = db.make_engine(loaded.database_url)
    try:
        with Session(engine) as s:
            items = s.exec(select(Item)).all()
    finally:
        engine.dispose()
    assert sorted(i.external_id for i in items) == sorted(ROWS)
    for item in items:
        row = ROWS[item.external_id]
        assert not set(item.meta) & hint_keys, item.external_id
        assert set(item.meta) <= {"prompt_id", "group_kind", "language"}, item.external_id
        stored = json.dumps(
            [item.meta, item.category, item.model, item.source, item.group_id]
        ).lower()
        legit = {row["category"], row.get("group_kind")}  # a cell may be named as its theme
        for key in ("behaviour", "cell", "persona_attribute"):
            if row.get(key) and row[key] not in legit:
                assert f'"{row[key].lower()}"' not in stored, (item.external_id, key)
        assert item.category == row["category"] and item.model == row["model"]
        if "system_prompt" in row:
            # Annotators see the system prompt: the leading turn of the conversation.
            assert item.conversation is not None and item.prompt is None
            assert item.conversation[0] == {"role": "system", "content": row["system_prompt"]}
            assert item.conversation[-1]["role"] == "user"


def test_simulated_annotators_label_part_of_the_set_as_a_submit_would(loaded: Settings) -> None:
    engine = db.make_engine(loaded.database_url)
    try:
        with Session(engine) as s:
            campaign = get_campaign(session=s, name="demo")
            schema = campaign_schema(session=s, campaign=campaign)
            users = {u.name: u for u in s.exec(select(User)).all()}
            rows = s.exec(
                select(Annotation, Item, User)
                .join(Item, col(Item.id) == Annotation.item_id)
                .join(User, col(User.id) == Annotation.user_id)
            ).all()
            counts = {it.external_id: it.human_labels for it in s.exec(select(Item)).all()}
    finally:
        engine.dispose()
    for name in SIMULATED_NAMES:
        user = users[name]
        assert user.password_hash is None and not user.active and not user.is_machine
        assert user.role == "annotator"
    by_item: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for ann, item, user in rows:
        assert user.name in SIMULATED_NAMES and ann.origin == "import"
        # The checks of a submit: every shown field given, hidden ones null, no rule broken.
        normalized, warnings = review_labels(schema, ann.labels)
        assert normalized == ann.labels and warnings == [], (item.external_id, warnings)
        assert ann.overridden_rules == []
        by_item[item.external_id][user.name] = ann.labels
    chosen = demo_item_ids(list(ROWS))
    assert sorted(by_item) == chosen and 50 <= len(chosen) <= 70
    assert {len(v) for v in by_item.values()} == {2, 3}
    assert all(counts[ext] == len(by_item.get(ext, {})) for ext in counts)
    # Realistic: mostly the hinted right action, with disagreement on some items.
    split = [e for e, got in by_item.items() if len({v["right_action"] for v in got.values()}) > 1]
    assert 5 <= len(split) <= len(chosen) // 2
    hinted = Counter(
        v["right_action"] == ROWS[e]["expected_right_action"]
        for e, labels in by_item.items()
        for v in labels.values()
    )
    assert hinted[True] > 3 * hinted[False] > 0
    assert any(len({v["intent"] for v in labels.values()}) > 1 for labels in by_item.values())
    answered = [v for labels in by_item.values() for v in labels.values()]
    assert any(v["answer_quality"] is not None for v in answered)
    assert all(
        (v["answer_quality"] is not None)
        == (v["observed_action"] in {"answer", "answer_with_caveat", "answer_safe_part", *PREMISE})
        for v in answered
    )


def test_running_the_demo_again_adds_nothing(loaded: Settings) -> None:
    def snapshot() -> tuple[int, int, int, int, list[int]]:
        engine = db.make_engine(loaded.database_url)
        try:
            with Session(engine) as s:
                return (
                    len(s.exec(select(Item.id)).all()),
                    len(s.exec(select(Annotation.id)).all()),
                    len(s.exec(select(AnnotationHistory.id)).all()),
                    len(s.exec(select(User.id)).all()),
                    sorted(s.exec(select(Item.human_labels)).all()),
                )
        finally:
            engine.dispose()

    before = snapshot()
    assert load_demo(loaded) == {}
    assert snapshot() == before


def test_the_review_queue_has_the_disagreements_first(loaded: Settings) -> None:
    engine = db.make_engine(loaded.database_url)
    try:
        with Session(engine) as s:
            campaign = get_campaign(session=s, name="demo")
            lena = s.exec(select(User).where(User.name == "lena")).one()
            queue = review_queue(session=s, actor=lena, campaign=campaign)
    finally:
        engine.dispose()
    assert len(queue) == len(demo_item_ids(list(ROWS)))
    disagreement = queue["disagreement"].tolist()
    assert disagreement[0] > 0 and disagreement[-1] == 0
    assert disagreement == sorted(disagreement, reverse=True)


def test_real_annotators_still_get_items(loaded: Settings) -> None:
    engine = db.make_engine(loaded.database_url)
    try:
        with write_session(engine) as s:
            campaign = get_campaign(session=s, name="demo")
            alice = s.exec(select(User).where(User.name == "alice")).one()
            claim = claim_next(session=s, user=alice, campaign=campaign)
            assert claim is not None
            item = s.get(Item, claim.assignment.item_id)
            assert item is not None and item.human_labels < campaign.overlap
    finally:
        engine.dispose()


def test_agreement_release_and_score_work_on_the_first_run(
    loaded: Settings, tmp_path: Path
) -> None:
    url = loaded.database_url
    report = json.loads(ok("agreement", "-c", "demo", "--json", "--bootstrap", "0", "--db", url))
    assert report["complete_items"] > 0 and report["n_annotators"] == len(SIMULATED_NAMES)
    assert 0 < report["fields"]["right_action"]["alpha"] < 1
    released = json.loads(
        ok("release", "-c", "demo", "--out", str(tmp_path / "exports"), "--json", "--db", url)
    )
    folder = Path(released["path"])
    gold = [json.loads(x) for x in (folder / "gold.jsonl").read_text().splitlines()]
    assert len(gold) > 0 and {g["id"] for g in gold} <= set(demo_item_ids(list(ROWS)))
    predictions = tmp_path / "model-x.jsonl"
    predictions.write_text(
        "".join(
            json.dumps({"id": g["id"], "action": ROWS[g["id"]]["expected_observed_action"]}) + "\n"
            for g in gold
        )
    )
    scored = json.loads(
        ok("score", "--gold", str(folder), "--predictions", str(predictions), "--json",
           "--resamples", "0")
    )  # fmt: skip
    assert "model-x" in json.dumps(scored)
