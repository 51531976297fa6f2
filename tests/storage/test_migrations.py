"""Upgrading a database written by the first release keeps every row, and models read it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from annotate import storage
from annotate.accounts.auth import system_actor
from annotate.storage import db
from annotate.storage.models import Adjudication, Annotation, Item

OLD_DB = Path(__file__).parents[1] / "data" / "annotate-v0001.db"


def _counts(engine: object) -> dict[str, int]:
    insp = inspect(engine)  # type: ignore[arg-type]
    out = {}
    with engine.connect() as conn:  # type: ignore[attr-defined]
        for table in insp.get_table_names():
            if table != "alembic_version":
                out[table] = conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one()
    return out


def test_upgrade_from_v0001_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    shutil.copy(OLD_DB, path)
    engine = db.make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0001"
    before = _counts(engine)
    assert before["item"] == 3 and all(n >= 1 for n in before.values()), before

    db.migrate(engine)

    after = _counts(engine)
    assert {t: after[t] for t in before} == before
    with Session(engine) as s:
        campaign = storage.get_campaign(session=s, name="old")
        assert campaign.restricted and campaign.overlap == 2
        schema = storage.campaign_schema(session=s, campaign=campaign)
        assert schema.id == "refusal-v1"
        assert [i.meta for i in s.exec(select(Item)).all()] == [{"focus": "kill"}] * 3
        ann = s.exec(select(Annotation)).one()
        assert ann.labels["right_action"] == "answer" and ann.duration_s == 12.5
        adj = s.exec(select(Adjudication)).one()
        assert adj.band == {"answer": 1.0, "answer_with_caveat": 0.75}
        status = storage.campaign_status(session=s, actor=system_actor(), campaign=campaign)
        assert (status.items, status.annotations) == (3, 1)
    engine.dispose()


def test_migrate_is_idempotent(db_url: str) -> None:
    engine = db.make_engine(db_url)
    db.migrate(engine)
    db.migrate(engine)
    assert db.is_migrated(engine)
    engine.dispose()


def test_release_versions_become_unique(db_url: str) -> None:
    """A database whose release table lacks UNIQUE (campaign_id, version) gets it on upgrade."""
    engine = db.make_engine(db_url)
    command.downgrade(db.alembic_config(engine), "0001")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE release_copy AS SELECT * FROM release"))
        conn.execute(text("DROP TABLE release"))
        conn.execute(text("ALTER TABLE release_copy RENAME TO release"))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO label_schema (id, name, version, sha256, content, created_at) "
                "VALUES (1, 's', 1, 'x', '{}', '2026-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO campaign (id, name, schema_id, overlap, guidelines, restricted, "
                "seed, created_at) VALUES (1, 'c', 1, 1, '', false, 1, '2026-01-01')"
            )
        )
    db.migrate(engine)
    row = (
        "INSERT INTO release (id, campaign_id, version, path, manifest_sha256, summary, "
        "created_at) VALUES ({id}, 1, 5, '/x', 'h', '{{}}', '2026-01-01')"
    )
    with engine.begin() as conn:
        conn.execute(text(row.format(id=1)))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(row.format(id=2)))
    engine.dispose()


def test_visible_metadata_starts_empty_for_existing_campaigns(db_url: str) -> None:
    """0006 adds Campaign.visible_metadata; campaigns made before it show annotators no key."""
    engine = db.make_engine(db_url)
    command.downgrade(db.alembic_config(engine), "0005_claims")
    assert "visible_metadata" not in {c["name"] for c in inspect(engine).get_columns("campaign")}
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO label_schema (id, name, version, sha256, content, created_at) "
                "VALUES (1, 's', 1, 'x', '{}', '2026-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO campaign (id, name, schema_id, overlap, guidelines, restricted, "
                "seed, created_at) VALUES (1, 'c', 1, 1, '', false, 1, '2026-01-01')"
            )
        )
    db.migrate(engine)
    with Session(engine) as s:
        assert storage.get_campaign(session=s, name="c").visible_metadata == []
    command.downgrade(db.alembic_config(engine), "0005_claims")
    assert "visible_metadata" not in {c["name"] for c in inspect(engine).get_columns("campaign")}
    db.migrate(engine)
    engine.dispose()


def test_the_models_match_the_migrations(db_url: str) -> None:
    """Autogenerate finds nothing to add for Campaign.visible_metadata after `migrate`."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    engine = db.make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert not [d for d in diff if "visible_metadata" in repr(d)], diff
