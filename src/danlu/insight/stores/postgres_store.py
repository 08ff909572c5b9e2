"""The scale-path store: PostgreSQL, in a schema of its own (``insight``).

Several server processes share it. Each batch of events is written in one
transaction that first takes a transaction-scoped advisory lock, so batches from
different processes (and building a new time zone's rollups) apply one at a time
and the additive rollups stay exact. Rollups keep dashboards off the raw events,
as in the embedded store; indexes cover the lookups by app, workspace and run.
"""

# ruff: noqa: S608 - SQL is assembled from constant fragments (columns, tables, the store's
# date expression); every value is a bound parameter.

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url

from danlu.core.errors import ConfigError
from danlu.insight.events import COLUMNS, Event
from danlu.insight.stores.base import SCHEMA_VERSION, Store, Tx, schema

PG_SCHEMA = "insight"
# pg_advisory_xact_lock key: "danlu insight" writers take turns.
_LOCK_KEY = 2_024_112_801
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS events_app_ts ON events (app_id, ts)",
    "CREATE INDEX IF NOT EXISTS events_run ON events (run_id)",
    "CREATE INDEX IF NOT EXISTS user_days_app ON user_days (tz, app_id, day)",
    "CREATE INDEX IF NOT EXISTS user_days_user ON user_days (tz, workspace_id, user_id, day)",
    "CREATE INDEX IF NOT EXISTS conversation_days_chain ON conversation_days "
    "(tz, app_id, conversation_id, day)",
    "CREATE INDEX IF NOT EXISTS app_users_ws ON app_users (tz, workspace_id)",
    "CREATE INDEX IF NOT EXISTS app_days_ws ON app_days (tz, workspace_id, day)",
    "CREATE INDEX IF NOT EXISTS conversation_days_ws ON conversation_days (tz, workspace_id, day)",
    "CREATE INDEX IF NOT EXISTS latency_days_ws ON latency_days (tz, workspace_id, day)",
    "CREATE INDEX IF NOT EXISTS feedback_app ON feedback (app_id, ts)",
    "CREATE INDEX IF NOT EXISTS feedback_ws ON feedback (workspace_id, ts)",
)
_INSERT_STAGE = text(
    f"INSERT INTO stage ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})"
)


class _PgTx(Tx):
    def __init__(self, connection: Connection):
        self.connection = connection

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self.connection.execute(text(sql), dict(params or {}))

    def fetch(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        result = self.connection.execute(text(sql), dict(params or {}))
        return [tuple(row) for row in result]

    def stage(self, events: Sequence[Event]) -> None:
        self.connection.execute(
            text(
                "CREATE TEMP TABLE IF NOT EXISTS stage (LIKE insight.events) ON COMMIT DELETE ROWS"
            )
        )
        self.connection.execute(text("DELETE FROM stage"))
        if events:
            self.connection.execute(
                _INSERT_STAGE, [dict(zip(COLUMNS, e.as_row(), strict=True)) for e in events]
            )


class PostgresStore(Store):
    kind: ClassVar[str] = "postgresql"

    def __init__(self, url: str):
        super().__init__()
        try:
            parsed = make_url(url)
        except Exception as exc:
            raise ConfigError(f"insight store URL {url!r} is not a database URL: {exc}") from exc
        if parsed.get_backend_name() != "postgresql":
            raise ConfigError(
                "the insight store's scale path is PostgreSQL: set DANLU_INSIGHT_STORE to a "
                f"postgresql+psycopg:// URL, not {parsed.get_backend_name()!r}"
            )
        self.url = parsed
        self.engine = create_engine(
            parsed,
            pool_pre_ping=True,
            connect_args={"options": f"-csearch_path={PG_SCHEMA}"},
        )
        with self.engine.begin() as connection:
            connection.execute(text(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})"))
            connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}"))
            for statement in (*schema(rollup_keys=True), *_INDEXES):
                connection.execute(text(statement))
            connection.execute(
                text("INSERT INTO meta VALUES ('schema_version', :v) ON CONFLICT (key) DO NOTHING"),
                {"v": str(SCHEMA_VERSION)},
            )

    def local_date(self, column: str, tz_param: str) -> str:
        return f"CAST(({column} AT TIME ZONE CAST(:{tz_param} AS TEXT)) AS DATE)"

    @contextmanager
    def transaction(self) -> Iterator[_PgTx]:
        with self.write_lock, self.engine.begin() as connection:
            connection.execute(text(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})"))
            yield _PgTx(connection)

    def fetch(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self.engine.connect() as connection:
            result = connection.execute(text(sql), dict(params or {}))
            return [tuple(row) for row in result]

    def close(self) -> None:
        self.engine.dispose()

    def describe(self) -> str:
        return f"postgresql ({self.url.render_as_string(hide_password=True)})"
