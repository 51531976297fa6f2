"""The self-description of a release: the Hugging Face dataset card and the manifest.

Pure module: figures in, text and dicts out. The card carries no timestamp (it is a data file
like any other and must come out byte-identical for the same state); the manifest is the one
file with the creation time.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from annotate.release.folders import (
    INSPECT_DATASET,
    INSPECT_SCORER,
    INSPECT_TASK,
    LABEL_SCHEMA,
    RECORD_SCHEMA,
)
from annotate.release.formats import GOLD_CSV, GOLD_JSONL, GOLD_PARQUET
from annotate.release.record import GoldRecord, record_fields
from annotate.schema import LabelSchema

MANIFEST_FORMAT = 1
SPLIT = "test"
LANGUAGE = ("en",)
TASK_CATEGORIES = ("text-classification",)
LICENCE_KEYS = ("license", "licence", "source_license")
UNKNOWN_LICENCE = "unknown: check before redistributing"
CONTENT_WARNING = (
    "> **Content warning.** This dataset contains requests for harmful, dangerous or "
    "offensive content (weapons, self-harm, abuse, crime, hate) and model responses that may "
    "comply with them. It is meant for evaluating models, not for training them to comply."
)
FILES = {
    GOLD_JSONL: "one gold record per line (the reference form; `content_hash` is its sha256)",
    GOLD_PARQUET: "the same records; `band` and `soft_labels` as structs (null: no credit, "
    "nobody chose it), `metadata` as a JSON string",
    GOLD_CSV: "the same records for spreadsheets; formula-like cells start with an apostrophe; "
    "an empty cell is a missing value, `[]` failure categories ticked by nobody",
    LABEL_SCHEMA: "the label schema the items were labeled under (fields, credits, rules)",
    RECORD_SCHEMA: "JSON Schema every line of gold.jsonl validates against (choice fields as "
    "the label schema's values, credits and shares in [0, 1])",
    INSPECT_DATASET: "inspect_ai samples: input, target (right action), id, metadata (band...)",
    INSPECT_TASK: "inspect_ai task: `inspect eval inspect/task.py --model ...`",
    INSPECT_SCORER: "the band scorer used by the task (standard library only until scoring)",
    "manifest.json": "version, parent, policy, counts, agreement, held-back items, sha256s",
}


V2_NOTE_KEYS = frozenset({"answer_quality", "refusal_style", "noncompliance_reason", "resolution"})
V2_NOTE = (
    "`answer_quality`, `refusal_style` and `noncompliance_reason` apply only to some items "
    "(an answer, a refusal, a right action other than `answer`): where they do not apply they "
    "are `null`, as they are where nobody labeled them. `resolution` says how the right action "
    'was reached: keep `resolution == "unanimous"` for the items every annotator agreed on, or '
    "weigh `adjudicated` ones (the lead decided, and `disagreement_cause` says why annotators "
    "differed)."
)


def _md(text: object) -> str:
    """Text safe inside a Markdown table cell (imported categories are untrusted)."""
    return re.sub(r"([\\`*_\[\]<>|#])", r"\\\1", str(text)).replace("\n", " ")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(ci: Sequence[float] | None) -> str:
    return "n/a" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return name
    return "100K<n<1M" if n < 1_000_000 else "1M<n<10M"


def hf_features(schema: LabelSchema) -> list[dict[str, Any]]:
    """The `dataset_info.features` of the card, matching gold.parquet's columns."""

    def string(name: str) -> dict[str, Any]:
        return {"name": name, "dtype": "string"}

    def floats(name: str, keys: Sequence[str]) -> dict[str, Any]:
        return {"name": name, "struct": [{"name": k, "dtype": "float64"} for k in keys]}

    features = [
        string("id"),
        string("prompt"),
        {"name": "conversation", "list": [string("role"), string("content")]},
        string("response"),
        string("model"),
        string("source"),
        string("category"),
        string("group"),
        string("right_action"),
        floats("band", schema.action_labels),
        string("intent"),
        string("epistemic_status"),
        string("observed_action"),
        {"name": "failure_categories", "sequence": "string"},
        {
            "name": "soft_labels",
            "struct": [floats(f.name, f.values) for f in schema.choice_fields],
        },
        {"name": "n_annotators", "dtype": "int64"},
        {"name": "disagreement", "dtype": "float64"},
        {"name": "adjudicated", "dtype": "bool"},
        string("adjudicated_by"),
        string("adjudication_note"),
        {"name": "guideline_gap", "dtype": "bool"},
        string("metadata"),
    ]
    by_name = {f["name"]: f for f in features}
    return [by_name.get(k) or string(k) for k in record_fields(schema)]


