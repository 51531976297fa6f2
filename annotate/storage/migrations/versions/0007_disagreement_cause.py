"""adjudication.disagreement_cause: why the annotators disagreed, as the lead records it

Revision ID: 0007_disagreement_cause
Revises: 0006_visible_metadata
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_disagreement_cause"
down_revision: str | None = "0006_visible_metadata"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("adjudication") as batch:
        batch.add_column(sa.Column("disagreement_cause", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("adjudication") as batch:
        batch.drop_column("disagreement_cause")
