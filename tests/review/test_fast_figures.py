"""The lead's figures computed from label counts equal the straightforward computation.

Each reference below builds the annotators x units matrices the plain way (a dict per label)
and computes the figure from them as the figures did before they were computed from the
counts of the long table; the figures must be the very same numbers, not merely close.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from annotate import review
from annotate import stats as ag
from annotate.accounts.auth import system_actor
from annotate.review.breakdowns import _metric
from annotate.review.controls import RECENT, leave_one_out_drift
from annotate.review.figures import PERSONAL_FIELDS, _credit, item_fields
from annotate.schema import LabelSchema
from annotate.storage.models import Campaign
from annotate.table import LabelTable

LEAD = system_actor()
START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def random_table(
    schema: LabelSchema,
    seed: int,
    *,
    n_items: int = 160,
    annotators: tuple[str, ...] = ("ann", "bob", "cy", "dee"),
    most: int = 3,
    missing: float = 0.1,
    one_value: bool = False,
    days: int = 4,
) -> LabelTable:
    """Random labels: 1 to `most` humans per item (some with a field left out), a judge on
    every third item, a few adjudications; `one_value` gives every single field one value."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    people = [*annotators, "judge"]
    for item in range(1, n_items + 1):
        count = int(rng.integers(1, most + 1))
        who = [
            str(a) for a in rng.choice(annotators, size=min(count, len(annotators)), replace=False)
        ]
        if item % 3 == 0:
            who.append("judge")
        for name in who:
            stamp = START + timedelta(minutes=int(rng.integers(0, days * 24 * 60)))
            row: dict[str, Any] = {
                "item_id": item,
                "user_id": people.index(name) + 1,
                "annotator": name,
                "is_machine": name == "judge",
                "flagged": bool(rng.random() < 0.05),
                "duration_s": float(rng.integers(5, 90)),
                "created_at": stamp,
                "updated_at": stamp,
                "flag_note": "look" if rng.random() < 0.03 else None,
            }
            for spec in schema.fields:
                if spec.kind == "text":
                    row[spec.name] = "why" if rng.random() < 0.05 else None
                elif rng.random() < missing:
                    row[spec.name] = None
                elif spec.kind == "multi":
                    size = int(rng.integers(0, 3))
                    row[spec.name] = frozenset(
                        str(v) for v in rng.choice(spec.values[:4], size=size, replace=False)
                    )
                else:
                    row[spec.name] = spec.values[0] if one_value else str(rng.choice(spec.values))
            rows.append(row)
    annotations = pd.DataFrame(rows).sort_values(["item_id", "annotator"], ignore_index=True)
    annotations["annotator"] = annotations["annotator"].astype("str")  # as load_labels types it
    items = pd.DataFrame(
        {
            "item_id": range(1, n_items + 1),
            "external_id": [f"x-{i}" for i in range(1, n_items + 1)],
            "model": [f"m{i % 3}" for i in range(1, n_items + 1)],
            "category": [f"c{i % 4}" for i in range(1, n_items + 1)],
            "group_id": [f"g{i // 5}" for i in range(1, n_items + 1)],
        }
    ).set_index("item_id", drop=False)
    adjudicated = [int(i) for i in rng.choice(np.arange(1, n_items + 1), size=6, replace=False)]
    adjudications = pd.DataFrame(
        {
            "item_id": adjudicated,
            "labels": [
                {"right_action": str(rng.choice(schema.field("right_action").values))}
                | ({"intent": "harmful"} if i % 2 else {})
                for i in adjudicated
            ],
            "method": ["manual"] * len(adjudicated),
        }
    )
    return LabelTable(
        campaign=Campaign(name="fast", schema_id=1, overlap=3),
        schema=schema,
        items=items,
        annotations=annotations,
        adjudications=adjudications,
    )


