"""Agreement reports built on the alpha core: per annotator, pairwise kappa, the summary.

Pure functions and pydantic models over annotators x units label matrices, as in
``annotate.stats.agreement``, ``distances`` and ``bootstrap``. No
database, no I/O, nothing runs at import.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, SerializerFunctionWrapHandler, model_serializer

from annotate.errors import AgreementInputError

# The private helpers are shared within the package on purpose: the report must encode,
# resample and bootstrap exactly as alpha does, not a near copy of it.
from annotate.stats.agreement import (
    _as_object_matrix,
    _encode_sets,
    _membership_codes,
    _numpy_alpha,
    _point_alpha,
    _pooled_counts,
    _resolve_domain,
    encode_labels,
    value_counts_from_codes,
)
from annotate.stats.bootstrap import (
    AlphaEstimate,
    OptionalAlpha,
    _bootstrap_cis,
    _Resamplable,
    _resamplable,
)
from annotate.stats.distances import (
    EncodedLabels,
    IntArray,
    LabelMatrix,
    Metric,
    MetricLike,
    _check_distance_matrix,
    as_metric,
    band_distance,
    masi_distance_matrix,
)
from annotate.stats.gwet import GwetEstimate, gwet_from_counts
from annotate.stats.intervals import AlphaInterval, alpha_interval
from annotate.stats.suggested import AnnotatorModels, annotator_models


def _annotator_names(
    data: LabelMatrix, annotators: Sequence[Hashable] | None, count: int
) -> list[Hashable]:
    if annotators is not None:
        names = list(annotators)
    elif isinstance(data, pd.DataFrame):
        names = list(data.index)
    else:
        names = list(range(count))
    if len(names) != count:
        raise AgreementInputError(f"Got {len(names)} annotator names for {count} rows of labels")
    return names


def pairwise_kappa(
    data: LabelMatrix,
    labels: Sequence[Hashable] | None = None,
    annotators: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """Cohen's kappa between every two annotators over the units both labeled.

    Square DataFrame indexed both ways by annotator (``annotators``, the DataFrame's index, or
    row numbers). NaN where a pair shares no unit or chance agreement is 1 (one label only).
    """
    codes, domain = encode_labels(data, labels)
    n_values = len(domain)
    count = codes.shape[0]
    kappas = np.full((count, count), np.nan)
    for i in range(count):
        for j in range(i, count):
            both = (codes[i] >= 0) & (codes[j] >= 0)
            shared = int(both.sum())
            if shared == 0:
                continue
            first, second = codes[i, both], codes[j, both]
            observed = float((first == second).mean())
            chance = float(
                np.bincount(first, minlength=n_values) @ np.bincount(second, minlength=n_values)
            ) / (shared * shared)
            if chance < 1:
                kappas[i, j] = kappas[j, i] = (observed - chance) / (1 - chance)
    names = _annotator_names(data, annotators, count)
    return pd.DataFrame(kappas, index=names, columns=names)


def annotator_report(
    data: LabelMatrix,
    labels: Sequence[Hashable] | None = None,
    *,
    level: MetricLike = "nominal",
    annotators: Sequence[Hashable] | None = None,
    gold: Sequence[Hashable | None] | npt.ArrayLike | None = None,
    durations: npt.ArrayLike | None = None,
) -> pd.DataFrame:
    """One row per annotator for one field: volume, label mix, agreement, pace.

    Columns: ``n_labeled``; ``tvd``, the total variation distance (0 same mix, 1 disjoint)
    between the annotator's label distribution and the whole batch's; ``alpha_without``,
    alpha of the batch with this annotator's row removed, and ``alpha_delta`` = alpha of all
    minus that (leave-one-out: positive when the annotator raises agreement, negative when
    they lower it; NaN where either alpha is undefined). With ``gold`` (one label or None per
    unit): ``n_gold``, units labeled by both, and ``gold_agreement``, the mean credit against
    gold (exact-match rate, or 1 - distance when ``level`` is a distance matrix). With
    ``durations`` (annotators x units seconds, NaN missing): ``seconds_per_item``, the median.
    """
    level = as_metric(level)
    codes, domain, values = _resolve_domain(data, level, labels, None)
    count, n_units = codes.shape
    n_values = len(domain)
    names = _annotator_names(data, annotators, count)
    present = codes >= 0
    overall = np.bincount(codes[present], minlength=n_values).astype(np.float64)
    overall_share = overall / max(overall.sum(), 1.0)
    everyone = _numpy_alpha(codes, n_values, level, values)
    report: dict[str, list[float]] = {"n_labeled": [], "tvd": [], "alpha_without": []}
    for row in range(count):
        own = np.bincount(codes[row][present[row]], minlength=n_values).astype(np.float64)
        report["n_labeled"].append(float(own.sum()))
        share = own / own.sum() if own.sum() else np.zeros(n_values)
        report["tvd"].append(
            0.5 * float(np.abs(share - overall_share).sum()) if own.sum() else math.nan
        )
        others = np.delete(codes, row, axis=0)
        report["alpha_without"].append(_numpy_alpha(others, n_values, level, values))
    frame = pd.DataFrame(report, index=pd.Index(names, name="annotator"))
    frame["n_labeled"] = frame["n_labeled"].astype(int)
    frame["alpha_delta"] = everyone - frame["alpha_without"]
    if gold is not None:
        gold_codes, _ = encode_labels([list(np.asarray(gold, dtype=object))], domain)
        if gold_codes.shape[1] != n_units:
            raise AgreementInputError(
                f"Gold has {gold_codes.shape[1]} units, labels have {n_units}"
            )
        credit = (
            1.0 - _check_distance_matrix(level, n_values)
            if isinstance(level, np.ndarray)
            else np.eye(n_values)
        )
        both = present & (gold_codes >= 0)
        frame["n_gold"] = both.sum(axis=1)
        frame["gold_agreement"] = [
            float(credit[codes[r, both[r]], gold_codes[0, both[r]]].mean())
            if both[r].any()
            else math.nan
            for r in range(count)
        ]
    if durations is not None:
        seconds = np.asarray(durations, dtype=np.float64)
        if seconds.shape != codes.shape:
            raise AgreementInputError(
                f"Durations shape {seconds.shape} differs from labels {codes.shape}"
            )
        frame["seconds_per_item"] = [
            float(np.median(r[np.isfinite(r)])) if np.isfinite(r).any() else math.nan
            for r in seconds
        ]
    return frame


# --- the campaign summary --------------------------------------------------------------------


# Keys of FieldAgreement that appear only where they apply (see summarize).
_OPTIONAL_KEYS = (
    "banded_alpha",
    "banded_ci",
    "ordinal_alpha",
    "ordinal_ci",
    "ac2",
    "interval",
    "banded_interval",
    "ordinal_interval",
    "annotator_models",
)


class FieldAgreement(AlphaEstimate):
    """Agreement on one single-choice field; banded/ordinal keys only where they apply.

    ``ci`` is the percentile interval; ``interval`` (and ``banded_interval``,
    ``ordinal_interval``) the BCa interval with its resample counts, P(alpha < 0.667 / 0.8)
    and reading. ``ac1`` is Gwet's AC1, ``ac2`` AC2 under the band credits (right action).
    """

    banded_alpha: OptionalAlpha = None
    banded_ci: tuple[float, float] | None = None
    ordinal_alpha: OptionalAlpha = None
    ordinal_ci: tuple[float, float] | None = None
    ac1: GwetEstimate | None = None
    ac2: GwetEstimate | None = None
    interval: AlphaInterval | None = None
    banded_interval: AlphaInterval | None = None
    ordinal_interval: AlphaInterval | None = None
    annotator_models: AnnotatorModels | None = None

    @model_serializer(mode="wrap")
    def _drop_unset_extras(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in _OPTIONAL_KEYS:
            if key not in self.model_fields_set:
                data.pop(key, None)
        return data


class CategoryAgreement(BaseModel):
    """Binary alpha for one failure category (``interval``: BCa, as on fields)."""

    alpha: OptionalAlpha
    ci: tuple[float, float] | None = None
    interval: AlphaInterval | None = None


class FailureCategoryAgreement(BaseModel):
    """Per-category binary alphas and the MASI alpha over whole sets."""

    per_category: dict[str, CategoryAgreement]
    masi_alpha: OptionalAlpha
    masi_ci: tuple[float, float] | None = None
    masi_interval: AlphaInterval | None = None
    n_units: int


class AgreementSummary(BaseModel):
    """Agreement for a batch of items: per field, and for failure categories."""

    fields: dict[str, FieldAgreement]
    failure_categories: FailureCategoryAgreement | None = None


def _unit_count(data: LabelMatrix) -> int:
    if isinstance(data, EncodedLabels) and data.codes.ndim == 2:
        return int(data.codes.shape[1])  # not placed in an object matrix to be counted
    return int(_as_object_matrix(data).shape[1])


def summarize(
    fields: Mapping[str, LabelMatrix],
    labels: Mapping[str, Sequence[str]],
    *,
    credit: Mapping[str, npt.ArrayLike] | None = None,
    ordinal: Sequence[str] = (),
    failure_categories: LabelMatrix | None = None,
    categories: Sequence[str] = (),
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    annotators: Sequence[str] | None = None,
    models: Sequence[str] = (),
) -> AgreementSummary:
    """Agreement summary for one batch: alpha, CI and pairable units per field, and more.

    ``fields`` maps each single-choice field to an annotators x units object array of str or
    None, all over the same units in the same order; ``labels`` gives each field's labels (in
    order for ordinal fields). ``credit`` maps a field to its credit matrix over its labels and
    adds ``banded_alpha`` under ``band_distance`` (which can be below ``alpha``, credits
    notwithstanding: see ``band_distance``); each field in ``ordinal`` gets
    ``ordinal_alpha``. ``failure_categories`` is annotators x units of frozenset or None over
    ``categories``. Every interval comes from one shared, seeded set of unit resamples
    (see ``bootstrap_alpha``); ``n_resamples=0`` skips the bootstrap. ``n_units`` counts units
    with two or more labels. Alphas that are undefined are None.

    Beside alpha: every field gets ``ac1`` (Gwet's AC1 over its labels) and, with ``credit``,
    ``ac2`` under those credits; with ``n_resamples`` > 0 each alpha also gets a BCa
    ``interval`` (``banded_interval``, ``ordinal_interval``; see
    ``annotate.stats.intervals``). Each field in ``models`` gets ``annotator_models``
    (Dawid-Skene and MACE, ``annotators`` naming the rows) when its items carry three or more
    labels. Typical call::

        summarize(
            {"right_action": ra, "intent": it, ...}, schema_labels,
            credit={"right_action": credit_matrix}, ordinal=["intent"],
            failure_categories=fc, categories=schema_categories,
        )
    """
    credit = credit or {}
    unknown = (set(credit) | set(ordinal)) - set(fields)
    if unknown:
        raise AgreementInputError(
            f"credit/ordinal name fields that were not given: {sorted(unknown)}"
        )
    widths = {name: _unit_count(data) for name, data in fields.items()}
    if failure_categories is not None:
        if not categories:
            raise AgreementInputError("failure_categories was given without the list of categories")
        widths["failure_categories"] = _unit_count(failure_categories)
    if len(set(widths.values())) > 1:
        raise AgreementInputError(f"All fields must cover the same units, got unit counts {widths}")
    n_units = next(iter(widths.values()), 0)
    resamplable: list[_Resamplable] = []
    targets: list[tuple[str, str, str]] = []  # (field, where the interval goes, which key)

    def estimate(
        codes: IntArray,
        n_values: int,
        metric: Metric,
        target: tuple[str, str, str],
        pooled: IntArray | None = None,
    ) -> float:
        positions = np.arange(n_values, dtype=np.float64)
        if n_resamples > 0:
            resamplable.append(_resamplable(codes, n_values, metric, positions))
            targets.append(target)
        return _point_alpha(codes, n_values, metric, positions, pooled)

    field_values: dict[str, dict[str, Any]] = {}
    for name, data in fields.items():
        if name not in labels:
            raise AgreementInputError(f"No labels given for field {name!r}")
        codes, domain = encode_labels(data, labels[name])
        counts = value_counts_from_codes(codes, len(domain))
        # Pooled once for the field's two or three alphas (see pool_unanimous).
        pooled = _pooled_counts(codes, len(domain))
        entry: dict[str, Any] = {
            "alpha": estimate(codes, len(domain), "nominal", (name, "field", "ci"), pooled),
            "n_units": int(((codes >= 0).sum(axis=0) >= 2).sum()),
            "ac1": gwet_from_counts(counts, confidence=confidence),
        }
        metrics: dict[str, Metric] = {"interval": "nominal"}
        if name in credit:
            dist = band_distance(credit[name])
            entry["banded_alpha"] = estimate(
                codes, len(domain), dist, (name, "field", "banded_ci"), pooled
            )
            entry["ac2"] = gwet_from_counts(counts, 1.0 - dist, confidence=confidence)
            metrics["banded_interval"] = dist
        if name in ordinal:
            entry["ordinal_alpha"] = estimate(
                codes, len(domain), "ordinal", (name, "field", "ordinal_ci"), pooled
            )
            metrics["ordinal_interval"] = "ordinal"
        if n_resamples > 0:
            for key, metric in metrics.items():
                entry[key] = alpha_interval(
                    data,
                    metric,
                    labels[name],
                    n_resamples=n_resamples,
                    confidence=confidence,
                    seed=seed,
                )
        if name in models:
            names = annotators or [str(i) for i in range(codes.shape[0])]
            fitted = annotator_models(data, labels[name], names, seed=seed)
            if fitted is not None:
                entry["annotator_models"] = fitted
        field_values[name] = entry

    failure: dict[str, Any] | None = None
    if failure_categories is not None:
        set_codes, distinct = _encode_sets(failure_categories, categories)
        per_category: dict[str, dict[str, Any]] = {}
        for item in categories:
            binary = _membership_codes(set_codes, distinct, item)
            per_category[item] = {"alpha": estimate(binary, 2, "nominal", (item, "category", "ci"))}
            if n_resamples > 0:
                ticked = binary.astype(object)
                ticked[binary < 0] = None
                per_category[item]["interval"] = alpha_interval(
                    ticked,
                    "nominal",
                    [0, 1],
                    n_resamples=n_resamples,
                    confidence=confidence,
                    seed=seed,
                )
        masi = math.nan
        masi_interval = None
        if len(distinct) >= 2:
            distances = masi_distance_matrix(distinct)
            masi = estimate(set_codes, len(distinct), distances, ("", "masi", "masi_ci"))
            if n_resamples > 0:
                masi_interval = alpha_interval(
                    failure_categories,
                    distances,
                    distinct,
                    n_resamples=n_resamples,
                    confidence=confidence,
                    seed=seed,
                )
        failure = {
            "per_category": per_category,
            "masi_alpha": masi,
            "masi_interval": masi_interval,
            "n_units": int(((set_codes >= 0).sum(axis=0) >= 2).sum()),
        }

    for (name, where, key), ci in zip(
        targets, _bootstrap_cis(resamplable, n_units, n_resamples, confidence, seed), strict=True
    ):
        if where == "field":
            field_values[name][key] = ci
        elif where == "category":
            assert failure is not None
            failure["per_category"][name][key] = ci
        else:
            assert failure is not None
            failure[key] = ci
    return AgreementSummary(
        fields={name: FieldAgreement(**entry) for name, entry in field_values.items()},
        failure_categories=None
        if failure is None
        else FailureCategoryAgreement(
            per_category={k: CategoryAgreement(**v) for k, v in failure["per_category"].items()},
            masi_alpha=failure["masi_alpha"],
            masi_ci=failure.get("masi_ci"),
            masi_interval=failure["masi_interval"],
            n_units=failure["n_units"],
        ),
    )
