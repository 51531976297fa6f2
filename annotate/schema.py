"""Label schemas as data: load and validate `schemas/*.yaml`, credits, bands, consistency rules.

Pure module: no database, no Streamlit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from annotate.errors import SchemaError, ValidationProblem

DEFAULT_SCHEMA = "refusal-v1"
FieldKind = Literal["single", "multi", "text"]
LabelValue = str | list[str] | None


class Option(BaseModel):
    """One choice of a field, with the guideline annotators see and its keyboard key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    guideline: str = Field(min_length=1)
    key: str | None = Field(default=None, min_length=1, max_length=12)
    label: str | None = None

    @property
    def title(self) -> str:
        """Human-readable name: the explicit label, else the value with spaces."""
        return self.label or self.value.replace("_", " ")


class LabelField(BaseModel):
    """One thing an annotator records."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    kind: FieldKind
    required: bool = False
    ordered: bool = False
    help: str = ""
    options: tuple[Option, ...] = ()

    @model_validator(mode="after")
    def _options_fit_kind(self) -> LabelField:
        if self.kind == "text" and self.options:
            raise ValueError(f"text field `{self.name}` cannot have options")
        if self.kind != "text" and not self.options:
            raise ValueError(f"{self.kind} field `{self.name}` needs at least one option")
        values = [o.value for o in self.options]
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise ValueError(f"field `{self.name}` repeats option(s) {', '.join(dupes)}")
        return self

    @property
    def values(self) -> list[str]:
        """The option values, in schema order."""
        return [o.value for o in self.options]


class Rule(BaseModel):
    """A consistency rule: when every `when` condition holds, every `expect` should too."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    when: dict[str, list[str]]
    expect: dict[str, list[str]]
    message: str


class RuleWarning(BaseModel):
    """A consistency rule that a set of labels breaks."""

    rule: str
    message: str


class LabelSchema(BaseModel):
    """A versioned label schema (see schemas/refusal-v1.yaml for the annotated default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    version: int = Field(ge=1)
    description: str = ""
    right_action_field: str = "right_action"
    observed_action_field: str = "observed_action"
    failure_field: str = "failure_categories"
    fields: tuple[LabelField, ...]
    credits: tuple[tuple[str, str, float], ...] = ()
    rules: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> LabelSchema:
        names = [f.name for f in self.fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"fields: repeated field name(s) {', '.join(dupes)}")
        by_name = {f.name: f for f in self.fields}
        for role in ("right_action_field", "observed_action_field"):
            target = getattr(self, role)
            if target not in by_name or by_name[target].kind != "single":
                raise ValueError(f"{role}: `{target}` must name a single-choice field")
        if self.failure_field not in by_name or by_name[self.failure_field].kind != "multi":
            raise ValueError(
                f"failure_field: `{self.failure_field}` must name a multi-choice field"
            )
        actions = set(self.action_labels)
        missing = set(by_name[self.right_action_field].values) - actions
        if missing:
            raise ValueError(
                f"right action option(s) {', '.join(sorted(missing))} are not observed actions"
            )
        keys: dict[str, str] = {}
        for f in self.fields:
            for o in f.options:
                if o.key is None:
                    continue
                if o.key in keys:
                    raise ValueError(
                        f"fields.{f.name}.{o.value}.key: `{o.key}` is already used by {keys[o.key]}"
                    )
                keys[o.key] = f"{f.name}.{o.value}"
        seen: set[frozenset[str]] = set()
        for i, (a, b, c) in enumerate(self.credits):
            for x in (a, b):
                if x not in actions:
                    raise ValueError(f"credits.{i}: `{x}` is not an observed action")
            if a == b:
                raise ValueError(f"credits.{i}: `{a}` against itself is always 1; list pairs only")
            if not 0.0 <= c <= 1.0:
                raise ValueError(f"credits.{i}: credit {c} is outside [0, 1]")
            pair = frozenset((a, b))
            if pair in seen:
                raise ValueError(f"credits.{i}: pair {a}/{b} is listed twice")
            seen.add(pair)
        for rule in self.rules:
            for part in ("when", "expect"):
                for fname, vals in getattr(rule, part).items():
                    if fname not in by_name or by_name[fname].kind == "text":
                        raise ValueError(f"rules.{rule.id}.{part}: `{fname}` is not a choice field")
                    unknown = set(vals) - set(by_name[fname].values)
                    if unknown:
                        raise ValueError(
                            f"rules.{rule.id}.{part}.{fname}: unknown value(s) "
                            f"{', '.join(sorted(unknown))}"
                        )
        return self

    # -- lookups -------------------------------------------------------------------------
    @property
    def id(self) -> str:
        """`name-vN`, the identifier campaigns and releases record."""
        return f"{self.name}-v{self.version}"

    def field(self, name: str) -> LabelField:
        """The field called `name`; raises SchemaError when there is none."""
        for f in self.fields:
            if f.name == name:
                return f
        raise SchemaError(f"Schema {self.id} has no field `{name}`")

    @property
    def choice_fields(self) -> list[LabelField]:
        """Single- and multi-choice fields, in schema order."""
        return [f for f in self.fields if f.kind != "text"]

    @property
    def action_labels(self) -> list[str]:
        """Every action a response (or a model) can take: the observed-action options."""
        return self.field(self.observed_action_field).values

    @property
    def right_actions(self) -> list[str]:
        """The actions a gold item can name as right."""
        return self.field(self.right_action_field).values

    def credit_matrix(self) -> np.ndarray:
        """Symmetric credits over `action_labels`: 1 on the diagonal, listed pairs, else 0."""
        labels = self.action_labels
        index = {a: i for i, a in enumerate(labels)}
        m = np.eye(len(labels))
        for a, b, c in self.credits:
            m[index[a], index[b]] = m[index[b], index[a]] = c
        return m

    def credit(self, right: str, taken: str) -> float:
        """Credit for taking action `taken` when `right` was right."""
        if right == taken:
            return 1.0
        for a, b, c in self.credits:
            if {a, b} == {right, taken}:
                return c
        return 0.0

    def default_band(self, right: str) -> dict[str, float]:
        """`{action: credit}` for every action with credit > 0 around `right` (itself at 1)."""
        if right not in self.action_labels:
            raise ValidationProblem(f"`{right}` is not an action of schema {self.id}")
        return {a: self.credit(right, a) for a in self.action_labels if self.credit(right, a) > 0}

    # -- labels ---------------------------------------------------------------------------
    def normalize_labels(
        self, labels: Mapping[str, Any], *, partial: bool = False
    ) -> dict[str, LabelValue]:
        """Check a label dict against the schema and return it in canonical form.

        Single fields hold a string, multi fields a sorted list (empty list = nothing ticked),
        text fields a string or None. Raises ValidationProblem naming the field and value.
        With `partial=True` missing required fields are allowed (drafts, imports of one field).
        """
        unknown = set(labels) - {f.name for f in self.fields}
        if unknown:
            raise ValidationProblem(
                f"Unknown field(s) {', '.join(sorted(unknown))} for schema {self.id}"
            )
        out: dict[str, LabelValue] = {}
        for f in self.fields:
            raw = labels.get(f.name)
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

    def check_consistency(self, labels: Mapping[str, Any]) -> list[RuleWarning]:
        """The rules that `labels` break, each with its message filled in."""
        warnings: list[RuleWarning] = []
        for rule in self.rules:
            if all(_holds(labels.get(k), v) for k, v in rule.when.items()) and not all(
                _holds(labels.get(k), v) for k, v in rule.expect.items()
            ):
                fill = {k: (", ".join(v) if isinstance(v, list) else v) for k, v in labels.items()}
                try:
                    msg = rule.message.format(**fill)
                except (KeyError, IndexError, ValueError):
                    msg = rule.message
                warnings.append(RuleWarning(rule=rule.id, message=msg))
        return warnings

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON of the schema: equal content, equal fingerprint."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def canonical_json(self) -> str:
        """The schema as sorted, compact JSON (what the database stores)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def _holds(value: Any, allowed: list[str]) -> bool:
    if value is None:
        return False
    if isinstance(value, list | tuple | set | frozenset):
        return any(v in allowed for v in value)
    return value in allowed


