"""Read a gold release folder as the arrays scoring needs, and the ids of its sibling releases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
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
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


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
    cols: dict[str, list[Any]], metas: _Metadata, name: str, *keys: str
) -> list[str | None] | None:
    """A column of the release, else the same key in item metadata; None when neither has it."""
    if name in cols:
        return [None if v is None else str(v) for v in cols[name]]
    return metas.column(name, *keys)


class _Metadata:
    """The items' metadata JSON, each distinct text parsed once (most items share a few)."""

    def __init__(self, column: pa.ChunkedArray | None, n: int) -> None:
        if column is None:
            self.codes = np.full(n, -1, dtype=np.int64)
            self.metas: list[dict[str, Any]] = []
            return
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            encoded = column.combine_chunks().dictionary_encode()
            self.codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
            self.metas = [_meta(v) for v in encoded.dictionary.to_pylist()]
        else:  # a struct or anything else: item by item
            self.codes = np.arange(n, dtype=np.int64)
            self.metas = [_meta(v) for v in column.to_pylist()]
        self.codes = self.codes.astype(np.int64)

    def column(self, name: str, *keys: str) -> list[str | None] | None:
        """Each item's value under `name` (else the first of `keys`), as text or None."""
        values: list[str | None] = []
        for meta in self.metas:
            value = next((meta[k] for k in (name, *keys) if meta.get(k) not in (None, "")), None)
            values.append(None if value is None else str(value))
        if all(v is None for v in values):
            return None
        table = np.array([*values, None], dtype=object)  # code -1: no metadata
        return table[self.codes].tolist()  # type: ignore[no-any-return]


def _codes(values: pa.ChunkedArray, actions: list[str]) -> IntArray:
    """Action codes of a string column (-1 for null, empty or unknown)."""
    found = pc.index_in(values, value_set=pa.array(actions, type=pa.string()))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)  # type: ignore[no-any-return]


def _leaked(failures: pa.ChunkedArray) -> BoolArray:
    """Items whose failure categories include `leaked`."""
    flat = failures.combine_chunks()
    hit = pc.equal(pc.list_flatten(flat), "leaked").fill_null(False)
    parents = pc.list_parent_indices(flat).to_numpy(zero_copy_only=False)
    out = np.zeros(len(flat), dtype=bool)
    out[parents[hit.to_numpy(zero_copy_only=False)]] = True
    return out


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
    # ParquetFile, not read_table: read_table imports pyarrow.dataset (half a second).
    parquet = pq.ParquetFile(release / GOLD_PARQUET)
    present = set(parquet.schema_arrow.names)
    wanted = [c for c in (*GOLD_COLUMNS, *OPTIONAL_COLUMNS) if c in present]
    table = parquet.read(columns=wanted)
    text = ("band", "right_action", "observed_action", "failure_categories", "metadata")
    cols = {name: table.column(name).to_pylist() for name in wanted if name not in text}
    band = table.column("band").combine_chunks()
    credit = np.zeros((table.num_rows, len(actions)))
    for j, action in enumerate(actions):
        if action in band.type.names:  # type: ignore[attr-defined]
            values = band.field(action).to_numpy(zero_copy_only=False)  # type: ignore[attr-defined]
            credit[:, j] = np.nan_to_num(values.astype(np.float64), nan=0.0)
    metas = _Metadata(table.column("metadata") if "metadata" in present else None, table.num_rows)
    leaked = (
        _leaked(table.column("failure_categories")) if "failure_categories" in present else None
    )
    return Gold(
        name=f"{manifest.get('dataset', release.parent.name)} v{manifest.get('version', '?')}",
        actions=actions,
        ids=[str(i) for i in cols["id"]],
        right=_codes(table.column("right_action"), actions),
        credit=credit,
        observed=_codes(table.column("observed_action"), actions),
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
        ids = pq.ParquetFile(other / GOLD_PARQUET).read(columns=["id"]).column("id").to_pylist()
        out.update(str(i) for i in ids)
        out |= held_back_ids(other)
    return out