def dataset_card(
    *,
    dataset: str,
    version: int,
    parent_version: int | None,
    schema: LabelSchema,
    rows: Sequence[Mapping[str, Any]],
    counts: Mapping[str, Any],
    agreement: Mapping[str, Any],
    policy: Mapping[str, Any],
    diff_summary: Mapping[str, Any] | None,
    license: str,
    language: Sequence[str] = LANGUAGE,
    source_licenses: Mapping[str, str] | None = None,
) -> str:
    """README.md: Hugging Face dataset card with YAML front matter, figures, tables, usage.

    The one split is `test` (a gold set is for evaluation), in the config and in the snippet
    alike. `language` lists the items' languages (ISO 639-1); `source_licenses` maps an item
    `source` to its licence, for sources whose items do not carry one in their metadata.
    """
    front = {
        "pretty_name": f"{dataset} gold v{version}",
        "license": license,
        "language": list(language),
        "task_categories": list(TASK_CATEGORIES),
        "annotations_creators": ["expert-generated"],
        "tags": ["safety", "refusal", "right-action", "llm-evaluation"],
        "size_categories": [_size_category(len(rows))],
        "configs": [
            {"config_name": "default", "data_files": [{"split": SPLIT, "path": GOLD_PARQUET}]}
        ],
        # No `splits` entry: `datasets` wants its byte size too, which a pure card cannot
        # know, and warns on a partial one; the config above names the split.
        "dataset_info": {"features": hf_features(schema)},
    }
    fields = (agreement or {}).get("fields", {})
    ra = fields.get(schema.right_action_field, {})
    held = counts.get("held_back_by_reason", {})
    held_text = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in held.items())
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip(),
        "---",
        "",
        f"# {_md(dataset)} gold, v{version}",
        "",
        CONTENT_WARNING,
        "",
        f"For each item, a prompt (or conversation) and one model response, the **right action**: "
        f"what the model should have done, with a **tolerance band** of neighbouring actions "
        f"that earn partial credit. Labeled under schema `{schema.id}` by human annotators; "
        f"disagreements adjudicated by a lead.",
        "",
        f"- **{counts['gold']} gold items**, {counts['adjudicated']} of them adjudicated by a "
        + (
            f"lead; {counts['held_back']} items held back ({held_text}), each listed with its "
            "reason in manifest.json."
            if counts["held_back"]
            else "lead; no item held back."
        ),
        f"- Inclusion: at least {policy['min_annotations_resolved']} human annotations, and "
        f"the right action {policy['accept']} among them or adjudicated.",
        f"- Agreement on the right action (Krippendorff's alpha over every item with two or "
        f"more human labels): {_fmt(ra.get('alpha'))} (95% CI {_ci(ra.get('ci'))}); under the "
        f"band distance {_fmt(ra.get('banded_alpha'))} (95% CI {_ci(ra.get('banded_ci'))}).",
    ]
    if parent_version is not None and diff_summary is not None:
        lines.append(
            f"- Since v{parent_version}: {diff_summary['added']} added, "
            f"{diff_summary['removed']} removed, {diff_summary['changed']} changed."
        )
    else:
        lines.append("- First release of this dataset.")
    lines += ["", "## Where the labels come from", "", *_provenance(rows, counts, agreement)]
    lines += ["", "## Sources and licences", "", *_licences(rows, source_licenses or {})]
    lines += ["", "## Right action by intent", "", *_crosstab(rows, schema), ""]
    lines += ["## Agreement", "", "| field | alpha | 95% CI | banded alpha | items |"]
    lines.append("|---|---|---|---|---|")
    for name, entry in fields.items():
        lines.append(
            f"| `{name}` | {_fmt(entry.get('alpha'))} | {_ci(entry.get('ci'))} | "
            f"{_fmt(entry.get('banded_alpha')) if 'banded_alpha' in entry else ''} | "
            f"{entry.get('n_units', 0)} |"
        )
    lines += ["", "## Items by category", "", "| category | items |", "|---|---|"]
    lines += [f"| {_md(k)} | {v} |" for k, v in counts.get("by_category", {}).items()]
    lines += ["", "## Files", "", "| file | content |", "|---|---|"]
    lines += [f"| `{name}` | {what} |" for name, what in FILES.items()]
    keys = record_fields(schema)
    lines += ["", "## Fields", "", "| field | meaning |", "|---|---|"]
    lines += [
        f"| `{name}` | {_md(info.description or '')} |"
        for name, info in GoldRecord.model_fields.items()
        if name in keys
    ]
    lines += [
        "",
        "In `soft_labels`, values that no annotator chose are left out.",
        "",
        "A label field nobody labeled is `null` (an empty cell in gold.csv), never a value: "
        "`failure_categories` is `[]` only when annotators looked and ticked nothing (the "
        "response is fine), and `null` when nobody labeled them, which says nothing about the "
        "response. Filter on `failure_categories is not null` before counting failures.",
    ]
    if V2_NOTE_KEYS & set(keys):
        lines += ["", V2_NOTE]
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from datasets import load_dataset",
        "# from this folder; or load_dataset(<this folder's path or Hub id>, split=...)",
        f'gold = load_dataset("parquet", data_files={{"{SPLIT}": "{GOLD_PARQUET}"}}, '
        f'split="{SPLIT}")',
        "```",
        "",
        "Score a model's actions (`{id, action}` per line) against the bands:",
        "",
        "```bash",
        "annotate score --gold . --predictions my-model=actions.jsonl --plot tradeoff.png",
        "```",
        "",
        "Or run the eval in inspect_ai (a grader model names each response's action):",
        "",
        "```bash",
        "inspect eval inspect/task.py --model <provider/model> \\",
        "    --model-role grader=<provider/model>",
        "```",
        "",
    ]
    return "\n".join(lines)


