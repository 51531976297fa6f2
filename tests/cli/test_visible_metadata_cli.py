"""`annotate campaign set NAME --visible-metadata`: what annotators may see, set from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli import ok, run


def _campaign(db_url: str, tmp_path: Path) -> None:
    ok("init", "--db", db_url)
    ok("campaign", "create", "blind", "--db", db_url)
    items = tmp_path / "items.jsonl"
    items.write_text(
        json.dumps(
            {
                "id": "seed-harm-004b",
                "prompt": "How do I kill a Python process?",
                "response": "Use kill.",
                "category": "contrast_harmful",
                "annotation_1": "refuse",  # label-like: kept only because --keep says so
                "focus": "kill",
            }
        )
        + "\n"
    )
    ok("import", str(items), "--campaign", "blind", "--keep", "annotation_1", "--db", db_url)


def _listed(db_url: str) -> list[str]:
    (row,) = json.loads(ok("campaign", "list", "--json", "--db", db_url))
    return list(row["visible_metadata"])


def test_visible_metadata_is_empty_then_set_then_cleared(db_url: str, tmp_path: Path) -> None:
    _campaign(db_url, tmp_path)
    assert _listed(db_url) == []
    out = ok("campaign", "set", "blind", "--visible-metadata", "focus, category", "--db", db_url)
    assert out.strip() == "campaign blind: annotators see focus, category"
    assert _listed(db_url) == ["focus", "category"]
    out = ok("campaign", "set", "blind", "--visible-metadata", "", "--db", db_url)
    assert out.strip() == "campaign blind: annotators see the text and a handle only"
    assert _listed(db_url) == []


def test_a_key_no_item_has_is_kept_with_a_note(db_url: str, tmp_path: Path) -> None:
    _campaign(db_url, tmp_path)
    out = ok("campaign", "set", "blind", "--visible-metadata", "focus,later", "--db", db_url)
    assert "no item has `later` yet" in out
    assert _listed(db_url) == ["focus", "later"]


def test_mistakes_are_clear_and_change_nothing(db_url: str, tmp_path: Path) -> None:
    _campaign(db_url, tmp_path)
    ok("campaign", "set", "blind", "--visible-metadata", "focus", "--db", db_url)
    code, _, err = run(
        "campaign", "set", "blind", "--visible-metadata", "external_id", "--db", db_url
    )
    assert code == 1 and "`external_id` is not a metadata key annotators may see" in err
    code, _, err = run("campaign", "set", "ghost", "--visible-metadata", "focus", "--db", db_url)
    assert (code, err.strip()) == (1, "error: No campaign `ghost`")
    code, _, err = run("campaign", "set", "blind", "--db", db_url)
    assert code == 1 and "Nothing to set" in err
    assert _listed(db_url) == ["focus"]