def plain_matrix(
    frame: pd.DataFrame, field: str, units: list[int], annotators: list[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """Annotators x units object matrix of one field, one label at a time."""
    given = frame[frame[field].notna()]
    names = annotators if annotators is not None else sorted(set(given["annotator"]))
    row = {a: i for i, a in enumerate(names)}
    col = {u: i for i, u in enumerate(units)}
    out = np.full((len(names), len(units)), None, dtype=object)
    for name, item, value in zip(given["annotator"], given["item_id"], given[field], strict=True):
        if name in row and item in col:
            out[row[name], col[item]] = value
    return names, out


TABLES = [
    pytest.param({}, id="mixed"),
    pytest.param({"missing": 0.4}, id="many-missing"),
    pytest.param({"most": 1}, id="single-annotator-items"),
    pytest.param({"one_value": True}, id="one-category"),
    pytest.param({"annotators": ("solo",), "most": 1}, id="one-annotator"),
    pytest.param({"n_items": 250, "most": 4, "days": 1}, id="four-per-item-one-day"),
]


def plain(column: pd.Series) -> list[Any]:
    """A column's values, missing as None (a string column holds None as NaN)."""
    return [None if pd.isna(v) else v for v in column]


def same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


@pytest.mark.parametrize("kind", TABLES)
@pytest.mark.parametrize("seed", [1])
def test_leave_one_out_drift_equals_the_matrices(
    schema: LabelSchema, kind: dict[str, Any], seed: int
) -> None:
    table = random_table(schema, seed, **kind)
    field = schema.right_action_field
    humans = table.humans()
    level = _metric(schema, field)
    everyone = sorted(set(humans.loc[humans[field].notna(), "annotator"]))

    def delta(annotator: str, units: list[int]) -> float | None:
        if not units or annotator not in everyone:
            return None
        names, matrix = plain_matrix(humans, field, units, everyone)
        whole = ag.alpha(matrix, level, labels=schema.field(field).values)
        rest = np.delete(matrix, names.index(annotator), axis=0)
        without = (
            ag.alpha(rest, level, labels=schema.field(field).values) if len(rest) else math.nan
        )
        return None if math.isnan(whole - without) else float(whole - without)

    expected = {}
    for name in humans["annotator"].unique():
        mine = humans[humans["annotator"] == name].sort_values(["created_at", "item_id"])
        ids = [int(i) for i in mine["item_id"]]
        earlier = delta(name, ids[:-RECENT]) if len(ids) > RECENT else None
        expected[str(name)] = (delta(name, ids[-RECENT:]), earlier)
    assert leave_one_out_drift(table, actor=LEAD) == expected


@pytest.mark.parametrize("kind", TABLES)
@pytest.mark.parametrize("seed", [1])
def test_item_disagreement_equals_the_matrices(
    schema: LabelSchema, kind: dict[str, Any], seed: int
) -> None:
    table = random_table(schema, seed, **kind)
    got = review.item_disagreement(table, actor=LEAD)
    humans = table.humans()
    units = sorted(set(humans["item_id"]))
    n_labels = humans.groupby("item_id").size().reindex(units).to_numpy()
    assert got["item_id"].tolist() == units
    unanimous = n_labels > 0
    for spec in item_fields(schema):
        _, matrix = plain_matrix(humans, spec.name, units, sorted(set(humans["annotator"])))
        if spec.kind == "multi":
            codes, domain = ag.encode_labels(matrix)
            metric: Any = ag.masi_distance_matrix(domain)  # type: ignore[arg-type]
        else:
            codes, domain = ag.encode_labels(matrix, spec.values)
            metric = _metric(schema, spec.name)
        scores = (
            ag.disagreement_scores(matrix, metric, domain)
            if len(domain) >= 2
            else np.zeros(len(units))
        )
        assert np.array_equal(got[f"d_{spec.name}"].to_numpy(), scores), spec.name
        counts = ag.value_counts_from_codes(codes, len(domain))
        labelled, top = counts.sum(axis=1), counts.max(axis=1)
        agreed = (labelled == n_labels) & (top == n_labels)
        unanimous &= agreed if spec.required else (agreed | (labelled == 0))
        if spec.name == schema.right_action_field:
            majority = np.where(top * 2 > labelled, counts.argmax(axis=1), -1)
            assert plain(got["majority"]) == [domain[m] if m >= 0 else None for m in majority]
    assert got["unanimous"].tolist() == unanimous.tolist()
    _, intents = plain_matrix(humans, "intent", units, sorted(set(humans["annotator"])))
    values = schema.field("intent").values
    counts = ag.value_counts_from_codes(ag.encode_labels(intents, values)[0], len(values))
    top = counts.max(axis=1)
    single = ((counts == top[:, None]).sum(axis=1) == 1) & (top > 0)
    plurality = [
        values[c] if ok else None for c, ok in zip(counts.argmax(axis=1), single, strict=True)
    ]
    adjudicated = table.adjudications
    gold = {
        i: labels.get("intent")
        for i, labels in zip(adjudicated["item_id"], adjudicated["labels"], strict=True)
    }
    expected = [
        gold.get(u) if gold.get(u) is not None else p for u, p in zip(units, plurality, strict=True)
    ]
    assert plain(got["intent"]) == expected


def test_sets_keep_the_matrix_order_of_their_domain(schema: LabelSchema) -> None:
    """Sets are only partly ordered: their sorted domain depends on the order they are met
    in, and so do the MASI distances' rows; the counts meet them as the matrix did."""
    table = random_table(schema, 7, n_items=60)
    humans = table.humans()
    units = sorted(set(humans["item_id"]))
    from annotate.review.breakdowns import _set_counts
    from annotate.review.figures import _Grid

    counts, domain = _set_counts(_Grid(table, units), schema.failure_field)
    _, matrix = plain_matrix(humans, schema.failure_field, units, sorted(set(humans["annotator"])))
    codes, expected = ag.encode_labels(matrix)
    assert domain == expected
    assert np.array_equal(counts, ag.value_counts_from_codes(codes, len(expected)))


@pytest.mark.parametrize("by", ["day", "batch"])
@pytest.mark.parametrize("kind", TABLES)
def test_alpha_over_time_equals_the_matrices(
    schema: LabelSchema, kind: dict[str, Any], by: str
) -> None:
    table = random_table(schema, 3, **kind)
    got = review.alpha_over_time(table, actor=LEAD, by=by, batch_size=7)  # type: ignore[arg-type]
    humans = table.humans()
    units = sorted(set(humans["item_id"]))
    done = pd.to_datetime(humans["created_at"], utc=True).groupby(humans["item_id"]).max()
    done = done.reindex(units)
    order = np.argsort(done.to_numpy(), kind="stable")
    if by == "day":
        keys = done.dt.strftime("%Y-%m-%d").to_numpy()
    else:
        keys = np.empty(len(units), dtype=object)
        keys[order] = [f"#{i // 7 + 1}" for i in range(len(units))]
    names = sorted(set(humans["annotator"]))
    measures = []
    for spec in schema.choice_fields:
        if spec.kind != "single" or spec.name in PERSONAL_FIELDS:
            continue
        codes, _ = ag.encode_labels(plain_matrix(humans, spec.name, units, names)[1], spec.values)
        measures.append((spec.name, codes, len(spec.values), "nominal"))
        if spec.name == schema.right_action_field:
            banded = ag.band_distance(_credit(schema, spec.name))
            measures.append((f"{spec.name} (banded)", codes, len(spec.values), banded))
    rows = []
    stamps = done.to_numpy()
    for key in dict.fromkeys(keys[order].tolist()):
        cols = np.flatnonzero(keys == key)
        for name, codes, n_values, metric in measures:
            rows.append(
                (
                    key,
                    pd.Timestamp(stamps[cols].min()).to_pydatetime(),
                    pd.Timestamp(stamps[cols].max()).to_pydatetime(),
                    len(cols),
                    name,
                    ag.alpha_from_counts(
                        ag.value_counts_from_codes(codes[:, cols], n_values), metric
                    ),
                )
            )
    assert len(got) == len(rows)
    for mine, theirs in zip(got.itertuples(index=False), rows, strict=True):
        assert all(same(a, b) for a, b in zip(tuple(mine), theirs, strict=True)), (mine, theirs)


@pytest.mark.parametrize("kind", TABLES)
def test_table_matrix_places_every_label(schema: LabelSchema, kind: dict[str, Any]) -> None:
    table = random_table(schema, 5, **kind)
    humans = table.humans()
    for field in ("right_action", schema.failure_field):
        annotators, units, matrix = table.matrix(field)
        names, expected = plain_matrix(humans, field, units)
        assert annotators == names
        assert np.array_equal(matrix, expected)
    # Chosen units: some repeated (the last place holds the label), some never labeled.
    chosen = [9, 2, 2, 10_000, 5, 9, 1]
    annotators, units, matrix = table.matrix("intent", item_ids=chosen)
    names, expected = plain_matrix(humans, "intent", chosen)
    assert annotators == names and units == chosen
    assert np.array_equal(matrix, expected)
