"""adjudication.overridden_rules: the consistency rules a lead's final labels override

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("adjudication") as batch:
        batch.add_column(
            sa.Column("overridden_rules", sa.JSON(), nullable=False, server_default="[]")
        )


def downgrade() -> None:
    with op.batch_alter_table("adjudication") as batch:
        batch.drop_column("overridden_rules")
