"""Labeling: claims and leases on items, and submitting, skipping and editing labels."""

from __future__ import annotations

from annotate.labeling.claims import (
    Claim,
    claim_next,
    current_claim,
)
from annotate.labeling.qualify import (
    Feedback,
    Qualification,
    qualification_feedback,
    qualification_state,
    reset_qualification,
)
from annotate.labeling.slots import (
    MAX_REASON,
    Progress,
    expire_leases,
    order_constants,
    order_key,
    progress,
    release,
    taken_slots,
    write_session,
)
from annotate.labeling.submission import (
    check_overrides,
    edit,
    missing_fields,
    missing_message,
    rationale_field,
    review_labels,
    skip,
    submit,
)

__all__ = [
    "Claim",
    "Feedback",
    "Qualification",
    "MAX_REASON",
    "Progress",
    "check_overrides",
    "claim_next",
    "current_claim",
    "edit",
    "expire_leases",
    "missing_fields",
    "missing_message",
    "order_constants",
    "order_key",
    "progress",
    "qualification_feedback",
    "qualification_state",
    "rationale_field",
    "release",
    "reset_qualification",
    "review_labels",
    "skip",
    "submit",
    "taken_slots",
    "write_session",
]
