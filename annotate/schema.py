"""Label schemas as data: load and validate `schemas/*.yaml`, credits, bands, consistency rules.

Pure module: no database, no Streamlit.

Version 1 files give credits as symmetric pairs (`[a, b, credit]`); later files may give a
directed table (`right: {predicted: credit}`), which need not be symmetric. Scoring and bands
use the directed credit `credit[right][predicted]`; agreement between annotators uses the
symmetrised distance `1 - (credit[a][b] + credit[b][a]) / 2`. For a pair list both are the same.

Rules and a field's `show_when` are written in the condition language of
`annotate.schema_labels`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    Tag,
    ValidationError,
    model_serializer,
    model_validator,
)

from annotate.errors import SchemaError, ValidationProblem
from annotate.schema_labels import (
    Condition,
    Conditions,
    FieldKind,
    LabelValue,
    check_conditions,
    holds,
    normalize,
)

# New campaigns get version 2; version 1 stays selectable by id (`refusal-v1`).
DEFAULT_SCHEMA = "refusal-v2"
# Union branches are tagged so validation errors can name the key without pydantic's type names.
_TAGS = frozenset({"[pairs]", "[table]", "[values]", "[condition]"})


def _omit(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    # Keys added after version 1 are left out when unused, so a version 1 schema dumps (and
    # fingerprints) exactly as before: stored schemas and releases keep their hashes.
    for key in keys:
        if not data.get(key):
            data.pop(key, None)
    return data


CreditPairs = tuple[tuple[str, str, float], ...]
CreditTable = dict[str, dict[str, float]]
CreditSpec = Annotated[
    Annotated[CreditPairs, Tag("[pairs]")] | Annotated[CreditTable, Tag("[table]")],
    Discriminator(lambda v: "[table]" if isinstance(v, Mapping) else "[pairs]"),
]


class Option(BaseModel):
    """One choice of a field, with the guideline annotators see and its keyboard key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    guideline: str = Field(min_length=1)
    key: str | None = Field(default=None, min_length=1, max_length=12)
    label: str | None = None
    attributes: dict[str, str] = {}

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _omit(handler(self), "attributes")

    @property
    def title(self) -> str:
        """Human-readable name: the explicit label, else the value with spaces."""
        return self.label or self.value.replace("_", " ")


class LabelField(BaseModel):
    """One thing an annotator (or, under `adjudication_fields`, a lead) records.

    `show_when` holds conditions on earlier fields: while they do not hold the field is hidden,
    never required, and its value is dropped. `attributes` declares option attributes and their
    allowed values (e.g. `domain` of a harm area); each option may set them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    kind: FieldKind
    required: bool = False
    ordered: bool = False
    help: str = ""
    options: tuple[Option, ...] = ()
    show_when: Conditions = {}
    attributes: dict[str, list[str]] = {}

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _omit(handler(self), "show_when", "attributes")

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
        for o in self.options:
            for attr, given in o.attributes.items():
                where = f"field `{self.name}` option `{o.value}` attribute `{attr}`"
                if attr not in self.attributes:
                    raise ValueError(f"{where} is not declared under the field's `attributes`")
                if given not in self.attributes[attr]:
                    allowed = ", ".join(self.attributes[attr])
                    raise ValueError(f"{where}: `{given}` is not one of {allowed}")
        return self

    @property
    def values(self) -> list[str]:
        """The option values, in schema order."""
        return [o.value for o in self.options]


class Rule(BaseModel):
    """A consistency rule: when every `when` condition holds, every `expect` should too."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    when: Conditions
    expect: Conditions
    message: str


class RuleWarning(BaseModel):
    """A consistency rule that a set of labels breaks."""

    rule: str
    message: str


