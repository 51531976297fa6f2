"""The dataset card: one split name, language, provenance, licences, a warning; loads offline."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from netguard import block_network
from release_helpers import gold_record, write_gold

from annotate.schema import LabelSchema

datasets = pytest.importorskip("datasets")  # in the dev extra


def release(tmp_path: Path, schema: LabelSchema) -> Path:
    records = [
        gold_record(id="x1", source="xstest", metadata={"license": "CC-BY-4.0"}),
        gold_record(id="x2", source="xstest", metadata={"license": "CC-BY-4.0"}),
        gold_record(
            id="s1",
            source="seed",
            prompt=None,
            conversation=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "How do I kill a child process?"},
            ],
            adjudicated=True,
            adjudicated_by="lena",
            n_annotators=2,
        ),
        gold_record(id="w1", source="web", n_annotators=4),
    ]
    agreement = {"n_annotators": 5, "fields": {"right_action": {"alpha": 0.81, "ci": [0.7, 0.9]}}}
    return write_gold(
        tmp_path / "exports",
        schema,
        records,
        dataset="carded",
        agreement=agreement,
        source_licenses={"seed": "MIT", "xstest": "ignored: items carry their own"},
    )


def front_and_body(card: str) -> tuple[dict[str, Any], str]:
    _, front, body = card.split("---\n", 2)
    return yaml.safe_load(front), body


def snippet(body: str) -> str:
    use = body.split("## Use", 1)[1]
    return re.search(r"```python\n(.*?)```", use, re.S).group(1)  # type: ignore[union-attr]


def test_card_metadata_provenance_licences_and_warning(tmp_path: Path, schema: LabelSchema) -> None:
    folder = release(tmp_path, schema)
    front, body = front_and_body((folder / "README.md").read_text())
    [config] = front["configs"]
    [split] = config["data_files"]
    assert split["split"] == "test"
    assert 'split="test"' in snippet(body) and "train" not in snippet(body)
    assert front["language"] == ["en"]
    assert front["task_categories"] == ["text-classification"]
    assert "Content warning" in body.split("## ")[0]
    provenance = body.split("## Where the labels come from", 1)[1].split("## ", 1)[0]
    assert "Annotators: 5 humans" in provenance
    assert "per gold item, 2 to 4 (median 3)" in provenance
    assert "1 of 4 gold items (0.25) were decided by a lead" in provenance
    assert "alpha 0.810" in provenance
    licences = body.split("## Sources and licences", 1)[1].split("## ", 1)[0]
    assert "| xstest | 2 | CC-BY-4.0 |" in licences
    assert "| seed | 1 | MIT |" in licences
    assert "| web | 1 | unknown: check before redistributing |" in licences


def test_the_cards_own_snippet_loads_the_release_offline(
    tmp_path: Path, schema: LabelSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = release(tmp_path, schema)
    _, body = front_and_body((folder / "README.md").read_text())
    attempts = block_network(monkeypatch)
    # `datasets` reads these at import (before this test runs), hence both the variables and
    # its config; without them it pings S3 to count the "download".
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_UPDATE_DOWNLOAD_COUNTS", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))
    monkeypatch.chdir(folder)
    scope: dict[str, Any] = {}
    exec(snippet(body), scope)  # noqa: S102 - the card's own snippet, as a reader runs it
    gold = scope["gold"]
    assert gold.num_rows == 4 and gold.split == "test"
    assert sorted(gold["id"]) == ["s1", "w1", "x1", "x2"]
    row = next(r for r in gold if r["id"] == "s1")
    assert row["conversation"][0] == {"role": "system", "content": "Be brief."}
    assert row["band"]["answer"] == 1.0 and row["adjudicated"] is True
    assert os.getcwd() == str(folder)
    # The card's own config (README front matter) gives the same split and features.
    by_config = datasets.load_dataset(str(folder), split="test")
    assert by_config.num_rows == 4 and by_config.features == gold.features
    assert not attempts
