"""sign-in: session generation per user, login throttle per user name and client address

Revision ID: 0002_signin
Revises: 0001
Create Date: 2026-12-06

The cookie signing key that older versions generated into `app_secret` is moved to a key file
by `annotate.accounts.keys` on first use (the migration cannot know where that file goes).
Sign-out stamps (`signed_out:N` rows) are replaced by `user.session_generation` and dropped.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004_signin"
down_revision: str | None = "0003_release_unique"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user") as batch:
        batch.add_column(
            sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "login_throttle",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.execute("DELETE FROM app_secret WHERE key LIKE 'signed_out:%'")


def downgrade() -> None:
    op.drop_table("login_throttle")
    with op.batch_alter_table("user") as batch:
        batch.drop_column("session_generation")
