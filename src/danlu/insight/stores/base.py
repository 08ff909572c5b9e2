"""The store contract, and the tables both stores create.

The tables live in the store, not in the metadata database's migrations: the
embedded store is its own DuckDB file, and the PostgreSQL store keeps them in a
schema of their own (``insight``) so that the metadata schema stays exactly what
the migrations build. ``SCHEMA`` is plain SQL both engines accept.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from danlu.insight.events import Event

SCHEMA_VERSION = 1

_SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS meta (
        key VARCHAR PRIMARY KEY,
        value VARCHAR NOT NULL
    )""",
    # Raw events, append-only; dashboards never read them (rollups below).
    """CREATE TABLE IF NOT EXISTS events (
        ts TIMESTAMPTZ NOT NULL,
        kind VARCHAR NOT NULL,
        workspace_id VARCHAR NOT NULL,
        app_id VARCHAR NOT NULL,
        user_id VARCHAR NOT NULL,
        user_kind VARCHAR NOT NULL,
        run_id VARCHAR,
        conversation_id VARCHAR,
        version INTEGER,
        status VARCHAR,
        model VARCHAR,
        input_tokens BIGINT NOT NULL DEFAULT 0,
        output_tokens BIGINT NOT NULL DEFAULT 0,
        cost BIGINT NOT NULL DEFAULT 0,
        latency_ms DOUBLE PRECISION,
        ttft_ms DOUBLE PRECISION,
        rating VARCHAR,
        comment VARCHAR,
        error VARCHAR,
        detail VARCHAR
    )""",
    # The time zones rollups are kept for (each workspace's, and any asked for since).
    """CREATE TABLE IF NOT EXISTS timezones (
        tz VARCHAR PRIMARY KEY
    )""",
    # Per app and local day: additive counters.
    """CREATE TABLE IF NOT EXISTS app_days (
        tz VARCHAR NOT NULL,
        workspace_id VARCHAR NOT NULL,
        app_id VARCHAR NOT NULL,
        day DATE NOT NULL,
        runs BIGINT NOT NULL,
        failed BIGINT NOT NULL,
        messages BIGINT NOT NULL,
        conversations BIGINT NOT NULL,
        input_tokens BIGINT NOT NULL,
        output_tokens BIGINT NOT NULL,
        cost BIGINT NOT NULL
        {key}, PRIMARY KEY (tz, app_id, day)
    )""",
    # Per app (and, with app_id '', per workspace), local day and end user: who was active.
    # first_day is the user's first active day in that scope and prev_day the active day
    # before this one, so DAU/WAU/MAU, churn and cohorts are counts over one scan.
    """CREATE TABLE IF NOT EXISTS user_days (
        tz VARCHAR NOT NULL,
        workspace_id VARCHAR NOT NULL,
        app_id VARCHAR NOT NULL,
        day DATE NOT NULL,
        user_id VARCHAR NOT NULL,
        runs BIGINT NOT NULL,
        cost BIGINT NOT NULL,
        first_day DATE,
        prev_day DATE
        {key}, PRIMARY KEY (tz, workspace_id, app_id, day, user_id)
    )""",
    # Per app, local day and conversation: sessions, messages and cost per conversation.
    """CREATE TABLE IF NOT EXISTS conversation_days (
        tz VARCHAR NOT NULL,
        workspace_id VARCHAR NOT NULL,
        app_id VARCHAR NOT NULL,
        day DATE NOT NULL,
        conversation_id VARCHAR NOT NULL,
        messages BIGINT NOT NULL,
        cost BIGINT NOT NULL,
        prev_day DATE
        {key}, PRIMARY KEY (tz, app_id, day, conversation_id)
    )""",
    # Per app, local day and metric: log-spaced latency histograms (percentiles).
    """CREATE TABLE IF NOT EXISTS latency_days (
        tz VARCHAR NOT NULL,
        workspace_id VARCHAR NOT NULL,
        app_id VARCHAR NOT NULL,
        day DATE NOT NULL,
        metric VARCHAR NOT NULL,
        bucket INTEGER NOT NULL,
        n BIGINT NOT NULL
        {key}, PRIMARY KEY (tz, app_id, day, metric, bucket)
    )""",
    # Per app and end user: first and last active local day (new vs returning, cohorts).
    """CREATE TABLE IF NOT EXISTS app_users (
        tz VARCHAR NOT NULL,
        workspace_id VARCHAR NOT NULL,
        app_id VARCHAR NOT NULL,
        user_id VARCHAR NOT NULL,
        user_kind VARCHAR NOT NULL,
        first_day DATE NOT NULL,
        last_day DATE NOT NULL
        {key}, PRIMARY KEY (tz, app_id, user_id)
    )""",
    # The latest feedback on each run (a like can become a dislike).
    """CREATE TABLE IF NOT EXISTS feedback (
        run_id VARCHAR PRIMARY KEY,
        workspace_id VARCHAR NOT NULL,
        app_id VARCHAR NOT NULL,
        user_id VARCHAR NOT NULL,
        rating VARCHAR,
        comment VARCHAR,
        ts TIMESTAMPTZ NOT NULL
    )""",
)


def schema(*, rollup_keys: bool) -> list[str]:
    """The DDL. ``rollup_keys=False`` leaves the rollup tables without primary keys: DuckDB
    keeps an index for each key, which makes bulk builds several times slower, and the
    rollups are merged without ``ON CONFLICT`` (``rollups.add``), so it needs none."""
    return [statement.replace("{key}", "" if rollup_keys else "-- ") for statement in _SCHEMA]


class Tx(ABC):
    """One transaction on a store: SQL with ``:name`` parameters."""

    @abstractmethod
    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement."""

    @abstractmethod
    def fetch(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a query; all its rows."""

    @abstractmethod
    def stage(self, events: Sequence[Event]) -> None:
        """Load ``events`` into the ``stage`` table (emptied first) for rollups to read."""


class Store(ABC):
    """Events and rollups in one analytical database."""

    kind: ClassVar[str]

    def __init__(self) -> None:
        # Writes (batches, building a time zone) go one at a time in this process; the
        # PostgreSQL store also takes a database lock, for other processes.
        self.write_lock = threading.Lock()

    @abstractmethod
    def local_date(self, column: str, tz_param: str) -> str:
        """SQL for the local calendar date of timestamp ``column`` in time zone ``:tz_param``."""

    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A read-write transaction (committed when the block ends without error)."""

    @abstractmethod
    def fetch(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """A read-only query."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def describe(self) -> str:
        """Where the store is, for logs and ``danlu doctor`` (no secrets)."""
        return self.kind
