"""The annotator models' suggestions per item and competence per annotator, for the lead's pages.

`annotate.stats.suggested` fits Dawid-Skene and MACE on a label matrix; here the matrix comes
from a campaign's LabelTable, and the answers are keyed by item id and annotator name, so the
review queue, the adjudication page and the annotator table can show them. Models are fitted
only when items carry three or more human labels (`MIN_LABELS`); otherwise the frames are empty
and the pages say nothing about them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from annotate.accounts.auth import require_role
from annotate.errors import ValidationProblem
from annotate.review.blas import one_blas_thread
from annotate.schema import LabelField
from annotate.stats.crowd import coded_labels, dawid_skene
from annotate.stats.suggested import (
    MIN_LABELS,
    AnnotatorModels,
    annotator_models,
    strict_majority,
)
from annotate.storage.models import User
from annotate.table import LabelTable

SUGGESTION_COLUMNS = ["model_label", "posterior", "majority", "differs"]


def _spec(table: LabelTable, field: str) -> LabelField:
    spec = next((f for f in table.schema.choice_fields if f.name == field), None)
    if spec is None or spec.kind != "single":
        raise ValidationProblem(f"`{field}` is not a single-choice field of {table.schema.id}")
    return spec


def _fit(table: LabelTable, field: str) -> tuple[list[str], list[int], AnnotatorModels | None]:
    spec = _spec(table, field)
    annotators, units, matrix = table.matrix(field)
    if not annotators or not units:
        return annotators, units, None
    return annotators, units, annotator_models(matrix, spec.values, annotators)


@one_blas_thread
def model_suggestions(table: LabelTable, *, actor: User, field: str | None = None) -> pd.DataFrame:
    """Per item (index `item_id`): Dawid-Skene's label of `field`, its posterior, the strict
    majority (None where there is none) and whether the two differ; leads only.

    `field` defaults to the right action. Empty when the items carry fewer than three human
    labels (no model is fitted: with two labels the model cannot say more than the majority).
    """
    require_role(actor, "lead", "see the annotator models")
    name = field or table.schema.right_action_field
    spec = _spec(table, name)
    _annotators, units, matrix = table.matrix(name)
    frame = pd.DataFrame(columns=SUGGESTION_COLUMNS, index=pd.Index([], name="item_id"))
    coded = coded_labels(matrix, spec.values)  # once for the majority and the model
    codes, domain = coded.codes, coded.domain
    per_unit = (codes >= 0).sum(axis=0)
    labelled = per_unit > 0
    if not units or len(domain) < 2 or np.median(per_unit[labelled]) < MIN_LABELS:
        return frame
    fit = dawid_skene(coded)
    majority = strict_majority(codes, len(domain))
    frame = pd.DataFrame(
        {
            "model_label": [str(domain[i]) for i in fit.predicted],
            "posterior": fit.posterior.max(axis=1).astype(float),
            "majority": [str(domain[m]) if m >= 0 else None for m in majority],
            "differs": fit.predicted != majority,
        },
        index=pd.Index(units, name="item_id"),
    )
    return frame[labelled]


@one_blas_thread
def competence(table: LabelTable, *, actor: User, field: str | None = None) -> pd.DataFrame:
    """Per annotator (index `annotator`): Dawid-Skene's P(label is right) and MACE's
    P(knows the answer) on `field` (default the right action); leads only. Empty when no
    model is fitted (fewer than three labels per item)."""
    require_role(actor, "lead", "see the annotator models")
    name = field or table.schema.right_action_field
    _annotators, _units, fitted = _fit(table, name)
    if fitted is None:
        return pd.DataFrame(
            columns=["ds_competence", "mace_competence"], index=pd.Index([], name="annotator")
        )
    ds = fitted.dawid_skene.competence
    mace = fitted.mace.competence
    return pd.DataFrame(
        {"ds_competence": pd.Series(ds), "mace_competence": pd.Series(mace)}
    ).rename_axis("annotator")