def parse_schema(data: Any, *, source: str) -> LabelSchema:
    """Validate already-parsed schema data; errors name `source` and the offending key."""
    if not isinstance(data, dict):
        raise SchemaError(f"{source}: expected a mapping at the top level")
    try:
        return LabelSchema.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"{source}: {loc}: {err['msg']}")
        raise SchemaError("\n".join(lines)) from None


MAX_NESTING = 100
"""Deepest nesting of lists and objects accepted in files from users (JSON, YAML cells)."""


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases: `*name` is how a few hundred bytes expand to
    billions of nodes ("billion laughs"), and no file the tool reads needs one."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.MarkedYAMLError(
                None,
                None,
                "aliases (`*name`) are not accepted: write the repeated value out",
                self.peek_event().start_mark,
            )
        return super().compose_node(parent, index)


def too_deep(value: Any, limit: int = MAX_NESTING) -> bool:
    """Whether `value` nests lists and dicts more than `limit` levels (found without recursing)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def load_user_data(text: str, *, yaml_syntax: bool) -> Any:
    """Parse a user's YAML or JSON text: safe types only, no aliases, at most MAX_NESTING deep.

    Raises ValueError with a message naming what is wrong (callers add the file name).
    """
    try:
        data = yaml.load(text, Loader=_NoAliasLoader) if yaml_syntax else json.loads(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    except RecursionError:
        data = None
    else:
        if not too_deep(data):
            return data
    raise ValueError(f"nested more than {MAX_NESTING} levels deep")


def load_schema(path: Path) -> LabelSchema:
    """Load a schema from a .yaml/.yml/.json file; SchemaError names file and key on failure."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SchemaError(f"Schema file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: cannot read: {exc}") from None
    try:
        data = load_user_data(text, yaml_syntax=path.suffix != ".json")
    except ValueError as exc:
        raise SchemaError(f"{path}: {exc}") from None
    return parse_schema(data, source=str(path))


def resolve_schema(ref: str | Path | None, schemas_dir: Path) -> LabelSchema:
    """A schema by file path, or by id (`refusal-v1`) looked up in `schemas_dir`."""
    ref = ref or DEFAULT_SCHEMA
    path = Path(ref)
    if path.suffix in {".yaml", ".yml", ".json"} or path.exists():
        return load_schema(path)
    for suffix in (".yaml", ".yml", ".json"):
        candidate = schemas_dir / f"{ref}{suffix}"
        if candidate.exists():
            return load_schema(candidate)
    raise SchemaError(f"No schema `{ref}`: not a file, and not in {schemas_dir}")


def schema_from_json(text: str) -> LabelSchema:
    """Rebuild a stored schema from its canonical JSON."""
    return parse_schema(json.loads(text), source="stored schema")
