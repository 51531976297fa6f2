"""claims that do not grow with the campaign: a human-label counter on items, lease index

Revision ID: 0005_claims
Revises: 0001
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_claims"
down_revision: str | None = "0004_signin"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("item", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("human_labels", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.create_index("ix_item_campaign_labels", ["campaign_id", "human_labels"])
        batch_op.create_index("ix_item_campaign_id", ["campaign_id", "id"])
    with op.batch_alter_table("assignment", schema=None) as batch_op:
        batch_op.create_index(
            "ix_assignment_campaign_status", ["campaign_id", "status", "expires_at"]
        )
    # Existing labels: count each item's human annotations once.
    op.execute(
        'UPDATE item SET human_labels = (SELECT count(*) FROM annotation a JOIN "user" u'
        " ON u.id = a.user_id WHERE a.item_id = item.id AND NOT u.is_machine)"
    )


def downgrade() -> None:
    with op.batch_alter_table("assignment", schema=None) as batch_op:
        batch_op.drop_index("ix_assignment_campaign_status")
    with op.batch_alter_table("item", schema=None) as batch_op:
        batch_op.drop_index("ix_item_campaign_labels")
        batch_op.drop_index("ix_item_campaign_id")
        batch_op.drop_column("human_labels")
