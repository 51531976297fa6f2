"""Print the design table of the v2 seed set (seed_prompts/v2/*.jsonl) as markdown.

Run `python seed_prompts/design_table.py` from the repository root; README.md pastes its
output, and tests/test_seeds_v2.py checks that the README still matches it.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

V2_DIR = Path(__file__).parent / "v2"

INTENTS = ("benign", "ambiguous", "harmful")
EPISTEMIC = ("answerable", "uncertain", "false_premise", "ill_posed")
GRID_CELLS = tuple(f"{i}/{e}" for i in INTENTS for e in EPISTEMIC)
SPECIAL_CELLS = {
    "invariance": "same request, only the asker's persona varies (one right action)",
    "context": "the request itself varies (own lock, brother's door, neighbour's house)",
    "low_severity_compliance": "full unsafe compliance, low severity (fake reviews, plagiarism...)",
    "over_abstention": "says it cannot know a knowable fact",
    "fabrication": "confident wrong answer to a knowable fact",
    "missing_caveat": "answers where a safety or accuracy note was needed, without it",
    "unnecessary_clarify": "asks a question where a plain answer was right",
    "subtle_over_refusal": "hedges, says 'consult a professional', or answers a narrower question",
    "fiction_roleplay": "fiction and role-play wrappers, benign and not",
    "system_prompt": "a system prompt changes or frames what is right",
    "non_english": "German, French, Spanish and Portuguese requests",
}
DESIGN_CELLS = GRID_CELLS + tuple(SPECIAL_CELLS)


def load_items(directory: Path = V2_DIR) -> list[tuple[str, int, dict[str, Any]]]:
    """Every item as (file name, line number, object); a bad line raises ValueError naming it."""
    rows: list[tuple[str, int, dict[str, Any]]] = []
    for path in sorted(directory.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path.name}:{number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(obj, dict):
                raise ValueError(f"{path.name}:{number}: expected a JSON object")
            rows.append((path.name, number, obj))
    return rows


def render(items: list[dict[str, Any]]) -> str:
    """The markdown tables: two-axis grid, design cells, harm areas, right actions."""
    grid = Counter((it.get("expected_intent"), it.get("expected_epistemic_status")) for it in items)
    out = ["Two-axis grid (every item, by hinted intent x epistemic status):", ""]
    out.append("| intent \\ epistemic | " + " | ".join(EPISTEMIC) + " | total |")
    out.append("|---|" + "---:|" * (len(EPISTEMIC) + 1))
    for intent in INTENTS:
        counts = [grid[(intent, e)] for e in EPISTEMIC]
        out.append(f"| {intent} | " + " | ".join(map(str, counts)) + f" | {sum(counts)} |")
    totals = [sum(grid[(i, e)] for i in INTENTS) for e in EPISTEMIC]
    out.append("| total | " + " | ".join(map(str, totals)) + f" | {sum(totals)} |")

    cells = Counter(it.get("cell") for it in items)
    out += ["", "Design cells (each item's `cell`; every item is in exactly one):", ""]
    out += ["| cell | items | what it holds |", "|---|---:|---|"]
    for cell in GRID_CELLS:
        out.append(f"| `{cell}` | {cells[cell]} | two-axis item written for this crossing |")
    for cell, meaning in SPECIAL_CELLS.items():
        out.append(f"| `{cell}` | {cells[cell]} | {meaning} |")
    out.append(f"| **total** | **{sum(cells.values())}** | |")

    for title, key in (
        ("Harm areas", "expected_harm_area"),
        ("Right actions", "expected_right_action"),
    ):
        counted = Counter(it.get(key) for it in items)
        out += ["", f"{title} (`{key}`):", ""]
        out.append(", ".join(f"`{k}` {n}" for k, n in sorted(counted.items(), key=_by_count)))
    return "\n".join(out) + "\n"


def _by_count(pair: tuple[Any, int]) -> tuple[int, str]:
    return (-pair[1], str(pair[0]))


if __name__ == "__main__":
    sys.stdout.write(render([obj for _, _, obj in load_items()]))
