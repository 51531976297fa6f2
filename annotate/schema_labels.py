"""Labels against a schema: the condition language of rules and `show_when`, and normalisation.

Pure module: no database, no Streamlit. `annotate.schema` builds on it; callers use the
methods of `LabelSchema` (`normalize_labels`, `check_consistency`, `is_shown`).

A condition maps a field to a list of values (a single choice is one of them; a multi choice
ticks any of them), to `{none_of: [...]}` (a value is given and is none of them; a multi choice
ticks none of them), or to `{empty: true|false}` (nothing chosen, nothing ticked, or a blank
text). An unlabeled multi choice (None) is neither empty nor non-empty: missing is not "fine".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    SerializerFunctionWrapHandler,
    Tag,
    model_serializer,
    model_validator,
)

from annotate.errors import ValidationProblem

if TYPE_CHECKING:
    from annotate.schema import LabelField, LabelSchema

FieldKind = Literal["single", "multi", "text"]
LabelValue = str | list[str] | None


class Condition(BaseModel):
    """A condition other than a value list: `{none_of: [...]}` or `{empty: true|false}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    none_of: list[str] | None = None
    empty: bool | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}

    @model_validator(mode="after")
    def _one(self) -> Condition:
        if (self.none_of is None) == (self.empty is None):
            raise ValueError("give exactly one of `none_of` or `empty`")
        return self


# Union branches are tagged so that validation errors name the key, not pydantic's type names;
# `annotate.schema.parse_schema` drops the tags from error locations.
ConditionSpec = Annotated[
    Annotated[list[str], Tag("[values]")] | Annotated[Condition, Tag("[condition]")],
    Discriminator(lambda v: "[condition]" if isinstance(v, Mapping | Condition) else "[values]"),
]
Conditions = dict[str, ConditionSpec]


def check_conditions(
    where: str, conds: Conditions, by_name: Mapping[str, LabelField], scope: str
) -> None:
    """Raise ValueError (`where.field: ...`) for a condition on an unknown field or value."""
    for fname, spec in conds.items():
        f = by_name.get(fname)
        if f is None:
            raise ValueError(f"{where}: `{fname}` is not {scope}")
        listed = spec if isinstance(spec, list) else spec.none_of
        if listed is None:
            continue  # `empty` applies to every kind of field
        if f.kind == "text":
            raise ValueError(f"{where}.{fname}: `{fname}` is a text field; only `empty` applies")
        unknown = set(listed) - set(f.values)
        if unknown:
            raise ValueError(f"{where}.{fname}: unknown value(s) {', '.join(sorted(unknown))}")


def holds(value: Any, spec: list[str] | Condition, kind: FieldKind) -> bool:
    """Whether a field's `value` meets one condition (see the module docstring)."""
    if isinstance(spec, Condition) and spec.empty is not None:
        if kind == "multi":
            return value is not None and (len(value) == 0) == spec.empty
        blank = value is None or (isinstance(value, str) and not value.strip())
        return blank == spec.empty
    if value is None:
        return False
    listed = spec if isinstance(spec, list) else spec.none_of or []
    many = isinstance(value, list | tuple | set | frozenset)
    hit = any(v in listed for v in value) if many else value in listed
    return hit if isinstance(spec, list) else not hit


def normalize(
    schema: LabelSchema,
    fields: tuple[LabelField, ...],
    labels: Mapping[str, Any],
    *,
    partial: bool,
) -> dict[str, LabelValue]:
    """`labels` over `fields` in canonical form; see `LabelSchema.normalize_labels`."""
    unknown = set(labels) - {f.name for f in fields}
    if unknown:
        raise ValidationProblem(
            f"Unknown field(s) {', '.join(sorted(unknown))} for schema {schema.id}"
        )
    out: dict[str, LabelValue] = {}
    for f in fields:
        raw = labels.get(f.name)
        if f.show_when:
            undecided = partial and any(out.get(k) is None for k in f.show_when)
            if not undecided and not schema.is_shown(f, out):
                out[f.name] = None  # hidden: never required, and whatever was given is dropped
                continue
        if f.kind == "text":
            out[f.name] = str(raw).strip() or None if raw is not None else None
            continue
        if f.kind == "single":
            if raw is None or raw == "":
                if f.required and not partial:
                    raise ValidationProblem(f"Field `{f.name}` is required")
                out[f.name] = None
                continue
            if not isinstance(raw, str) or raw not in f.values:
                raise ValidationProblem(
                    f"Field `{f.name}`: `{raw}` is not one of {', '.join(f.values)}"
                )
            out[f.name] = raw
            continue
        if raw is None:
            if partial:
                out[f.name] = None
                continue
            raw = []
        if isinstance(raw, str):
            raw = [p.strip() for p in raw.split(";") if p.strip()]
        if not isinstance(raw, list | tuple | set | frozenset):
            raise ValidationProblem(f"Field `{f.name}` takes a list of values, got `{raw}`")
        bad = [v for v in raw if v not in f.values]
        if bad:
            raise ValidationProblem(
                f"Field `{f.name}`: `{bad[0]}` is not one of {', '.join(f.values)}"
            )
        out[f.name] = sorted(set(raw), key=f.values.index)
    return out
