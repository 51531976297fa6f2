"""Checks on a `LabelTable` shared by the storage tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from annotate.table import LabelTable


def assert_codes_match_cells(table: LabelTable) -> None:
    """The codes the loader hands over are pd.factorize's codes of each field's column, up
    to the order of the values."""
    for spec in table.schema.fields:
        codes, values = table.field_codes(spec.name)
        column = table.annotations[spec.name].to_numpy(dtype=object)
        want_codes, want_values = pd.factorize(column)
        assert len(values) == len(set(values)) >= len(want_values)  # some may be no row's
        assert np.array_equal(codes < 0, want_codes < 0)
        assert all(values[c] == column[i] for i, c in enumerate(codes) if c >= 0)
        # The same partition of the rows, value for value.
        pairs = set(zip(codes.tolist(), want_codes.tolist(), strict=True))
        assert len(pairs) == len({c for c, _ in pairs}) == len({w for _, w in pairs})
