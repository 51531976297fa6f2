"""label changes and column snapshots: annotation.change_seq, its triggers, label_snapshot

Revision ID: 0009_label_changes
Revises: 0008_controls
Create Date: 2026-12-06

Every write of an annotation stamps `change_seq` in the same statement (a trigger, so that no
writer can forget it), which lets `load_labels` read only what changed since a snapshot:
- SQLite (one writer at a time): the campaign's largest change_seq + 1, so the numbers follow
  the order in which transactions commit;
- PostgreSQL (concurrent writers): the writing transaction's id (xid8). A reader keeps the
  oldest transaction still running when it read (pg_snapshot_xmin) and reads from there the
  next time, so a transaction that commits after a reader saw newer ones is never missed.
`label_snapshot` holds each campaign's label columns as of a bound (Arrow IPC bytes).
On SQLite, a later `batch_alter_table("annotation")` rebuilds the table without triggers: such
a migration must create annotation_change_insert and annotation_change_update again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009_label_changes"
down_revision: str | None = "0008_controls"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_STAMP = """
UPDATE annotation SET change_seq = (
    SELECT COALESCE(MAX(change_seq), 0) + 1 FROM annotation WHERE campaign_id = NEW.campaign_id
) WHERE id = NEW.id;
"""

PG_FUNCTION = """
CREATE FUNCTION annotate_change_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_seq := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END
$$
"""


def upgrade() -> None:
    op.add_column("annotation", sa.Column("change_seq", sa.BigInteger(), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        op.execute("UPDATE annotation SET change_seq = id")
    else:
        op.execute("UPDATE annotation SET change_seq = 0")
    op.create_index("ix_annotation_campaign_change", "annotation", ["campaign_id", "change_seq"])
    op.create_table(
        "label_snapshot",
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaign.id"), primary_key=True),
        sa.Column("bound", sa.BigInteger(), nullable=False),
        sa.Column("layout", sa.Text(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TRIGGER annotation_change_insert AFTER INSERT ON annotation "
            f"BEGIN {SQLITE_STAMP} END"
        )
        op.execute(
            "CREATE TRIGGER annotation_change_update AFTER UPDATE ON annotation "
            f"WHEN NEW.change_seq IS OLD.change_seq BEGIN {SQLITE_STAMP} END"
        )
    else:
        op.execute(PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER annotation_change BEFORE INSERT OR UPDATE ON annotation "
            "FOR EACH ROW EXECUTE FUNCTION annotate_change_seq()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER annotation_change_update")
        op.execute("DROP TRIGGER annotation_change_insert")
    else:
        op.execute("DROP TRIGGER annotation_change ON annotation")
        op.execute("DROP FUNCTION annotate_change_seq()")
    op.drop_table("label_snapshot")
    op.drop_index("ix_annotation_campaign_change", table_name="annotation")
    with op.batch_alter_table("annotation", schema=None) as batch_op:
        batch_op.drop_column("change_seq")
