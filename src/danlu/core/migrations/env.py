"""Alembic environment: migrations run on the engine danlu hands in."""

from __future__ import annotations

from alembic import context

from danlu.schema import metadata

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite can only alter tables by copying them.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
