"""The metadata database: one engine, read sessions and serialized writes.

SQLite (the embedded default) runs in WAL mode so readers never wait for the
writer, and every write transaction starts with ``BEGIN IMMEDIATE`` so two
writers queue on the lock up front instead of deadlocking half-way through
(the datasette habit). PostgreSQL needs neither trick.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from danlu.core.errors import ConfigError

_BEGIN_MODE = "danlu_sqlite_begin"


class Database:
    """Owns the engine; hands out sessions. Pass it in, never import a global."""

    def __init__(self, url: str, *, echo: bool = False):
        self.url = url
        try:
            parsed = make_url(url)
        except Exception as exc:
            raise ConfigError(f"DANLU_DATABASE_URL {url!r} is not a database URL: {exc}") from exc
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": not self.is_sqlite}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
            kwargs["connect_args"] = {"check_same_thread": False, "isolation_level": None}
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            _install_sqlite_pragmas(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; nothing it changes is committed.

        Closing (not rolling back) ends the transaction without expiring the
        loaded objects, so callers can use them after the block.
        """
        with self._sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose changes commit on success and roll back on error."""
        with self._sessions() as session:
            if self.is_sqlite:
                session.connection(execution_options={_BEGIN_MODE: "IMMEDIATE"})
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


def _install_sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(_BEGIN_MODE, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")
