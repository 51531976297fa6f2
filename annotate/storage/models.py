"""SQLModel tables. Every change here needs an Alembic migration in annotate/migrations/versions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

ROLES = ("annotator", "lead", "admin")


def utcnow() -> datetime:
    """Timezone-aware UTC now (SQLModel's datetime columns require an offset)."""
    return datetime.now(UTC)


class User(SQLModel, table=True):
    """A person (or an automatic judge, `is_machine`) who labels, leads or administers."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=200)
    role: str = Field(default="annotator", max_length=20)
    password_hash: str | None = Field(default=None, max_length=500)
    is_machine: bool = Field(default=False)
    active: bool = Field(default=True)
    # Bumped when a password changes, the account is (de)activated or the user signs out: session
    # cookies and in-memory User objects from an older generation are refused.
    session_generation: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow)


class LabelSchemaRecord(SQLModel, table=True):
    """A label schema version as registered: immutable once stored."""

    __tablename__ = "label_schema"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    version: int
    sha256: str = Field(max_length=64)
    content: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class Campaign(SQLModel, table=True):
    """A labeling campaign: items, a schema version and an overlap k."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=200)
    schema_id: int = Field(foreign_key="label_schema.id")
    overlap: int = Field(default=2, ge=1)
    guidelines: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    restricted: bool = Field(default=False)
    seed: int = Field(default=0)
    # What annotators may see besides the text: item attributes (model, category, group,
    # source) and metadata keys, by name; empty, they see the text and an opaque handle only.
    visible_metadata: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    created_at: datetime = Field(default_factory=utcnow)
    # Control items (annotate.review.controls): the share of claims served a control, the
    # qualification controls a new annotator labels first (0: none), the mean credit that
    # opens real items, and the fall in credit or alpha over the last 50 items that flags drift.
    control_rate: float = Field(default=0.05)
    qualification_items: int = Field(default=0)
    qualification_threshold: float = Field(default=0.8)
    drift_margin: float = Field(default=0.15)


class CampaignMember(SQLModel, table=True):
    """An annotator allowed on a restricted campaign."""

    __tablename__ = "campaign_member"

    campaign_id: int = Field(foreign_key="campaign.id", primary_key=True)
    user_id: int = Field(foreign_key="user.id", primary_key=True)


class Item(SQLModel, table=True):
    """A prompt (or conversation) and one model response to it."""

    __table_args__ = (
        UniqueConstraint("campaign_id", "external_id"),
        Index("ix_item_campaign_hash", "campaign_id", "content_hash"),
        Index("ix_item_campaign_category", "campaign_id", "category"),
        Index("ix_item_campaign_model", "campaign_id", "model"),
        Index("ix_item_campaign_group", "campaign_id", "group_id"),
        # Claims read the partly labeled items as a range of this index (0 < n < k).
        Index("ix_item_campaign_labels", "campaign_id", "human_labels"),
        # The newest item of a campaign in one index step (claims check their cached order).
        Index("ix_item_campaign_id", "campaign_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    external_id: str = Field(max_length=500)
    prompt: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    conversation: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    response: str = Field(sa_column=Column(Text, nullable=False))
    model: str | None = Field(default=None, max_length=500)
    source: str | None = Field(default=None, max_length=500)
    category: str | None = Field(default=None, max_length=500)
    group_id: str | None = Field(default=None, max_length=500)
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    content_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    # Human annotations of this item, kept by `save_annotation` (machine judges' are not counted).
    human_labels: int = Field(default=0)


class Assignment(SQLModel, table=True):
    """An item claimed by an annotator: a lease until `expires_at`, then done or skipped."""

    __table_args__ = (
        UniqueConstraint("item_id", "user_id"),
        Index("ix_assignment_campaign_user_status", "campaign_id", "user_id", "status"),
        Index("ix_assignment_item_status", "item_id", "status"),
        Index("ix_assignment_campaign_status", "campaign_id", "status", "expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    item_id: int = Field(foreign_key="item.id")
    user_id: int = Field(foreign_key="user.id")
    status: str = Field(default="active", max_length=20)  # active | done | skipped | expired
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    claimed_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    finished_at: datetime | None = None


class Annotation(SQLModel, table=True):
    """One annotator's current labels for one item (history keeps every version)."""

    __table_args__ = (
        UniqueConstraint("item_id", "user_id"),
        Index("ix_annotation_campaign_user", "campaign_id", "user_id"),
        Index("ix_annotation_campaign_item", "campaign_id", "item_id"),
        Index("ix_annotation_campaign_updated", "campaign_id", "updated_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    item_id: int = Field(foreign_key="item.id")
    user_id: int = Field(foreign_key="user.id")
    labels: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    flagged: bool = Field(default=False)
    flag_note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    overridden_rules: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    duration_s: float | None = None
    origin: str = Field(default="app", max_length=20)  # app | import
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class AnnotationHistory(SQLModel, table=True):
    """Append-only log: every version of every annotation, with when it was written."""

    __tablename__ = "annotation_history"
    __table_args__ = (Index("ix_history_annotation", "annotation_id"),)

    id: int | None = Field(default=None, primary_key=True)
    annotation_id: int = Field(foreign_key="annotation.id")
    item_id: int = Field(foreign_key="item.id")
    user_id: int = Field(foreign_key="user.id")
    labels: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    action: str = Field(max_length=20)  # create | edit | import
    duration_s: float | None = None
    changed_at: datetime = Field(default_factory=utcnow)


class Adjudication(SQLModel, table=True):
    """A lead's final labels and band for an item; re-adjudication appends a new row."""

    __table_args__ = (
        Index("ix_adjudication_campaign_current", "campaign_id", "is_current"),
        Index("ix_adjudication_item", "item_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    item_id: int = Field(foreign_key="item.id")
    lead_id: int = Field(foreign_key="user.id")
    labels: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    band: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    guideline_gap: bool = Field(default=False)
    overrides_majority: bool = Field(default=False)
    method: str = Field(default="manual", max_length=20)  # manual | bulk_unanimous
    # Why the annotators disagreed (the schema's `adjudication_fields`, refusal-v2 on): one of
    # its values, or None when not recorded.
    disagreement_cause: str | None = Field(default=None, max_length=40)
    # Consistency rules the final labels break, overridden with the note saying why.
    overridden_rules: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    previous_id: int | None = Field(default=None, foreign_key="adjudication.id")
    is_current: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow)


class Control(SQLModel, table=True):
    """An adjudicated item a lead set aside as a control: served to check annotators, never gold."""

    __table_args__ = (Index("ix_control_campaign", "campaign_id"),)

    item_id: int = Field(foreign_key="item.id", primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    marked_by: int | None = Field(default=None, foreign_key="user.id")  # None: command line
    marked_at: datetime = Field(default_factory=utcnow)


class QualificationReset(SQLModel, table=True):
    """A lead let an annotator take a campaign's qualification again from `reset_at`."""

    __tablename__ = "qualification_reset"

    campaign_id: int = Field(foreign_key="campaign.id", primary_key=True)
    user_id: int = Field(foreign_key="user.id", primary_key=True)
    reset_by: int | None = Field(default=None, foreign_key="user.id")  # None: command line
    reset_at: datetime = Field(default_factory=utcnow)


class Release(SQLModel, table=True):
    """A gold release written to exports/NAME/vN (the files are the source of truth)."""

    __table_args__ = (UniqueConstraint("campaign_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    version: int
    path: str = Field(sa_column=Column(Text, nullable=False))
    manifest_sha256: str = Field(max_length=64)
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class LoginAttempt(SQLModel, table=True):
    """A sign-in attempt, kept to rate-limit guessing per user name."""

    __tablename__ = "login_attempt"
    __table_args__ = (Index("ix_login_attempt_name_at", "user_name", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    user_name: str = Field(max_length=200)
    success: bool
    at: datetime = Field(default_factory=utcnow)


class LoginThrottle(SQLModel, table=True):
    """Recent failed sign-ins of one user name (`user:NAME`) or client address (`addr:IP`).

    A sign-in reserves its attempt here (counting it as a failure) before the password is
    checked; a success then takes it back. `failures` restarts from 0 once `last_failure_at`
    is older than the counting window.
    """

    __tablename__ = "login_throttle"

    key: str = Field(primary_key=True, max_length=300)
    failures: int = Field(default=0)
    last_failure_at: datetime = Field(default_factory=utcnow)


class AppSecret(SQLModel, table=True):
    """Small key/value store for generated secrets (the cookie signing key)."""

    __tablename__ = "app_secret"

    key: str = Field(primary_key=True, max_length=100)
    value: str = Field(sa_column=Column(Text, nullable=False))
