"""Breakdowns of a model's score by a column of the gold (intent, category, group, ...): pure.

A breakdown is kept as arrays, one entry per value of the column, and read as a mapping of
value -> `Breakdown`; the `Breakdown` objects are made only when a value is looked up, and the
JSON only when the report is dumped. A release of 100,000 items has some 25,000 groups, and
one validated object per group and model cost more than all the rest of scoring.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from annotate.scoring.buckets import BUCKETS

NONE_KEY = "(none)"

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class Breakdown(BaseModel):
    """Banded score, accuracy and error counts of one slice of items."""

    n: int
    banded_score: float | None
    accuracy: float | None
    errors: dict[str, int]


def _round(x: float) -> float | None:
    return round(x, 6) if math.isfinite(x) else None


def factorize(values: Sequence[str | None]) -> tuple[IntArray, list[str]]:
    """Codes into the sorted distinct labels of `values`, None read as `(none)`."""
    labels = np.array(values, dtype=object)
    if not len(labels):
        return np.zeros(0, dtype=np.int64), []
    labels[labels == None] = NONE_KEY  # noqa: E711 (elementwise)
    codes, uniques = pd.factorize(labels, sort=True)
    return codes.astype(np.int64), [str(u) for u in uniques]


class BreakdownTable(Mapping[str, Breakdown]):
    """Label -> Breakdown, held as arrays (see the module docstring).

    Compares equal to any mapping with the same Breakdowns, and dumps (model_dump, JSON) as
    the plain `{label: {n, banded_score, accuracy, errors}}` dict.
    """

    def __init__(
        self,
        labels: list[str],
        n: IntArray,
        score: FloatArray,
        accuracy: FloatArray,
        errors: IntArray,
    ) -> None:
        self.labels = labels
        self.n = n
        self.score = score
        self.accuracy = accuracy
        self.errors = errors
        self._index: dict[str, int] | None = None

    def __getitem__(self, label: str) -> Breakdown:
        if self._index is None:
            self._index = {key: i for i, key in enumerate(self.labels)}
        i = self._index[label]
        return Breakdown.model_validate(self._row(i))

    def _row(self, i: int) -> dict[str, Any]:
        counts = self.errors[i].tolist()
        return {
            "n": int(self.n[i]),
            "banded_score": _round(float(self.score[i])),
            "accuracy": _round(float(self.accuracy[i])),
            "errors": {b: c for b, c in zip(BUCKETS, counts, strict=True) if c},
        }

    def __iter__(self) -> Iterator[str]:
        return iter(self.labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return f"BreakdownTable({len(self)} values)"

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """The plain dict that `Breakdown.model_dump()` of every value would give."""
        rows, cols = np.nonzero(self.errors)
        errors: list[dict[str, int]] = [{} for _ in self.labels]
        counts = self.errors[rows, cols].tolist()
        for r, c, v in zip(rows.tolist(), cols.tolist(), counts, strict=True):
            errors[r][BUCKETS[c]] = v
        score = [_round(x) for x in self.score.tolist()]
        accuracy = [_round(x) for x in self.accuracy.tolist()]
        return {
            label: {"n": n, "banded_score": s, "accuracy": a, "errors": e}
            for label, n, s, a, e in zip(
                self.labels, self.n.tolist(), score, accuracy, errors, strict=True
            )
        }

    @classmethod
    def from_mapping(cls, values: Mapping[str, Breakdown | Mapping[str, Any]]) -> BreakdownTable:
        """A table of the given Breakdowns (or their dicts)."""
        parsed = [Breakdown.model_validate(v) for v in values.values()]
        errors = np.zeros((len(parsed), len(BUCKETS)), dtype=np.int64)
        for i, b in enumerate(parsed):
            for name, count in b.errors.items():
                errors[i, BUCKETS.index(name)] = count

        def column(xs: list[float | None]) -> FloatArray:
            return np.array([np.nan if x is None else x for x in xs], dtype=np.float64)

        return cls(
            list(map(str, values)),
            np.array([b.n for b in parsed], dtype=np.int64),
            column([b.banded_score for b in parsed]),
            column([b.accuracy for b in parsed]),
            errors,
        )

    @classmethod
    def _validate(cls, value: Any) -> BreakdownTable:
        if isinstance(value, BreakdownTable):
            return value
        if isinstance(value, Mapping):
            return cls.from_mapping(value)
        raise ValueError(f"expected a mapping of value -> breakdown, got {type(value).__name__}")

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda table: table.as_dict(), when_used="always"
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The JSON Schema of what it dumps: `{value: Breakdown}`."""
        return handler(
            core_schema.dict_schema(core_schema.str_schema(), Breakdown.__pydantic_core_schema__)
        )


def breakdown(
    codes: IntArray, labels: list[str], credit: FloatArray, correct: BoolArray, bucket: IntArray
) -> BreakdownTable:
    """The breakdown of scored items by a column given as `codes` into `labels` (one per item).

    Only the labels that some scored item carries appear, in the order of `labels` (sorted).
    """
    k = len(labels)
    counts = np.bincount(codes, minlength=k)
    sums = np.bincount(codes, weights=credit, minlength=k)
    right = np.bincount(codes, weights=correct.astype(np.float64), minlength=k)
    hit = bucket >= 0
    width = len(BUCKETS)
    errors = np.bincount(codes[hit] * width + bucket[hit], minlength=k * width).reshape(k, width)
    present = np.flatnonzero(counts)
    n = counts[present]
    with np.errstate(invalid="ignore", divide="ignore"):
        return BreakdownTable(
            [labels[i] for i in present.tolist()],
            n.astype(np.int64),
            sums[present] / n,
            right[present] / n,
            errors[present],
        )
