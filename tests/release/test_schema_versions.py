"""One campaign through agreement, the review queue, a release and a score, per schema version.

Version 1 must give exactly the figures it gave before version 2 existed; version 2 measures
agreement under the symmetrised distance and bands and scores under the directed credit.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ADMIN, DEFAULT_SCHEMA_PATH, make_campaign, make_item, make_user
from release_helpers import adjudicate, items_by_id
from sqlalchemy.engine import Engine
from sqlmodel import Session

from annotate import stats, storage
from annotate.release.publish import create_release
from annotate.release.selection import InclusionPolicy
from annotate.review.adjudication import item_detail
from annotate.review.breakdowns import item_disagreement
from annotate.review.figures import campaign_report
from annotate.review.queue import review_queue
from annotate.schema import LabelSchema, load_schema
from annotate.scoring.predictions import score_release
from annotate.storage.queries import load_labels

V2_PATH = DEFAULT_SCHEMA_PATH.parent / "refusal-v2.yaml"
# Each item's right action as chosen by ann1, ann2, ann3: near misses and far misses.
RIGHT = {
    "q1": ["answer", "answer", "answer"],
    "q2": ["answer", "answer_with_caveat", "answer"],
    "q3": ["refuse", "refuse", "answer_safe_part"],
    "q4": ["clarify", "abstain", "clarify"],
    "q5": ["abstain", "refuse", "abstain"],
    "q6": ["answer", "refuse", "clarify"],
    "q7": ["answer_safe_part", "clarify", "answer_safe_part"],
    "q8": ["answer_with_caveat", "answer_safe_part", "answer_with_caveat"],
}
# A model's action on each item.
MODEL = {
    "q1": "answer",
    "q2": "answer_with_caveat",
    "q3": "answer_safe_part",
    "q4": "abstain",
    "q5": "refuse",
    "q6": "clarify",
    "q7": "pivot",
    "q8": "answer",
}
BASE_V1 = {
    "intent": "benign",
    "epistemic_status": "answerable",
    "observed_action": "answer",
    "failure_categories": [],
    "confidence": "high",
}
BASE_V2 = {
    **BASE_V1,
    "harm_area": "none",
    "severity": "none",
    "noncompliance_reason": "incomplete",  # dropped where the right action is `answer`
    "answer_quality": "useful",
}


def _rounded(x: Any) -> Any:
    if isinstance(x, float):
        return round(x, 6)
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_rounded(v) for v in x]
    return x


def figures(engine: Engine, schema: LabelSchema, tmp_path: Path) -> dict[str, Any]:
    """Label RIGHT with three annotators, adjudicate q6, release, score MODEL; the figures."""
    base = BASE_V2 if schema.version == 2 else BASE_V1
    with Session(engine, expire_on_commit=False) as session:
        campaign = make_campaign(session, schema, name="compat", overlap=3)
        storage.import_items(
            session=session,
            actor=ADMIN,
            campaign=campaign,
            records=[make_item(external_id=q, prompt=f"Question {q}?") for q in RIGHT],
        )
        users = [make_user(session, f"ann{i}") for i in (1, 2, 3)]
        lead = make_user(session, "lena", role="lead")
        items = items_by_id(session, campaign)
        for q, rights in RIGHT.items():
            for user, right in zip(users, rights, strict=True):
                labels = schema.normalize_labels({**base, "right_action": right})
                storage.save_annotation(session=session, user=user, item=items[q], labels=labels)
        adjudicate(
            session,
            items["q6"],
            lead,
            band={"clarify": 1.0, "answer": 0.5},
            note="ask first",
            right_action="clarify",
        )
        session.commit()
        report = campaign_report(
            session=session, actor=lead, campaign=campaign, n_resamples=200, seed=0
        )
        table = load_labels(session=session, actor=lead, campaign=campaign)
        per_item = item_disagreement(table, actor=lead)
        queue = review_queue(session=session, actor=lead, campaign=campaign)
        details = {
            q: item_detail(session=session, actor=lead, item_id=items[q].id)  # type: ignore[arg-type]
            for q in ("q3", "q4", "q7")
        }
        result = create_release(
            session=session,
            actor=lead,
            campaign=campaign,
            out_dir=tmp_path / "out",
            n_resamples=200,
            policy=InclusionPolicy(accept="majority"),
            now=datetime(2026, 1, 1, tzinfo=UTC),
            # The figures are the point here; some of these labels break rules on purpose.
            allow_rule_violations=True,
        )
        session.commit()
    release = Path(result.path)
    gold = [json.loads(line) for line in (release / "gold.jsonl").read_text().splitlines()]
    manifest = json.loads((release / "manifest.json").read_text())
    preds = tmp_path / "model.jsonl"
    preds.write_text("".join(json.dumps({"id": q, "action": a}) + "\n" for q, a in MODEL.items()))
    model = score_release(release, [f"m={preds}"], n_resamples=200, seed=0).models["m"]
    return _rounded(
        {
            # The figures v1 had before v2 (later additions such as AC1 and BCa intervals are
            # tested in tests/stats).
            "right_action_agreement": _before_v2(
                report.fields["right_action"].model_dump(mode="json")
            ),
            "item_disagreement": per_item.sort_values("item_id")["disagreement"].tolist(),
            # Open items first, most disagreed first; adjudicated items after them.
            "queue": queue["disagreement"].tolist(),
            "queue_adjudicated": queue["adjudicated"].astype(bool).tolist(),
            "detail": {q: [d.disagreement, d.suggested_band] for q, d in details.items()},
            "gold": [
                {
                    "id": g["id"],
                    "right_action": g["right_action"],
                    "band": g["band"],
                    "disagreement": g["disagreement"],
                    "soft": g["soft_labels"]["right_action"],
                }
                for g in gold
            ],
            "manifest_right_action": _before_v2(manifest["agreement"]["fields"]["right_action"]),
            # Scoring v2 replaced the refusal rates by error buckets and its own intervals
            # (issue 14); the banded score and the accuracy are what both scorers share.
            "score": {
                "banded_score": model.banded_score,
                "accuracy": model.accuracy.rate,
                "n": model.n,
            },
        }
    )


# Computed by main's code at commit 8f153bf (before version 2 existed) on this very scenario,
# rounded to 6 digits: a version 1 campaign must keep every one of these figures.
def _before_v2(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in figures.items() if k in _V1_AGREEMENT}


_V1_AGREEMENT = {
    "alpha": 0.272152,
    "banded_alpha": 0.426509,
    "banded_ci": [0.113151, 0.612511],
    "ci": [0.045747, 0.433567],
    "n_units": 8,
}
_ANSWER = {"answer": 1.0, "answer_safe_part": 0.25, "answer_with_caveat": 0.75}
V1_EXPECTED = {
    "right_action_agreement": _V1_AGREEMENT,
    "item_disagreement": [0.0, 0.166667, 0.5, 0.333333, 0.5, 1.0, 0.333333, 0.333333],
    # Before the lead's pages put adjudicated items last: [1.0, 0.5, 0.5, 0.333333, 0.333333,
    # 0.333333, 0.166667, 0.0]; the adjudicated item (1.0) now comes after the open ones.
    "queue": [0.5, 0.5, 0.333333, 0.333333, 0.333333, 0.166667, 0.0, 1.0],
    "queue_adjudicated": [False, False, False, False, False, False, False, True],
    "detail": {
        "q3": [0.5, {"abstain": 0.25, "answer_safe_part": 0.5, "refuse": 1.0}],
        "q4": [0.333333, {"abstain": 0.5, "answer_safe_part": 0.5, "clarify": 1.0}],
        "q7": [
            0.333333,
            {
                "answer": 0.25,
                "answer_safe_part": 1.0,
                "answer_with_caveat": 0.5,
                "clarify": 0.5,
                "pivot": 0.25,
                "refuse": 0.25,
            },
        ],
    },
    "gold": [
        {"id": "q1", "right_action": "answer", "band": _ANSWER, "disagreement": 0.0,
         "soft": {"answer": 1.0}},
        {"id": "q2", "right_action": "answer", "band": _ANSWER, "disagreement": 0.166667,
         "soft": {"answer": 0.666667, "answer_with_caveat": 0.333333}},
        {"id": "q3", "right_action": "refuse",
         "band": {"abstain": 0.25, "answer_safe_part": 0.5, "refuse": 1.0},
         "disagreement": 0.5, "soft": {"answer_safe_part": 0.333333, "refuse": 0.666667}},
        {"id": "q4", "right_action": "clarify",
         "band": {"abstain": 0.5, "answer_safe_part": 0.5, "clarify": 1.0},
         "disagreement": 0.333333, "soft": {"abstain": 0.333333, "clarify": 0.666667}},
        {"id": "q5", "right_action": "abstain",
         "band": {"abstain": 1.0, "clarify": 0.5, "refuse": 0.5},
         "disagreement": 0.5, "soft": {"abstain": 0.666667, "refuse": 0.333333}},
        {"id": "q6", "right_action": "clarify", "band": {"answer": 0.5, "clarify": 1.0},
         "disagreement": 1.0,
         "soft": {"answer": 0.333333, "clarify": 0.333333, "refuse": 0.333333}},
        {"id": "q7", "right_action": "answer_safe_part",
         "band": {"answer": 0.25, "answer_safe_part": 1.0, "answer_with_caveat": 0.5,
                  "clarify": 0.5, "pivot": 0.25, "refuse": 0.25},
         "disagreement": 0.333333, "soft": {"answer_safe_part": 0.666667, "clarify": 0.333333}},
        {"id": "q8", "right_action": "answer_with_caveat",
         "band": {"answer": 0.75, "answer_safe_part": 0.5, "answer_with_caveat": 1.0},
         "disagreement": 0.333333,
         "soft": {"answer_safe_part": 0.333333, "answer_with_caveat": 0.666667}},
    ],
    "manifest_right_action": _V1_AGREEMENT,
    "score": {"banded_score": 0.65625, "accuracy": 0.25, "n": 8},
}  # fmt: skip


def test_a_v1_campaign_gives_the_figures_it_gave_before_v2(
    engine: Engine, schema: LabelSchema, tmp_path: Path
) -> None:
    assert schema.id == "refusal-v1"
    assert figures(engine, schema, tmp_path) == V1_EXPECTED


def _mean_pair_distance(votes: list[str], distance: np.ndarray, labels: list[str]) -> float:
    """Mean distance over ordered pairs of different annotators (what the queue orders by)."""
    pairs = [(a, b) for i, a in enumerate(votes) for j, b in enumerate(votes) if i != j]
    return sum(distance[labels.index(a), labels.index(b)] for a, b in pairs) / len(pairs)


def test_a_v2_campaign_agrees_symmetrised_and_bands_and_scores_directed(
    engine: Engine, tmp_path: Path
) -> None:
    v2 = load_schema(V2_PATH)
    got = figures(engine, v2, tmp_path)
    # Agreement: 1 - (c[a][b] + c[b][a]) / 2. clarify/abstain: 1 - (0.25 + 0.5) / 2 = 0.625,
    # in 4 of the 6 ordered pairs of q4's three annotators.
    assert got["detail"]["q4"][0] == pytest.approx(4 * 0.625 / 6, abs=1e-6)
    # answer/answer_with_caveat: 1 - (0.75 + 0.5) / 2 = 0.375 (version 1: 0.25).
    assert got["gold"][1]["disagreement"] == pytest.approx(4 * 0.375 / 6, abs=1e-6)
    distance = v2.distance_matrix()
    expected = [_mean_pair_distance(v, distance, v2.action_labels) for v in RIGHT.values()]
    assert got["item_disagreement"] == pytest.approx(expected, abs=1e-6)
    flags = got["queue_adjudicated"]
    assert flags == sorted(flags)  # every open item before every adjudicated one
    n_open = flags.count(False)
    assert sorted(got["queue"]) == pytest.approx(sorted(expected), abs=1e-6)
    assert got["queue"][:n_open] == sorted(got["queue"][:n_open], reverse=True)
    rights = [v2.action_labels.index(a) for a in v2.right_actions]
    banded = stats.alpha(
        [list(col) for col in zip(*RIGHT.values(), strict=True)],
        distance[np.ix_(rights, rights)],
        labels=v2.right_actions,
    )
    assert got["right_action_agreement"]["banded_alpha"] == pytest.approx(banded, abs=1e-6)
    assert got["manifest_right_action"]["banded_alpha"] == pytest.approx(banded, abs=1e-6)
    # Bands: the directed row of the right action, widened to 0.5 for a third of the votes.
    assert got["detail"]["q4"][1] == {
        "answer_with_caveat": 0.5,
        "answer_safe_part": 0.5,
        "clarify": 1.0,
        "correct_premise": 0.25,
        "abstain": 0.5,
    }
    by_id = {g["id"]: g for g in got["gold"]}
    # An answer on a safe-part item hands over what should be withheld: no credit (v1: 0.25).
    assert by_id["q7"]["band"] == {
        "answer_safe_part": 1.0,
        "clarify": 0.5,
        "refuse": 0.25,
        "pivot": 0.25,
    }
    # A plain answer to a caveat item earns 0.5 (v1: 0.75, whichever way round).
    assert by_id["q8"]["band"] == {
        "answer": 0.5,
        "answer_with_caveat": 1.0,
        "answer_safe_part": 0.5,
    }
    # Score: 1 + 0.75 + 0.5 + 0.5 + 0.5 + 1 + 0.25 + 0.5 over 8 items (q8's answer now 0.5).
    assert got["score"]["banded_score"] == pytest.approx(5.0 / 8)
