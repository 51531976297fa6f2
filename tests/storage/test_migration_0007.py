"""Migration 0007_disagreement_cause: a nullable column on adjudications; old rows read None."""

from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from annotate.storage import db


def test_disagreement_cause_column_comes_and_goes(db_url: str) -> None:
    engine = db.make_engine(db_url)
    columns = {c["name"]: c for c in inspect(engine).get_columns("adjudication")}
    assert columns["disagreement_cause"]["nullable"]
    command.downgrade(db.alembic_config(engine), "0006_visible_metadata")
    engine.dispose()
    engine = db.make_engine(db_url)
    assert "disagreement_cause" not in {
        c["name"] for c in inspect(engine).get_columns("adjudication")
    }
    db.migrate(engine)
    engine.dispose()
    engine = db.make_engine(db_url)
    assert "disagreement_cause" in {c["name"] for c in inspect(engine).get_columns("adjudication")}
    with engine.connect() as conn:
        # Migrated to the head, which 0007 is on the way to.
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == (
            ScriptDirectory.from_config(db.alembic_config(engine)).get_current_head()
        )
    engine.dispose()