class LabelSchema(BaseModel):
    """A versioned label schema (see schemas/refusal-v2.yaml for the annotated default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    version: int = Field(ge=1)
    description: str = ""
    right_action_field: str = "right_action"
    observed_action_field: str = "observed_action"
    failure_field: str = "failure_categories"
    fields: tuple[LabelField, ...]
    credits: CreditSpec = ()
    rules: tuple[Rule, ...] = ()
    adjudication_fields: tuple[LabelField, ...] = ()
    gold_attributes: tuple[LabelField, ...] = ()

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _omit(handler(self), "adjudication_fields", "gold_attributes")

    @model_validator(mode="after")
    def _check(self) -> LabelSchema:
        names = [f.name for f in (*self.fields, *self.adjudication_fields, *self.gold_attributes)]
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
        for part in ("adjudication_fields", "gold_attributes"):
            for f in getattr(self, part):
                if f.show_when:
                    raise ValueError(f"{part}.{f.name}.show_when: only label fields have one")
        for i, f in enumerate(self.fields):
            earlier = {g.name: g for g in self.fields[:i]}
            check_conditions(
                f"fields.{f.name}.show_when", f.show_when, earlier, f"a field before `{f.name}`"
            )
        if isinstance(self.credits, dict):
            self._check_credit_table(self.credits)
        else:
            self._check_credit_pairs(self.credits)
        seen_rules: set[str] = set()
        for rule in self.rules:
            if rule.id in seen_rules:
                raise ValueError(f"rules.{rule.id}: rule id is used twice")
            seen_rules.add(rule.id)
            for part in ("when", "expect"):
                check_conditions(
                    f"rules.{rule.id}.{part}", getattr(rule, part), by_name, "a label field"
                )
        return self

    def _check_credit_pairs(self, pairs: CreditPairs) -> None:
        actions = set(self.action_labels)
        seen: set[frozenset[str]] = set()
        for i, (a, b, c) in enumerate(pairs):
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

    def _check_credit_table(self, table: CreditTable) -> None:
        rights, actions = self.right_actions, self.action_labels
        for right, row in table.items():
            if right not in rights:
                raise ValueError(f"credits.{right}: `{right}` is not a right action")
            for taken, c in row.items():
                where = f"credits.{right}.{taken}"
                if taken not in actions:
                    raise ValueError(f"{where}: `{taken}` is not an observed action")
                if not 0.0 <= c <= 1.0:
                    raise ValueError(f"{where}: credit {c} is outside [0, 1]")
                if taken == right and c != 1.0:
                    raise ValueError(f"{where}: an action earns 1 against itself, not {c}")

    # -- lookups -------------------------------------------------------------------------
    @property
    def id(self) -> str:
        """`name-vN`, the identifier campaigns and releases record."""
        return f"{self.name}-v{self.version}"

    def field(self, name: str) -> LabelField:
        """The annotator field called `name`; raises SchemaError when there is none."""
        for f in self.fields:
            if f.name == name:
                return f
        raise SchemaError(f"Schema {self.id} has no field `{name}`")

    def adjudication_field(self, name: str) -> LabelField:
        """The field a lead records at adjudication called `name`; SchemaError when none."""
        for f in self.adjudication_fields:
            if f.name == name:
                return f
        raise SchemaError(f"Schema {self.id} has no adjudication field `{name}`")

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

    def option_attribute(self, field: str, attribute: str) -> dict[str, str]:
        """`{option: value}` of one option attribute (e.g. harm area -> domain), where set."""
        return {
            o.value: o.attributes[attribute]
            for o in self.field(field).options
            if attribute in o.attributes
        }

    # -- credits and bands --------------------------------------------------------------------
    @property
    def directed_credits(self) -> bool:
        """Whether credits are a directed table (True) or symmetric pairs (version 1)."""
        return isinstance(self.credits, dict)

    def credit_matrix(self) -> np.ndarray:
        """Directed credits over `action_labels`: row = right action, column = action taken.

        1 on the diagonal, listed credits, else 0. Symmetric for a pair list. Actions that are
        never right (pivot) have a row holding the diagonal only, unless pairs give more.
        """
        labels = self.action_labels
        index = {a: i for i, a in enumerate(labels)}
        m = np.eye(len(labels))
        if isinstance(self.credits, dict):
            for right, row in self.credits.items():
                for taken, c in row.items():
                    m[index[right], index[taken]] = c
        else:
            for a, b, c in self.credits:
                m[index[a], index[b]] = m[index[b], index[a]] = c
        return m

    def symmetric_credit_matrix(self) -> np.ndarray:
        """`(credit[a][b] + credit[b][a]) / 2` over `action_labels`: what agreement uses."""
        m = self.credit_matrix()
        return np.asarray((m + m.T) / 2)

    def distance_matrix(self) -> np.ndarray:
        """Agreement distance between actions: 1 - the symmetrised credit, 0 on the diagonal."""
        d = 1.0 - self.symmetric_credit_matrix()
        np.fill_diagonal(d, 0.0)
        return d

    def credit(self, right: str, taken: str) -> float:
        """Credit for taking action `taken` when `right` was right (directed)."""
        if right == taken:
            return 1.0
        if isinstance(self.credits, dict):
            return float(self.credits.get(right, {}).get(taken, 0.0))
        for a, b, c in self.credits:
            if {a, b} == {right, taken}:
                return c
        return 0.0

    def default_band(self, right: str) -> dict[str, float]:
        """`{action: credit}` for every action earning credit > 0 when `right` is right (directed).

        The right action itself is in it at 1. Raises ValidationProblem for an unknown action.
        """
        if right not in self.action_labels:
            raise ValidationProblem(f"`{right}` is not an action of schema {self.id}")
        return {a: self.credit(right, a) for a in self.action_labels if self.credit(right, a) > 0}

    # -- labels ---------------------------------------------------------------------------
    def is_shown(self, field: LabelField, labels: Mapping[str, Any]) -> bool:
        """Whether `field` is shown (and may be required) given the other labels."""
        return all(
            holds(labels.get(k), spec, self.field(k).kind) for k, spec in field.show_when.items()
        )

    def shown_fields(self, labels: Mapping[str, Any]) -> list[LabelField]:
        """The annotator fields shown for `labels`, in schema order.

        A field whose condition names a hidden field sees that field as missing.
        """
        seen: dict[str, Any] = {}
        shown = []
        for f in self.fields:
            visible = self.is_shown(f, seen)
            seen[f.name] = labels.get(f.name) if visible else None
            if visible:
                shown.append(f)
        return shown

    def normalize_labels(
        self, labels: Mapping[str, Any], *, partial: bool = False
    ) -> dict[str, LabelValue]:
        """Check a label dict against the schema and return it in canonical form.

        Single fields hold a string, multi fields a sorted list (empty list = nothing ticked),
        text fields a string or None. A field whose `show_when` does not hold is None whatever
        was given. Raises ValidationProblem naming the field and value. With `partial=True`
        missing required fields are allowed (drafts, imports of one field), and a field whose
        condition names a missing field keeps its value.
        """
        return normalize(self, self.fields, labels, partial=partial)

    def normalize_adjudication(self, values: Mapping[str, Any]) -> dict[str, LabelValue]:
        """Check the values a lead records at adjudication (`adjudication_fields`)."""
        return normalize(self, self.adjudication_fields, values, partial=False)

    def check_consistency(self, labels: Mapping[str, Any]) -> list[RuleWarning]:
        """The rules that `labels` break, each with its message filled in.

        Hidden fields count as missing, whatever value they hold.
        """
        shown = {f.name for f in self.shown_fields(labels)}
        seen = {f.name: labels.get(f.name) if f.name in shown else None for f in self.fields}
        warnings: list[RuleWarning] = []
        for rule in self.rules:
            if all(self._holds(seen, k, v) for k, v in rule.when.items()) and not all(
                self._holds(seen, k, v) for k, v in rule.expect.items()
            ):
                fill = {k: (", ".join(v) if isinstance(v, list) else v) for k, v in labels.items()}
                try:
                    msg = rule.message.format(**fill)
                except (KeyError, IndexError, ValueError):
                    msg = rule.message
                warnings.append(RuleWarning(rule=rule.id, message=msg))
        return warnings

    def _holds(self, labels: Mapping[str, Any], name: str, spec: list[str] | Condition) -> bool:
        return holds(labels.get(name), spec, self.field(name).kind)

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON of the schema: equal content, equal fingerprint."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def canonical_json(self) -> str:
        """The schema as sorted, compact JSON (what the database stores)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def parse_schema(data: Any, *, source: str) -> LabelSchema:
    """Validate already-parsed schema data; errors name `source` and the offending key."""
    if not isinstance(data, dict):
        raise SchemaError(f"{source}: expected a mapping at the top level")
    try:
        return LabelSchema.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"] if p not in _TAGS) or "(top level)"
            lines.append(f"{source}: {loc}: {err['msg']}")
        raise SchemaError("\n".join(lines)) from None


def load_schema(path: Path) -> LabelSchema:
    """Load a schema from a .yaml/.yml/.json file; SchemaError names file and key on failure."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SchemaError(f"Schema file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: cannot read: {exc}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError, RecursionError) as exc:
        raise SchemaError(f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}") from None
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
