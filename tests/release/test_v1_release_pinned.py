"""A refusal-v1 release is byte for byte what it was before gold records learnt version 2's
fields (issue 13): same keys, same columns, same files."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
from conftest import make_user
from release_helpers import adjudicate, labeled_campaign
from sqlmodel import Session

from annotate.release.publish import create_release
from annotate.release.selection import InclusionPolicy
from annotate.schema import LabelSchema

# item -> annotator -> overrides of full_labels()
SPEC = {
    "a1": {"ann1": {}, "ann2": {}},
    "a2": {"ann1": {"right_action": "refuse", "intent": "harmful", "observed_action": "refuse"},
           "ann2": {"right_action": "refuse", "intent": "harmful", "observed_action": "refuse"}},
    "a3": {"ann1": {"right_action": "clarify", "intent": "ambiguous"},
           "ann2": {"right_action": "answer_safe_part", "intent": "ambiguous",
                    "failure_categories": ["disproportionate_caveat"]}},
    "a4": {"ann1": {"failure_categories": []}, "ann2": {"right_action": "answer_with_caveat"}},
}  # fmt: skip
# sha256 of each file of the release, written by main's code at eea2488 (before issue 13).
PINNED = {
    "README.md": "19940d3289ba66b8944da042a8c298f9073403cfa2daf58bee68fbac1358f261",
    "gold-record.schema.json": "883096fa10559c34a90ac6de990f03fd4a014e7a6b46ecbbe53ec5d6e9ef00c1",
    "gold.csv": "7cd4b153e851db50b6eb4cd2660d5d18d2ff37a955176d23899248fae16c30ce",
    "gold.jsonl": "1d48b86eedc790c94c3b73bc74dbde5d5b3ff64e1a96c193acc3c3298d45cc01",
    "inspect/dataset.jsonl": "d3912cb3a18e65a805fbfc93ec603aa36f108be4a7162e900477a751a7fd7f53",
    "label-schema.json": "d9f6070d63f4fe841eb8b584102e56de4560fd9373e2393eb5d75608b503bcce",
    # Without its "agreement" key, as json.dumps(sort_keys=True) (same figure from eea2488).
    "manifest.json": "7ec6c83e4b075c4be60fad54f556b64e7ac9aa43ad106e56a44dda256be3a51d",
}
PINNED_PARQUET = "27b759952c10e817fbf09f9c080deeaa17587fdc3aeeb768ce8a5d73f2fa638a"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_v1_release_is_unchanged(session: Session, schema: LabelSchema, tmp_path: Path) -> None:
    assert schema.id == "refusal-v1"
    campaign, items, _ = labeled_campaign(session, schema, SPEC, overlap=2)
    lead = make_user(session, "lena", role="lead")
    adjudicate(session, items["a3"], lead, note="ask first", right_action="clarify",
               intent="ambiguous", guideline_gap=True)  # fmt: skip
    session.commit()
    result = create_release(
        session=session,
        actor=lead,
        campaign=campaign,
        out_dir=tmp_path / "out",
        n_resamples=50,
        policy=InclusionPolicy(accept="majority"),
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    folder = Path(result.path)
    got = {name: _sha((folder / name).read_bytes()) for name in PINNED}
    # The manifest's agreement figures grew (intervals per failure category, issue 16): the
    # rest of the manifest is pinned.
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.pop("agreement")
    got["manifest.json"] = _sha(json.dumps(manifest, sort_keys=True).encode())
    # Parquet bytes carry the writer's version: its Arrow schema and rows are pinned instead.
    table = pq.read_table(folder / "gold.parquet")
    parquet = _sha((table.schema.to_string() + json.dumps(table.to_pylist())).encode())
    assert got == PINNED
    assert parquet == PINNED_PARQUET
    first = json.loads((folder / "gold.jsonl").read_text().splitlines()[0])
    assert list(first) == [
        "id", "prompt", "conversation", "response", "model", "source", "category", "group",
        "right_action", "band", "intent", "epistemic_status", "observed_action",
        "failure_categories", "soft_labels", "n_annotators", "disagreement", "adjudicated",
        "adjudicated_by", "adjudication_note", "guideline_gap", "metadata",
    ]  # fmt: skip
