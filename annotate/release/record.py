"""The exported gold record: one pydantic model, and the JSON Schema committed from it.

`schemas/gold-record.schema.json` is generated from `GoldRecord`; a test fails when they drift.
Regenerate with `python -m annotate.release.record > schemas/gold-record.schema.json`.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_ID = "https://annotate.invalid/schemas/gold-record.schema.json"


class Turn(BaseModel):
    """One turn of a conversation."""

    model_config = ConfigDict(extra="forbid")

    role: str = Field(description="user, assistant or system")
    content: str


class GoldRecord(BaseModel):
    """One gold item of a release: the labeled right action with its tolerance band."""

    model_config = ConfigDict(
        extra="forbid",
        title="GoldRecord",
        json_schema_extra={"$id": SCHEMA_ID},
    )

    id: str = Field(description="The item's external id, as imported.")
    prompt: str | None = Field(description="The user's request (None for conversations).")
    conversation: list[Turn] | None = Field(
        description="Multi-turn input as {role, content} turns, ending with the user's turn."
    )
    response: str = Field(description="The model response that was labeled.")
    model: str | None = Field(description="Model that produced the response.")
    source: str | None = Field(description="Where the item came from.")
    category: str | None = Field(description="Item category, as imported.")
    group: str | None = Field(description="Id tying together variants of one request.")
    right_action: str = Field(description="What the model should have done.")
    band: dict[str, float] = Field(
        description="{action: credit} for every action earning credit > 0; right_action at 1."
    )
    intent: str | None = Field(
        description="benign, ambiguous or harmful; null when nobody labeled it (or a tie)."
    )
    epistemic_status: str | None = Field(
        description="answerable, uncertain, false_premise or ill_posed; null when nobody "
        "labeled it (or a tie)."
    )
    observed_action: str | None = Field(
        description="What the labeled response actually did; null when nobody labeled it "
        "(or a tie)."
    )
    failure_categories: list[str] | None = Field(
        description="Failures of the labeled response: [] means annotators looked and ticked "
        "nothing (the response is fine); null means nobody labeled them, which says nothing "
        "about the response."
    )
    soft_labels: dict[str, dict[str, float]] = Field(
        description="Per field, the share of human annotators choosing each value "
        "(for failure categories: the share ticking each category)."
    )
    n_annotators: int = Field(ge=0, description="Human annotators who labeled the item.")
    disagreement: float = Field(
        ge=0,
        le=1,
        description="Expected pairwise band distance between annotators (0 = unanimous).",
    )
    adjudicated: bool = Field(description="Whether a lead adjudicated the item.")
    adjudicated_by: str | None = Field(description="The lead who adjudicated, if any.")
    adjudication_note: str | None = Field(description="The lead's note, if any.")
    guideline_gap: bool = Field(description="The lead flagged the item as a guideline gap.")
    metadata: dict[str, Any] = Field(description="Extra columns the importer kept.")


def gold_record_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a gold record."""
    schema = GoldRecord.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def dump_json_schema() -> str:
    """The committed text of schemas/gold-record.schema.json."""
    return json.dumps(gold_record_json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(dump_json_schema())