def _provenance(
    rows: Sequence[Mapping[str, Any]], counts: Mapping[str, Any], agreement: Mapping[str, Any]
) -> list[str]:
    """Who labeled the items, how many per item, how far they agreed, how many a lead decided."""
    per_item = sorted(int(r.get("n_annotators") or 0) for r in rows)
    n = len(rows)
    annotators = (agreement or {}).get("n_annotators")
    adjudicated = int(counts.get("adjudicated", 0))
    ra: Mapping[str, Any] = next(iter(((agreement or {}).get("fields") or {}).values()), {})
    overlap = f"{per_item[0]} to {per_item[-1]} (median {per_item[n // 2]})" if per_item else "n/a"
    return [
        f"- Annotators: {annotators if annotators is not None else 'n/a'} humans, each item "
        "labeled independently (no annotator saw another's label) through the `annotate` tool; "
        "no model labels are part of the gold.",
        f"- Overlap: human annotations per gold item, {overlap}.",
        f"- Agreement: see the Agreement section (Krippendorff's alpha per field; first field "
        f"alpha {_fmt(ra.get('alpha'))}).",
        f"- Adjudication: {adjudicated} of {n} gold items "
        f"({_fmt(adjudicated / n if n else None, 2)}) were decided by a lead; the rest by the "
        "annotators' agreement under the inclusion policy. Per item: `n_annotators`, "
        "`disagreement`, `adjudicated`, `soft_labels`.",
    ]


def _licence_of(row: Mapping[str, Any]) -> str | None:
    meta = row.get("metadata") or {}
    if isinstance(meta, Mapping):
        for key in LICENCE_KEYS:
            if meta.get(key):
                return str(meta[key])
    return None


def _licences(rows: Sequence[Mapping[str, Any]], given: Mapping[str, str]) -> list[str]:
    """One row per item source: items, and the licence(s) its items or the release name."""
    by_source: dict[str, Counter[str]] = {}
    for r in rows:
        source = str(r.get("source") or "(none)")
        licence = _licence_of(r) or given.get(source) or UNKNOWN_LICENCE
        by_source.setdefault(source, Counter())[licence] += 1
    out = [
        "The labels are released under the card's licence; each item's prompt and response "
        "keep the licence of their source:",
        "",
        "| source | items | licence |",
        "|---|---|---|",
    ]
    for source, licences in sorted(by_source.items()):
        names = ", ".join(_md(k) for k in sorted(licences))
        out.append(f"| {_md(source)} | {sum(licences.values())} | {names} |")
    return out


def _crosstab(rows: Sequence[Mapping[str, Any]], schema: LabelSchema) -> list[str]:
    intents = next((f.values for f in schema.fields if f.name == "intent"), [])
    counts = Counter((r["right_action"], r.get("intent")) for r in rows)
    columns: list[str | None] = [*intents]
    if any(i is None or i not in intents for _, i in counts):
        columns.append(None)
    head = "| right action | " + " | ".join(c or "(none)" for c in columns) + " | total |"
    out = [head, "|---" * (len(columns) + 2) + "|"]
    for action in schema.right_actions:
        cells = [sum(n for (a, i), n in counts.items() if a == action and i == c) for c in columns]
        if c_total := sum(n for (a, _), n in counts.items() if a == action):
            out.append(f"| `{action}` | " + " | ".join(map(str, cells)) + f" | {c_total} |")
    return out


def build_manifest(
    *,
    dataset: str,
    version: int,
    parent_version: int | None,
    created_at: str,
    created_by: str,
    schema: LabelSchema,
    policy: Mapping[str, Any],
    counts: Mapping[str, Any],
    agreement: Mapping[str, Any],
    held_back: Sequence[Mapping[str, Any]],
    diff_summary: Mapping[str, Any] | None,
    content_hash: str,
    files: Mapping[str, Any],
) -> dict[str, Any]:
    """manifest.json's content; `files` maps every other file to its sha256 and size."""
    return {
        "format": MANIFEST_FORMAT,
        "dataset": dataset,
        "version": version,
        "parent_version": parent_version,
        "created_at": created_at,
        "created_by": created_by,
        "schema": {
            "id": schema.id,
            "name": schema.name,
            "version": schema.version,
            "sha256": schema.fingerprint(),
            "file": LABEL_SCHEMA,
        },
        "record_schema": RECORD_SCHEMA,
        "policy": dict(policy),
        "counts": dict(counts),
        "agreement": dict(agreement),
        "held_back": list(held_back),
        "diff_from_parent": dict(diff_summary) if diff_summary is not None else None,
        "content_hash": content_hash,
        "files": dict(files),
    }
