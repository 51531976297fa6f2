"""Read a gold release folder as the arrays scoring needs, and the ids of its sibling releases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from annotate.errors import NotFound
from annotate.release.folders import read_label_schema, read_manifest, verify_file
from annotate.release.formats import GOLD_PARQUET
from annotate.scoring.score import Gold

GOLD_COLUMNS = (
    "id",
    "right_action",
    "band",
    "observed_action",
    "intent",
    "epistemic_status",
    "category",
    "model",
    "group",
)
# Columns of a refusal-v2 release; read from item metadata when a release lacks them.
OPTIONAL_COLUMNS = ("harm_area", "severity", "group_kind", "failure_categories", "metadata")
ATTRIBUTE_KEYS = ("persona_attribute", "group_attribute")


def _meta(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value:
        try:
            loaded = json.loads(value)
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}
    return {}


def _column(
    cols: dict[str, list[Any]], metas: list[dict[str, Any]], name: str, *keys: str
) -> list[str | None] | None:
    """A column of the release, else the same key in item metadata; None when neither has it."""
    if name in cols:
        return [None if v is None else str(v) for v in cols[name]]
    found = False
    out: list[str | None] = []
    for meta in metas:
        value = next((meta[k] for k in (name, *keys) if meta.get(k) not in (None, "")), None)
        found = found or value is not None
        out.append(None if value is None else str(value))
    return out if found else None


def load_gold(release: Path) -> Gold:
    """The gold release in folder `release` as a `Gold` table.

    Reads gold.parquet after checking it against the manifest's sha256 (a modified release
    is refused: ValidationProblem); NotFound when `release` is not a release folder.
    """
    if not release.is_dir():
        raise NotFound(f"Gold release {release} does not exist (expected exports/NAME/vN)")
    manifest = read_manifest(release)
    verify_file(release, GOLD_PARQUET, manifest)
    schema = read_label_schema(release)
    actions = schema.action_labels
    index = {a: i for i, a in enumerate(actions)}
    present = set(pq.read_schema(release / GOLD_PARQUET).names)
    wanted = [c for c in (*GOLD_COLUMNS, *OPTIONAL_COLUMNS) if c in present]
    table = pq.read_table(release / GOLD_PARQUET, columns=wanted)
    cols = {name: table.column(name).to_pylist() for name in wanted if name != "band"}
    band = table.column("band").combine_chunks()
    credit = np.zeros((table.num_rows, len(actions)))
    for j, action in enumerate(actions):
        if action in band.type.names:  # type: ignore[attr-defined]
            values = band.field(action).to_numpy(zero_copy_only=False)  # type: ignore[attr-defined]
            credit[:, j] = np.nan_to_num(values.astype(np.float64), nan=0.0)
    metas = [_meta(m) for m in cols.get("metadata", [None] * table.num_rows)]
    failures = cols.get("failure_categories")
    leaked = (
        np.array([bool(f) and "leaked" in f for f in failures], dtype=bool)
        if failures is not None
        else None
    )
    return Gold(
        name=f"{manifest.get('dataset', release.parent.name)} v{manifest.get('version', '?')}",
        actions=actions,
        ids=[str(i) for i in cols["id"]],
        right=np.array([index.get(a, -1) for a in cols["right_action"]], dtype=np.int64),
        credit=credit,
        observed=np.array(
            [index.get(a, -1) if a else -1 for a in cols["observed_action"]], dtype=np.int64
        ),
        intent=cols["intent"],
        epistemic_status=cols["epistemic_status"],
        category=cols["category"],
        model=cols["model"],
        group=cols["group"],
        harm_area=_column(cols, metas, "harm_area"),
        severity=_column(cols, metas, "severity"),
        group_kind=_column(cols, metas, "group_kind"),
        group_attribute=_column(cols, metas, "group_attribute", *ATTRIBUTE_KEYS),
        leaked=leaked,
    )


def held_back_ids(release: Path) -> set[str]:
    """Ids the release lists as held back."""
    return {str(h["id"]) for h in read_manifest(release).get("held_back", []) if "id" in h}


def sibling_ids(release: Path) -> set[str]:
    """Ids in the gold or held back of the dataset's other versions (`exports/NAME/v*`)."""
    out: set[str] = set()
    for other in sorted(release.parent.glob("v*")):
        if other == release or not (other / GOLD_PARQUET).is_file():
            continue
        ids = pq.read_table(other / GOLD_PARQUET, columns=["id"]).column("id").to_pylist()
        out.update(str(i) for i in ids)
        out |= held_back_ids(other)
    return out
