"""Alembic environment: the engine comes from `annotate.storage.db.alembic_config`."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import annotate.storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)

config = context.config
engine = config.attributes.get("engine")
if engine is None:
    from annotate.settings import get_settings
    from annotate.storage.db import make_engine

    engine = make_engine(get_settings().database_url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
