"""Labels passed already coded (`EncodedLabels`) give what their object matrix gives.

The lead's report hands `summarize` each field as codes into the values it found, rather than
an annotators x units object matrix: every figure must be the same, to the last bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from annotate import stats as ag
from annotate.errors import AgreementInputError
from annotate.stats import report as rep
from annotate.stats.intervals import alpha_interval

LABELS = ["answer", "refuse", "clarify", "abstain"]
CATEGORIES = ["over_refusal", "harmful", "vague"]


def objects(seed: int, values: list[Any], annotators: int = 4, units: int = 200) -> np.ndarray:
    """Annotators x units object matrix over `values`, a fifth of it missing (None)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(annotators, units))
    picks[:, : units // 2] = picks[0, : units // 2]  # half the units unanimous where given
    out = np.empty(picks.shape, dtype=object)
    for (i, j), k in np.ndenumerate(picks):
        out[i, j] = values[k]
    out[rng.random(picks.shape) < 0.2] = None
    return out


def encoded(matrix: np.ndarray, shuffle: int = 0) -> ag.EncodedLabels:
    """`matrix` as codes into its distinct values, in an order other than the labels'."""
    codes, values = pd.factorize(matrix.ravel())
    order = np.random.default_rng(shuffle).permutation(len(values))
    renumber = np.append(np.argsort(order), -1)  # new code of each old one; -1 stays -1
    spare = ["never used"] if shuffle % 2 else []  # a value no label takes changes nothing
    return ag.EncodedLabels(
        renumber[codes].reshape(matrix.shape), [values[i] for i in order] + spare
    )


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("with_labels", [True, False])
def test_codes_encode_as_their_objects(seed: int, with_labels: bool) -> None:
    matrix = objects(seed, LABELS)
    labels = LABELS if with_labels else None
    codes, domain = ag.encode_labels(encoded(matrix, seed), labels)
    expected_codes, expected_domain = ag.encode_labels(matrix, labels)
    assert domain == expected_domain
    assert np.array_equal(codes, expected_codes)
    assert np.array_equal(encoded(matrix, seed).to_objects(), matrix)


def test_codes_stand_for_their_objects_everywhere() -> None:
    """Functions that do not special-case codes read them as the object matrix."""
    matrix = objects(3, LABELS)
    coded = encoded(matrix, 1)
    assert ag.alpha(coded, "nominal", LABELS) == ag.alpha(matrix, "nominal", LABELS)
    first = alpha_interval(coded, "ordinal", LABELS, n_resamples=50, seed=2)
    second = alpha_interval(matrix, "ordinal", LABELS, n_resamples=50, seed=2)
    assert first == second


@pytest.mark.parametrize("seed", range(4))
def test_summary_from_codes_is_the_summary_from_objects(seed: int) -> None:
    sets = [frozenset(), frozenset({"harmful"}), frozenset({"over_refusal", "vague"})]
    fields = {"action": objects(seed, LABELS, 5), "tone": objects(seed + 9, ["a", "b"], 5)}
    failures = objects(seed + 20, sets, 5)
    kwargs: dict[str, Any] = {
        "credit": {"action": np.eye(4) * 0.5 + 0.5},
        "ordinal": ["tone"],
        "categories": CATEGORIES,
        "n_resamples": 30,
        "seed": seed,
        "annotators": [f"a{i}" for i in range(5)],
        "models": ["action"],
    }
    labels = {"action": LABELS, "tone": ["a", "b"]}
    plain = rep.summarize(fields, labels, failure_categories=failures, **kwargs)
    coded = rep.summarize(
        {name: encoded(m, seed) for name, m in fields.items()},
        labels,
        failure_categories=encoded(failures, seed + 1),
        **kwargs,
    )
    assert coded.model_dump_json() == plain.model_dump_json()


def test_codes_outside_their_values_are_refused() -> None:
    bad = ag.EncodedLabels(np.array([[0, 2], [1, -1]]), ["a", "b"])
    with pytest.raises(AgreementInputError, match="Code 2 is out of range for 2 values"):
        ag.encode_labels(bad, ["a", "b"])
    unknown = ag.EncodedLabels(np.array([[0, 1]]), ["a", "z"])
    with pytest.raises(AgreementInputError, match="Label `z` is not one of a, b"):
        ag.encode_labels(unknown, ["a", "b"])
