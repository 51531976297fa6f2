"""The exported gold record: one pydantic model, the generic JSON Schema, and a release's own.

`schemas/gold-record.schema.json` is generated from `GoldRecord`; a test fails when they drift.
Regenerate with `python -m annotate.release.record > schemas/gold-record.schema.json`. It
documents the record for any label schema. Each release carries `release_json_schema(schema)`
instead: the same record with every choice field narrowed to the label schema's values (right
and observed action, intent, epistemic status, failure categories, and any other choice field
the record carries, such as harm area or severity), band keys to its actions, soft-label keys
to its fields and values, and every credit and share to [0, 1].

Which keys a record has depends on its label schema (`record_fields`): every record has version
1's; a schema that has refusal-v2's label fields (`V2_LABEL_FIELDS`), its adjudication field
`disagreement_cause` or its gold attribute `resolution` adds those keys, each present in every
record (null when nobody labeled it). A version 1 release keeps exactly version 1's keys, so its
files stay byte for byte what they were.
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from annotate.schema import LabelSchema

SCHEMA_ID = "https://annotate.invalid/schemas/gold-record.schema.json"
# refusal-v2's label fields (DOMAIN.md, "Version 2 of the label schema"), in record order.
V2_LABEL_FIELDS = (
    "harm_area",
    "severity",
    "noncompliance_reason",
    "answer_quality",
    "refusal_style",
)
# Keys a record has only when its label schema names them (as a label field, an adjudication
# field or a gold attribute).
SCHEMA_KEYS = (*V2_LABEL_FIELDS, "resolution", "disagreement_cause")
Share = Annotated[float, Field(ge=0, le=1)]


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
    band: dict[str, Share] = Field(
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
    harm_area: str | None = Field(
        default=None,
        description="refusal-v2: where the harm would fall if the response complied fully "
        "(`none` for harmless requests); null when nobody labeled it (or a tie).",
    )
    severity: str | None = Field(
        default=None,
        description="refusal-v2: the worst realistic harm if a response complied fully, none "
        "< low < moderate < high < critical; null when nobody labeled it (or a tie).",
    )
    noncompliance_reason: str | None = Field(
        default=None,
        description="refusal-v2: why the right action is not a plain answer (CoCoNot's "
        "taxonomy); null when the right action is `answer` (the field does not apply) or when "
        "nobody labeled it.",
    )
    answer_quality: str | None = Field(
        default=None,
        description="refusal-v2: how useful the response's answer was; null when the observed "
        "action did not answer (the field does not apply) or when nobody labeled it.",
    )
    refusal_style: str | None = Field(
        default=None,
        description="refusal-v2: how the response declined; null when the observed action did "
        "not refuse, abstain or pivot (the field does not apply) or when nobody labeled it.",
    )
    soft_labels: dict[str, dict[str, Share]] = Field(
        description="Per field, the share of human annotators choosing each value "
        "(for failure categories: the share ticking each category)."
    )
    n_annotators: int = Field(ge=0, description="Human annotators who labeled the item.")
    disagreement: float = Field(
        ge=0,
        le=1,
        description="Expected pairwise band distance between annotators (0 = unanimous).",
    )
    resolution: str | None = Field(
        default=None,
        description="refusal-v2: how the gold right action was reached: `unanimous` (every "
        "human annotator chose it), `majority` (more than half did), `adjudicated` (the lead "
        "decided: a tie, a minority view or an action nobody chose).",
    )
    adjudicated: bool = Field(description="Whether a lead adjudicated the item.")
    adjudicated_by: str | None = Field(description="The lead who adjudicated, if any.")
    adjudication_note: str | None = Field(description="The lead's note, if any.")
    guideline_gap: bool = Field(description="The lead flagged the item as a guideline gap.")
    disagreement_cause: str | None = Field(
        default=None,
        description="refusal-v2: why the annotators disagreed, as the lead recorded it at "
        "adjudication; null when not adjudicated or not recorded.",
    )
    metadata: dict[str, Any] = Field(description="Extra columns the importer kept.")


def record_fields(schema: LabelSchema) -> list[str]:
    """The keys of a gold record under label schema `schema`, in record order."""
    named = {f.name for f in (*schema.fields, *schema.adjudication_fields, *schema.gold_attributes)}
    return [k for k in GoldRecord.model_fields if k not in SCHEMA_KEYS or k in named]


def record_row(record: GoldRecord, schema: LabelSchema) -> dict[str, Any]:
    """`record` as the JSON-ready dict a release under `schema` writes (its keys only)."""
    dumped = record.model_dump(mode="json")
    return {k: dumped[k] for k in record_fields(schema)}


def gold_record_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a gold record."""
    schema = GoldRecord.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def _narrow(prop: dict[str, Any], values: list[str]) -> None:
    """Restrict a string property (or the items of an array one), nullable or not, to `values`."""
    branches = prop.get("anyOf", [prop])
    for branch in branches:
        if branch.get("type") == "string":
            branch["enum"] = list(values)
        elif branch.get("type") == "array":
            branch["items"] = {"type": "string", "enum": list(values)}


def _shares(keys: list[str]) -> dict[str, Any]:
    """An object whose keys are among `keys` and whose values are numbers in [0, 1]."""
    return {
        "type": "object",
        "propertyNames": {"enum": list(keys)},
        "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
    }


def release_json_schema(schema: LabelSchema) -> dict[str, Any]:
    """The gold record's JSON Schema narrowed to label schema `schema` (see the module doc)."""
    out = copy.deepcopy(gold_record_json_schema())
    out.pop("$id", None)
    out["title"] = f"GoldRecord under label schema {schema.id}"
    props: dict[str, Any] = out["properties"]
    keep = record_fields(schema)
    for name in [k for k in props if k not in keep]:
        del props[name]
    # Every key of the schema's records is in every record (null when nobody labeled it).
    out["required"] = [k for k in keep if k in out["required"] or k in SCHEMA_KEYS]
    by_name = {f.name: f for f in schema.choice_fields}
    narrowed = {
        "right_action": by_name[schema.right_action_field].values,
        "observed_action": by_name[schema.observed_action_field].values,
        "failure_categories": by_name[schema.failure_field].values,
    }
    for name, field in by_name.items():
        if name in props and name not in narrowed:
            narrowed[name] = field.values
    for field in (*schema.adjudication_fields, *schema.gold_attributes):
        if field.name in props:
            narrowed[field.name] = field.values
    for name, values in narrowed.items():
        if name in props:
            _narrow(props[name], values)
    for field in schema.gold_attributes:
        # Set by the tool on every record: never null.
        if field.required and field.name in props:
            props[field.name] = {
                "type": "string",
                "enum": field.values,
                "description": props[field.name].get("description", ""),
                "title": props[field.name].get("title", ""),
            }
    props["band"] = {**props["band"], **_shares(schema.action_labels)}
    soft = _shares(list(by_name))
    soft["additionalProperties"] = {
        "type": "object",
        "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
    }
    soft["allOf"] = [
        {
            "if": {"required": [name]},
            "then": {"properties": {name: _shares(field.values)}},
        }
        for name, field in by_name.items()
    ]
    props["soft_labels"] = {**props["soft_labels"], **soft}
    return out


def dump_release_json_schema(schema: LabelSchema) -> str:
    """The text of a release's gold-record.schema.json."""
    return json.dumps(release_json_schema(schema), indent=2, sort_keys=True) + "\n"


def dump_json_schema() -> str:
    """The committed text of schemas/gold-record.schema.json."""
    return json.dumps(gold_record_json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(dump_json_schema())
