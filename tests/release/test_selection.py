"""Gold selection's vectorised helpers, and soft labels against a count done by hand."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from annotate.release.selection import (
    DIGITS,
    InclusionPolicy,
    _distinct_rows,
    _option_codes,
    _turns,
    select_gold,
)
from annotate.table import LabelTable
from tests.release.test_release_fuzz import label_tables


@pytest.mark.parametrize(
    ("matrix", "first", "inverse"),
    [
        ([[1, 2], [0, 0], [1, 2], [3, 0]], [1, 3, 0], [2, 0, 2, 1]),
        ([[0, 0, 0]], [0], [0]),
        (np.zeros((0, 3), dtype=np.int64), [], []),
        # Too many columns of large counts for one integer: every row stands alone.
        ([[7] * 40, [7] * 40], [0, 1], [0, 1]),
    ],
)
def test_distinct_rows(matrix: list[list[int]], first: list[int], inverse: list[int]) -> None:
    got_first, got_inverse = _distinct_rows(np.asarray(matrix, dtype=np.int64))
    assert got_first.tolist() == first and got_inverse.tolist() == inverse
    rows = np.asarray(matrix, dtype=np.int64)
    assert (rows[got_first][got_inverse] == rows).all()


def test_option_codes() -> None:
    values = pd.Series(["b", None, "a", "zz", "b", 3], dtype=object)
    assert _option_codes(values, ["a", "b"]).tolist() == [1, -1, 0, -1, 1, -1]
    assert _option_codes(pd.Series([], dtype=object), ["a"]).tolist() == []


def test_turns() -> None:
    assert _turns(None) is None and _turns([]) is None
    assert _turns([{"role": "user", "content": 5, "extra": 1}]) == [
        {"role": "user", "content": "5"}
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(label_tables())
def test_soft_labels_are_the_human_shares(generated: tuple[LabelTable, int]) -> None:
    table, _ = generated
    selection = select_gold(table, InclusionPolicy(min_annotations=1, accept="majority"))
    humans = table.humans()
    external = dict(zip(table.items["item_id"], table.items["external_id"], strict=True))
    for row in selection.rows:
        item_id = next(i for i, e in external.items() if e == row["id"])
        mine = humans[humans["item_id"] == item_id]
        for field in table.schema.choice_fields:
            given = [v for v in mine[field.name] if v is not None]
            if field.kind == "multi":
                counts = Counter(x for v in given for x in v)
            else:
                counts = Counter(v for v in given if v in field.values)
            total = len(given) if field.kind == "multi" else sum(counts.values())
            expected = {
                v: round(counts[v] / max(total, 1), DIGITS) for v in field.values if counts[v]
            }
            assert row["soft_labels"][field.name] == expected
            assert list(row["soft_labels"][field.name]) == list(expected)
