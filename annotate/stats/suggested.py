"""Suggested gold from annotator models: per-item suggestions and per-annotator competence.

Pure functions over annotators x units label matrices (``annotate.stats.agreement``'s layout).
Dawid-Skene and MACE (``annotate.stats.crowd``) are fitted only where they can say something
the majority cannot: when items typically carry three or more labels. The summary is what the
agreement report shows; the per-item rows feed a review queue (where the model and the
majority differ) and the adjudication page (the model's label and posterior beside the
majority's).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel

from annotate.errors import AgreementInputError
from annotate.stats.crowd import DawidSkeneFit, MaceFit, coded_labels, dawid_skene, mace
from annotate.stats.distances import LabelMatrix

# Items need this many labels (median over labelled items) before a model is fitted.
MIN_LABELS = 3
# MACE random starts in the report: three keep a 100,000-item report within its time budget
# (the restarts differ little once items carry three or more labels).
MACE_RESTARTS = 3


class ModelSummary(BaseModel):
    """One fitted annotator model, in figures a lead can read."""

    model: Literal["dawid_skene", "mace"]
    competence: dict[str, float]  # annotator -> P(label is right) (DS) or P(knows) (MACE)
    n_units: int  # items with at least one label
    n_differs_from_majority: int  # items whose model label is not the strict majority
    n_no_majority: int  # items with no strict majority, where the model breaks the tie
    mean_confidence: float  # mean posterior of the model's label
    iterations: int
    converged: bool


class ItemSuggestion(BaseModel):
    """For one item: the model's label and its posterior beside the majority."""

    unit: int  # column index in the label matrix
    model_label: str
    posterior: float
    majority: str | None  # None: no strict majority


class AnnotatorModels(BaseModel):
    """Both models for one field, with the items where Dawid-Skene and the majority differ."""

    dawid_skene: ModelSummary
    mace: ModelSummary
    differing: list[ItemSuggestion]


def strict_majority(codes: np.ndarray, n_values: int) -> np.ndarray:
    """Per unit the code more than half of its labels chose, else -1 (as ``bands.majority``)."""
    counts = np.stack([(codes == v).sum(axis=0) for v in range(n_values)], axis=1)
    top = counts.argmax(axis=1)
    labelled = counts.sum(axis=1)
    has: np.ndarray = counts[np.arange(len(top)), top] * 2 > labelled
    return np.where(has & (labelled > 0), top, -1)


def _summary(
    name: Literal["dawid_skene", "mace"],
    fit: DawidSkeneFit | MaceFit,
    names: Sequence[str],
    labelled: np.ndarray,
    majority: np.ndarray,
) -> ModelSummary:
    predicted = fit.predicted[labelled]
    return ModelSummary(
        model=name,
        competence={n: float(c) for n, c in zip(names, fit.competence, strict=True)},
        n_units=int(labelled.sum()),
        n_differs_from_majority=int((predicted != majority[labelled]).sum()),
        n_no_majority=int((majority[labelled] < 0).sum()),
        mean_confidence=float(fit.posterior[labelled].max(axis=1).mean())
        if labelled.any()
        else 0.0,
        iterations=fit.iterations,
        converged=fit.converged,
    )


def annotator_models(
    data: LabelMatrix,
    labels: Sequence[Hashable],
    annotators: Sequence[Hashable],
    *,
    min_labels: int = MIN_LABELS,
    seed: int = 0,
) -> AnnotatorModels | None:
    """Fit Dawid-Skene and MACE on one field; None when items carry too few labels.

    ``labels`` is the field's value domain, ``annotators`` one name per row. Fitted when the
    median number of labels over labelled items is at least ``min_labels`` and two values are
    in the domain. ``differing`` lists the items where Dawid-Skene's label is not the strict
    majority (including items without one), most confident first.
    """
    coded = coded_labels(data, labels)  # once for the majority and both models
    codes, domain = coded.codes, coded.domain
    if len(annotators) != codes.shape[0]:
        raise AgreementInputError(
            f"Got {len(annotators)} annotator names for {codes.shape[0]} rows of labels"
        )
    per_unit = (codes >= 0).sum(axis=0)
    labelled = per_unit > 0
    if len(domain) < 2 or not labelled.any() or np.median(per_unit[labelled]) < min_labels:
        return None
    names = [str(a) for a in annotators]
    majority = strict_majority(codes, len(domain))
    ds = dawid_skene(coded)
    ma = mace(coded, seed=seed, restarts=MACE_RESTARTS)
    predicted = ds.predicted
    confidence = ds.posterior.max(axis=1)
    differing = [
        ItemSuggestion(
            unit=int(u),
            model_label=str(domain[predicted[u]]),
            posterior=float(confidence[u]),
            majority=None if majority[u] < 0 else str(domain[majority[u]]),
        )
        for u in np.flatnonzero(labelled & (predicted != majority))
    ]
    differing.sort(key=lambda s: (-s.posterior, s.unit))
    return AnnotatorModels(
        dawid_skene=_summary("dawid_skene", ds, names, labelled, majority),
        mace=_summary("mace", ma, names, labelled, majority),
        differing=differing,
    )
