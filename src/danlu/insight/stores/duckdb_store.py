"""The embedded store: one DuckDB file under DANLU_HOME (``insight.duckdb``).

DuckDB is a columnar engine in the server's process: the retention table and the
DAU/MAU series over millions of rows take tens of milliseconds, with nothing to
install or run (bench/insight_queries.py). A DuckDB file is opened by one process
at a time, so a deployment with several server processes uses the PostgreSQL store.
"""

# ruff: noqa: S608 - SQL is assembled from constant fragments (columns, tables, the store's
# date expression); every value is a bound parameter.

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa

from danlu.insight.events import COLUMNS, Event
from danlu.insight.stores.base import SCHEMA_VERSION, Store, Tx, schema

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")

ARROW_SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("us", tz="UTC")),
        ("kind", pa.string()),
        ("workspace_id", pa.string()),
        ("app_id", pa.string()),
        ("user_id", pa.string()),
        ("user_kind", pa.string()),
        ("run_id", pa.string()),
        ("conversation_id", pa.string()),
        ("version", pa.int32()),
        ("status", pa.string()),
        ("model", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cost", pa.int64()),
        ("latency_ms", pa.float64()),
        ("ttft_ms", pa.float64()),
        ("rating", pa.string()),
        ("comment", pa.string()),
        ("error", pa.string()),
        ("detail", pa.string()),
    ]
)
assert tuple(ARROW_SCHEMA.names) == COLUMNS


def duck_sql(sql: str, params: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """``:name`` parameters → DuckDB's ``$name``, and only the parameters the SQL uses
    (DuckDB refuses unused ones)."""
    used = set(_PARAM.findall(sql))
    return _PARAM.sub(r"$\1", sql), {k: v for k, v in (params or {}).items() if k in used}


def events_table(events: Sequence[Event]) -> pa.Table:
    """Events as an Arrow table in the events table's column order."""
    columns = {name: [getattr(e, name) for e in events] for name in COLUMNS}
    return pa.table(columns, schema=ARROW_SCHEMA)


class _DuckTx(Tx):
    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self.con.execute(*duck_sql(sql, params))

    def fetch(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.con.execute(*duck_sql(sql, params)).fetchall()

    def stage(self, events: Sequence[Event]) -> None:
        self.load("stage", events_table(events), replace=True)

    def load(self, table: str, data: pa.Table, *, replace: bool = False) -> None:
        """Append an Arrow table's rows to ``table`` (after emptying it if ``replace``)."""
        if replace:
            self.con.execute(f"DELETE FROM {table}")
        self.con.register("incoming_rows", data)
        try:
            self.con.execute(f"INSERT INTO {table} SELECT * FROM incoming_rows")
        finally:
            self.con.unregister("incoming_rows")


class DuckDBStore(Store):
    kind: ClassVar[str] = "duckdb"

    def __init__(self, path: Path | str, *, threads: int | None = None):
        super().__init__()
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {}
        if threads:
            config["threads"] = threads
        self._con = duckdb.connect(self.path, config=config)
        self._cursors = threading.Lock()  # a connection object is not shared across threads
        # The writer's own connection: the staging table is private to it.
        self._writer = self._con.cursor()
        for statement in schema(rollup_keys=False):
            self._writer.execute(statement)
        self._writer.execute(
            "CREATE TEMP TABLE IF NOT EXISTS stage AS SELECT * FROM events LIMIT 0"
        )
        self._writer.execute(
            "INSERT INTO meta VALUES ('schema_version', $v) ON CONFLICT (key) DO NOTHING",
            {"v": str(SCHEMA_VERSION)},
        )

    def local_date(self, column: str, tz_param: str) -> str:
        return f"CAST(timezone(:{tz_param}, {column}) AS DATE)"

    @contextmanager
    def transaction(self) -> Iterator[_DuckTx]:
        with self.write_lock:
            self._writer.execute("BEGIN TRANSACTION")
            try:
                yield _DuckTx(self._writer)
            except BaseException:
                self._writer.execute("ROLLBACK")
                raise
            self._writer.execute("COMMIT")

    def fetch(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self._cursors:
            cursor = self._con.cursor()  # one per read: readers never wait for the writer
        try:
            return cursor.execute(*duck_sql(sql, params)).fetchall()
        finally:
            cursor.close()

    def close(self) -> None:
        self._writer.close()
        self._con.close()

    def describe(self) -> str:
        return f"duckdb ({self.path})"
