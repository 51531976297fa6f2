"""The lead's workspace: agreement figures, breakdowns, the review queue and adjudication.

The names below are reachable here too (`review.agreement_report(...)`), each module loaded on
first use, so that `annotate agreement` imports the figures without the queue, adjudication
and labeling code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from annotate.review.adjudication import (
        BULK_UNANIMOUS,
        MANUAL,
        AdjudicationRecord,
        AnnotatorLabels,
        ItemDetail,
        adjudicate,
        adjudication_history,
        item_detail,
    )
    from annotate.review.breakdowns import (
        alpha_over_time,
        annotator_table,
        campaign_filters,
        confusion,
        item_disagreement,
        kappa_matrix,
        label_distribution,
        labels_version,
    )
    from annotate.review.figures import (
        INTERVAL_READINGS,
        NO_INTERVAL,
        NO_INTERVAL_VERDICTS,
        PERSONAL_FIELDS,
        RELIABLE,
        TENTATIVE,
        CampaignReport,
        JudgeAgreement,
        JudgeFieldAgreement,
        ReportFilters,
        agreement_report,
        campaign_report,
        interval_reading,
        item_fields,
        reading,
        summary_rows,
        verdict,
    )
    from annotate.review.queue import (
        BULK_CONFIDENCE,
        BulkAcceptResult,
        bulk_accept_unanimous,
        current_adjudications,
        find_item,
        queue_from_table,
        review_queue,
    )
    from annotate.review.suggestions import (
        competence,
        model_suggestions,
    )

_HOMES = {
    **dict.fromkeys(
        (
            "BULK_UNANIMOUS",
            "MANUAL",
            "AdjudicationRecord",
            "AnnotatorLabels",
            "ItemDetail",
            "adjudicate",
            "adjudication_history",
            "item_detail",
        ),
        "annotate.review.adjudication",
    ),
    **dict.fromkeys(
        (
            "alpha_over_time",
            "annotator_table",
            "campaign_filters",
            "confusion",
            "item_disagreement",
            "kappa_matrix",
            "label_distribution",
            "labels_version",
        ),
        "annotate.review.breakdowns",
    ),
    **dict.fromkeys(
        (
            "INTERVAL_READINGS",
            "NO_INTERVAL",
            "NO_INTERVAL_VERDICTS",
            "PERSONAL_FIELDS",
            "RELIABLE",
            "TENTATIVE",
            "CampaignReport",
            "JudgeAgreement",
            "JudgeFieldAgreement",
            "ReportFilters",
            "agreement_report",
            "campaign_report",
            "interval_reading",
            "item_fields",
            "reading",
            "summary_rows",
            "verdict",
        ),
        "annotate.review.figures",
    ),
    **dict.fromkeys(
        (
            "BULK_CONFIDENCE",
            "BulkAcceptResult",
            "bulk_accept_unanimous",
            "current_adjudications",
            "find_item",
            "queue_from_table",
            "review_queue",
        ),
        "annotate.review.queue",
    ),
    **dict.fromkeys(
        (
            "competence",
            "model_suggestions",
        ),
        "annotate.review.suggestions",
    ),
}

__all__ = [
    "AdjudicationRecord",
    "AnnotatorLabels",
    "BULK_CONFIDENCE",
    "BULK_UNANIMOUS",
    "BulkAcceptResult",
    "CampaignReport",
    "INTERVAL_READINGS",
    "ItemDetail",
    "JudgeAgreement",
    "JudgeFieldAgreement",
    "MANUAL",
    "NO_INTERVAL",
    "NO_INTERVAL_VERDICTS",
    "PERSONAL_FIELDS",
    "RELIABLE",
    "ReportFilters",
    "TENTATIVE",
    "adjudicate",
    "adjudication_history",
    "agreement_report",
    "alpha_over_time",
    "annotator_table",
    "bulk_accept_unanimous",
    "campaign_filters",
    "campaign_report",
    "competence",
    "confusion",
    "current_adjudications",
    "find_item",
    "interval_reading",
    "item_detail",
    "item_disagreement",
    "item_fields",
    "kappa_matrix",
    "label_distribution",
    "labels_version",
    "model_suggestions",
    "queue_from_table",
    "reading",
    "review_queue",
    "summary_rows",
    "verdict",
]


def __getattr__(name: str) -> Any:
    """Load the review module that defines `name` and return it from there."""
    module = _HOMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
