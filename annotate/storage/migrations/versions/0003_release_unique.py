"""release versions unique per campaign

Revision ID: 0003_release_unique
Revises: 0001
Create Date: 2026-12-06

The first migration already declares UNIQUE (campaign_id, version) on `release`; this one makes
sure every database has it (one built another way, or whose table was rebuilt without it), so
two releases of a campaign can never both record the same version. Where the constraint is
there already, it does nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_release_unique"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_release_campaign_version"
COLUMNS = ["campaign_id", "version"]


def _has_unique(inspector: sa.Inspector) -> bool:
    for uc in inspector.get_unique_constraints("release"):
        if sorted(uc["column_names"]) == sorted(COLUMNS):
            return True
    for ix in inspector.get_indexes("release"):
        if ix.get("unique") and sorted(c for c in ix["column_names"] if c) == sorted(COLUMNS):
            return True
    return False


def upgrade() -> None:
    bind = op.get_bind()
    if _has_unique(sa.inspect(bind)):
        return
    duplicates = bind.execute(
        sa.text(
            "SELECT campaign_id, version, count(*) FROM release "
            "GROUP BY campaign_id, version HAVING count(*) > 1"
        )
    ).all()
    if duplicates:
        listed = ", ".join(f"campaign {c} v{v} ({n} rows)" for c, v, n in duplicates)
        raise RuntimeError(
            f"Cannot make release versions unique: recorded more than once: {listed}. "
            "Check each against its folder under exports/, delete the row without one, "
            "then run `annotate init` again."
        )
    op.create_index(INDEX, "release", COLUMNS, unique=True)


def downgrade() -> None:
    if any(ix["name"] == INDEX for ix in sa.inspect(op.get_bind()).get_indexes("release")):
        op.drop_index(INDEX, table_name="release")
