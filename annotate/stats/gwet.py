"""Gwet's AC1 (nominal) and AC2 (weighted) agreement coefficients with their standard errors.

Pure numpy over annotators x units label matrices, the layout of ``annotate.stats.agreement`` (rows
are annotators, columns are units, None or NaN is a missing label). Any number of annotators;
units with a single label count towards the chance term but not the observed agreement, as in
Gwet (2014), Handbook of Inter-Rater Reliability, 4th ed., chapters 2-3.

Why beside alpha: on skewed labels (most safety items are benign and answered) alpha and the
kappas fall although annotators agree (the prevalence paradox); AC1's chance term
``sum_k pi_k (1 - pi_k) / (q - 1)`` shrinks as one category dominates, so it does not.

The standard error is Gwet's variance conditional on the annotators (Gwet 2008, BJMSP 61,
29-48, equation for the multiple-rater AC1; Handbook, chapter 5): the linearised per-unit
contributions around the estimate, with the finite-population factor ``1 - n/N``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from annotate.errors import AgreementInputError
from annotate.stats.agreement import encode_labels, value_counts_from_codes
from annotate.stats.bootstrap import OptionalAlpha
from annotate.stats.distances import FloatArray, LabelMatrix


class GwetEstimate(BaseModel):
    """AC1 or AC2 with its standard error; None where undefined."""

    coefficient: OptionalAlpha
    se: OptionalAlpha = None
    ci: tuple[float, float] | None = None
    percent_agreement: OptionalAlpha = None
    chance_agreement: OptionalAlpha = None
    n_units: int = 0  # units with at least one label
    n_pairable: int = 0  # units with two or more labels
    weighted: bool = False


def _check_weights(weights: npt.ArrayLike, n_values: int) -> FloatArray:
    matrix = np.asarray(weights, dtype=np.float64)
    if matrix.shape != (n_values, n_values):
        raise AgreementInputError(
            f"Weight matrix must be {n_values}x{n_values} to match the labels, got {matrix.shape}"
        )
    if not np.all(np.isfinite(matrix)) or matrix.min() < 0 or matrix.max() > 1:
        raise AgreementInputError("Weight matrix values must lie in [0, 1]")
    if not np.allclose(np.diag(matrix), 1.0):
        raise AgreementInputError(
            f"Weight matrix diagonal must be 1, got {np.diag(matrix).tolist()}"
        )
    return matrix


def gwet_from_counts(
    counts: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
    *,
    confidence: float = 0.95,
    population_units: float = math.inf,
) -> GwetEstimate:
    """AC1 (``weights`` None) or AC2 from a units x values count matrix.

    ``counts[i, k]`` is how many annotators gave value k to unit i; every column is a category
    of the scale, used or not (q = number of columns enters the chance term). ``weights`` is a
    q x q credit matrix in [0, 1] with 1 on the diagonal (for bands: ``1 - band distance``).
    ``population_units`` is N in the finite-population factor ``1 - n/N`` (default infinite).
    The interval is the estimate +- z * SE (normal quantile), clipped to [-1, 1]. Raises
    AgreementInputError for a bad shape, weights or confidence.
    """
    if not 0 < confidence < 1:
        raise AgreementInputError(f"confidence must be in (0, 1), got {confidence}")
    table = np.asarray(counts, dtype=np.float64)
    if table.ndim != 2:
        raise AgreementInputError(f"Counts must be 2-D (units x values), got shape {table.shape}")
    n_values = table.shape[1]
    weighted = weights is not None
    weight = _check_weights(weights, n_values) if weights is not None else np.eye(n_values)
    rated = table.sum(axis=1)
    table = table[rated > 0]
    rated = rated[rated > 0]
    n = table.shape[0]
    pairable = rated >= 2
    n_pairable = int(pairable.sum())
    empty = GwetEstimate(coefficient=None, n_units=n, n_pairable=n_pairable, weighted=weighted)
    if n_values < 2 or n_pairable == 0:
        return empty
    # Per unit: agreeing ordered pairs, each label credited against the unit's other labels.
    credited = table @ weight.T
    pair_sums = (table * (credited - 1.0)).sum(axis=1)
    pairs = rated * (rated - 1.0)
    unit_pa = np.divide(pair_sums, pairs, out=np.zeros(n), where=pairable)
    pa = float(unit_pa[pairable].sum() / n_pairable)
    pi = (table / rated[:, None]).mean(axis=0)
    scale = float(weight.sum()) / (n_values * (n_values - 1))
    pe = scale * float((pi * (1.0 - pi)).sum())
    if not pe < 1.0:
        return empty.model_copy(update={"percent_agreement": pa, "chance_agreement": pe})
    ac = (pa - pe) / (1.0 - pe)
    se: float | None = None
    ci: tuple[float, float] | None = None
    if n >= 2:
        # Linearised contribution of each unit: its agreement term (scaled to all n units)
        # corrected for its pull on the chance term.
        unit_ac = (n / n_pairable) * (unit_pa - pe * pairable) / (1.0 - pe)
        unit_pe = scale * (table @ (1.0 - pi)) / rated
        linear = unit_ac - 2.0 * (1.0 - ac) * (unit_pe - pe) / (1.0 - pe)
        fpc = 1.0 - n / population_units if math.isfinite(population_units) else 1.0
        variance = fpc / (n * (n - 1.0)) * float(((linear - ac) ** 2).sum())
        se = math.sqrt(max(variance, 0.0))
        z = NormalDist().inv_cdf(0.5 + confidence / 2)
        ci = (max(-1.0, ac - z * se), min(1.0, ac + z * se))
    return GwetEstimate(
        coefficient=ac,
        se=se,
        ci=ci,
        percent_agreement=pa,
        chance_agreement=pe,
        n_units=n,
        n_pairable=n_pairable,
        weighted=weighted,
    )


def gwet_ac1(
    data: LabelMatrix,
    labels: Sequence[Hashable] | None = None,
    *,
    confidence: float = 0.95,
    population_units: float = math.inf,
) -> GwetEstimate:
    """Gwet's AC1 for a nominal field, from an annotators x units label matrix.

    ``labels`` is the field's full value domain: pass it, since q (the number of categories on
    the scale, used or not) enters the chance term. Without it, the values present are used.
    """
    codes, domain = encode_labels(data, labels)
    counts = value_counts_from_codes(codes, len(domain))
    return gwet_from_counts(counts, confidence=confidence, population_units=population_units)


def gwet_ac2(
    data: LabelMatrix,
    weights: npt.ArrayLike,
    labels: Sequence[Hashable] | None = None,
    *,
    confidence: float = 0.95,
    population_units: float = math.inf,
) -> GwetEstimate:
    """Gwet's AC2: AC1 with partial credit ``weights`` (q x q over ``labels``, 1 on the diagonal).

    For the right action pass the schema's credit matrix (``1 - band_distance``) and its action
    labels in the same order.
    """
    codes, domain = encode_labels(data, labels)
    counts = value_counts_from_codes(codes, len(domain))
    return gwet_from_counts(
        counts, weights, confidence=confidence, population_units=population_units
    )
