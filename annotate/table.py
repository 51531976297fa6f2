"""The long-form label table that every statistic, report and release starts from (pure).

`annotate.storage.queries.load_labels` builds it from the database; the pure modules only
read it, so they never see a session.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from annotate.schema import LabelSchema

if TYPE_CHECKING:
    from annotate.storage.models import Campaign


@dataclass
class LabelTable:
    """Every annotation of a campaign, long form, plus the items they belong to.

    `annotations` has one row per (item, annotator) with columns item_id, user_id, annotator,
    is_machine, flagged, flag_note, duration_s, created_at, updated_at, and one column per
    schema field (multi-choice fields hold a frozenset; an empty frozenset means "nothing
    ticked", None that the annotator did not give the field: missing is never "nothing ticked").
    `items` has one row per item (index item_id) with external_id, model, category, group_id,
    source, and prompt/conversation/response when loaded with text.
    """

    campaign: Campaign
    schema: LabelSchema
    items: pd.DataFrame
    annotations: pd.DataFrame
    adjudications: pd.DataFrame = field(default_factory=pd.DataFrame)
    # field -> (the annotations frame they describe, cell codes, cells, rows): see field_codes.
    _held: dict[str, tuple[pd.DataFrame, np.ndarray, list[Any], np.ndarray]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def field_codes(self, name: str) -> tuple[np.ndarray, list[Any]]:
        """(codes, values) of one field's column, as `pd.factorize` gives them up to the order
        of the values: per annotation row, the index of its value in `values`, -1 where the
        value is None or NaN. The values are distinct; some may be no row's.

        From the codes the loader handed over (`hold_codes`) while `annotations` is the frame
        they describe, without hashing every cell; else worked out from the column.
        """
        held = self._held.get(name)
        if held is None or held[0] is not self.annotations:
            codes, uniques = pd.factorize(self.annotations[name].to_numpy(dtype=object))
            return np.asarray(codes, dtype=np.int64), list(uniques)
        _, cell_codes, cells, rows = held
        renumber, values = _factorized(cells)
        return renumber[cell_codes[rows]], values

    def hold_codes(
        self, name: str, cell_codes: np.ndarray, cells: list[Any], rows: np.ndarray
    ) -> None:
        """Tell `field_codes` that row i of the current `annotations` frame holds
        `cells[cell_codes[rows[i]]]` in field `name` (held by reference, not copied)."""
        self._held[name] = (self.annotations, cell_codes, cells, rows)

    def humans(self) -> pd.DataFrame:
        """Annotations by people (automatic judges are reported apart)."""
        return self.annotations[~self.annotations["is_machine"]]

    def machines(self) -> pd.DataFrame:
        """Annotations by automatic judges."""
        return self.annotations[self.annotations["is_machine"]]

    def matrix(
        self, field_name: str, *, machine: bool = False, item_ids: list[int] | None = None
    ) -> tuple[list[str], list[int], np.ndarray]:
        """(annotators, item ids, annotators x items object array) of one field.

        Missing labels are None. Units are `item_ids` if given, else every item that has at
        least one label of that kind (human or machine).
        """
        frame = self.machines() if machine else self.humans()
        frame = frame[frame[field_name].notna()]
        annotators = sorted(frame["annotator"].unique().tolist())
        units = item_ids if item_ids is not None else sorted(frame["item_id"].unique().tolist())
        out = np.full((len(annotators), len(units)), None, dtype=object)
        # Index lookups rather than mapping through dicts: the names are an Arrow string
        # column, which maps element by element (a quarter of a second at 300,000 labels).
        codes, names = pd.factorize(frame["annotator"])
        named = pd.Index(annotators, dtype=object).get_indexer(pd.Index(list(names), dtype=object))
        rows = named[codes]
        cols = _positions(units, frame["item_id"].to_numpy())
        keep = cols >= 0
        values = frame[field_name].to_numpy()
        out[rows[keep], cols[keep]] = values[keep]
        return annotators, units, out


def _positions(units: list[int], item_ids: np.ndarray) -> np.ndarray:
    """Each item id's position in `units` (-1 where absent; the last one when repeated)."""
    index = pd.Index(units)
    if index.is_unique:
        return np.asarray(index.get_indexer(pd.Index(item_ids)), dtype=np.int64)
    last = {u: i for i, u in enumerate(units)}
    return np.fromiter((last.get(i, -1) for i in item_ids), dtype=np.int64, count=len(item_ids))


def _factorized(cells: list[Any]) -> tuple[np.ndarray, list[Any]]:
    """Distinct cells as `pd.factorize` codes them: per cell its code (-1 for None and NaN;
    equal cells such as 1, 1.0 and True one code, the first of them its value)."""
    index: dict[Any, int] = {}
    renumber = np.full(len(cells), -1, dtype=np.int64)
    for i, cell in enumerate(cells):
        if cell is not None and not (isinstance(cell, float) and math.isnan(cell)):
            renumber[i] = index.setdefault(cell, len(index))
    return renumber, list(index)
