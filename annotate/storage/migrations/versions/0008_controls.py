"""control items and qualification: control table, qualification resets, campaign settings

Revision ID: 0008_controls
Revises: 0007_disagreement_cause
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008_controls"
down_revision: str | None = "0007_disagreement_cause"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("control_rate", sa.Float(), nullable=False, server_default="0.05")
        )
        batch_op.add_column(
            sa.Column("qualification_items", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column(
                "qualification_threshold", sa.Float(), nullable=False, server_default="0.8"
            )
        )
        batch_op.add_column(
            sa.Column("drift_margin", sa.Float(), nullable=False, server_default="0.15")
        )
    op.create_table(
        "control",
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("item.id"), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaign.id"), nullable=False),
        sa.Column("marked_by", sa.Integer(), sa.ForeignKey("user.id"), nullable=True),
        sa.Column("marked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    op.create_index("ix_control_campaign", "control", ["campaign_id"])
    op.create_table(
        "qualification_reset",
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaign.id"), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("user.id"), primary_key=True),
        sa.Column("reset_by", sa.Integer(), sa.ForeignKey("user.id"), nullable=True),
        sa.Column("reset_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("qualification_reset")
    op.drop_index("ix_control_campaign", table_name="control")
    op.drop_table("control")
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        for name in ("drift_margin", "qualification_threshold", "qualification_items"):
            batch_op.drop_column(name)
        batch_op.drop_column("control_rate")
