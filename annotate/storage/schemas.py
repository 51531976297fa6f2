"""Label schemas in the database: register a schema once, read a campaign's schema back."""

from __future__ import annotations

from functools import lru_cache

from sqlmodel import Session, select

from annotate.errors import (
    Conflict,
    NotFound,
)
from annotate.schema import LabelSchema, schema_from_json
from annotate.storage.models import (
    Campaign,
    LabelSchemaRecord,
)


def register_schema(*, session: Session, schema: LabelSchema) -> LabelSchemaRecord:
    """Store `schema` or return its stored copy; changed content under a used version is refused."""
    existing = session.exec(
        select(LabelSchemaRecord).where(
            LabelSchemaRecord.name == schema.name, LabelSchemaRecord.version == schema.version
        )
    ).first()
    digest = schema.fingerprint()
    if existing is not None:
        if existing.sha256 != digest:
            raise Conflict(
                f"Schema {schema.id} is already registered with different content; schemas are "
                f"immutable once used, so give the changed file a new `version`"
            )
        return existing
    record = LabelSchemaRecord(
        name=schema.name, version=schema.version, sha256=digest, content=schema.canonical_json()
    )
    session.add(record)
    session.flush()
    return record


@lru_cache(maxsize=64)
def _schema_from_content(content: str) -> LabelSchema:
    return schema_from_json(content)


def campaign_schema(*, session: Session, campaign: Campaign) -> LabelSchema:
    """The label schema version `campaign` was created with."""
    record = session.get(LabelSchemaRecord, campaign.schema_id)
    if record is None:
        raise NotFound(f"Campaign `{campaign.name}` refers to a missing schema")
    return _schema_from_content(record.content)
