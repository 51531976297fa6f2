"""Statistics (pure): distances, Krippendorff's alpha, bootstrap intervals, bands, reports.

Nothing here opens a database or imports Streamlit.
"""

from __future__ import annotations

from annotate.stats.agreement import (
    alpha,
    alpha_from_counts,
    category_alphas,
    coincidence_matrix,
    disagreement_scores,
    encode_labels,
    masi_alpha,
    pool_unanimous,
    value_counts_from_codes,
)
from annotate.stats.bootstrap import (
    AlphaEstimate,
    OptionalAlpha,
    bootstrap_alpha,
)
from annotate.stats.distances import (
    EncodedLabels,
    FloatArray,
    IntArray,
    LabelMatrix,
    Level,
    Metric,
    band_distance,
    masi_distance,
    masi_distance_matrix,
)

__all__ = [
    "AlphaEstimate",
    "EncodedLabels",
    "FloatArray",
    "IntArray",
    "LabelMatrix",
    "Level",
    "Metric",
    "OptionalAlpha",
    "alpha",
    "alpha_from_counts",
    "band_distance",
    "bootstrap_alpha",
    "category_alphas",
    "coincidence_matrix",
    "disagreement_scores",
    "encode_labels",
    "masi_alpha",
    "masi_distance",
    "masi_distance_matrix",
    "pool_unanimous",
    "value_counts_from_codes",
]
