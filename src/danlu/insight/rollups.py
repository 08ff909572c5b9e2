"""Daily rollups, kept up to date batch by batch, so dashboards never scan raw events.

Each batch of events is staged and, in the same transaction that appends it to
``events``, added to the rollups of every tracked time zone:

- ``app_days``: runs, failures, messages, new conversations, tokens and cost per app
  and local day (additive);
- ``user_days``: one row per app, local day and end user who ran the app that day, and
  one per workspace (``app_id = ''``), each with the user's first active day in that
  scope and the active day before this one (``prev_day``), so distinct users over any
  period are plain counts (``metrics.py``);
- ``conversation_days``: one row per app, local day and conversation, with ``prev_day``;
- ``latency_days``: log-spaced histograms of run latency and time to first token;
- ``app_users``: each end user's first and last active day per app.

Every rollup is keyed by time zone: a local day depends on it. The workspace's
zone is tracked from the start; a zone asked for later is built once from the
raw events (the only time they are scanned) and then kept like the others.
All counters are sums (first and last days are a min and a max), so adding a
batch merges into the rows it touches, and a late or out-of-order event lands in
the right day.
"""

# ruff: noqa: S608 - SQL is assembled from constant fragments (columns, tables, the store's
# date expression); every value is a bound parameter.

from __future__ import annotations

import math
from dataclasses import dataclass

from danlu.insight.stores.base import Store, Tx

# Latency histograms: bucket k holds values in (BASE^(k-1), BASE^k] ms; k = 0 holds <= 1 ms.
# A percentile read off the histogram is the bucket's upper edge: at most 2% above the
# exact value, never below it.
BUCKET_BASE = 1.02


def bucket_of(ms: float) -> int:
    """The histogram bucket of a latency (the SQL below computes the same)."""
    return math.ceil(math.log(max(ms, 1.0)) / math.log(BUCKET_BASE))


def bucket_upper(bucket: int) -> float:
    """The largest latency (ms) in ``bucket``: what a percentile reports."""
    return float(BUCKET_BASE**bucket)


def _bucket_sql(column: str) -> str:
    return f"CAST(CEIL(LN(GREATEST({column}, 1.0)) / LN({BUCKET_BASE})) AS INTEGER)"


@dataclass(frozen=True)
class Chain:
    """Per entity (a user, a conversation) of a rollup: ``prev_day``, its previous active day,
    and optionally ``first_day``, its first. Kept by recomputing them for the entities a
    batch touched (``affected``, joined on ``join``)."""

    partition: tuple[str, ...]
    affected: str
    join: tuple[str, ...]
    first: bool = False


@dataclass(frozen=True)
class Rollup:
    """One rollup table: its key (after ``tz``), its values with how two rows merge, the
    aggregate that computes its rows from a table of events ``e`` (with a ``day`` column),
    and its chain columns, if any."""

    table: str
    keys: tuple[str, ...]
    values: tuple[tuple[str, str], ...]  # (column, "sum" | "min" | "max")
    aggregate: str
    chain: Chain | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return ("tz", *self.keys, *(name for name, _ in self.values))


ROLLUPS: tuple[Rollup, ...] = (
    Rollup(
        "app_days",
        ("workspace_id", "app_id", "day"),
        (
            ("runs", "sum"),
            ("failed", "sum"),
            ("messages", "sum"),
            ("conversations", "sum"),
            ("input_tokens", "sum"),
            ("output_tokens", "sum"),
            ("cost", "sum"),
        ),
        """SELECT {tz}, workspace_id, app_id, day,
               SUM(CASE WHEN kind = 'run' THEN 1 ELSE 0 END),
               SUM(CASE WHEN kind = 'run' AND status = 'failed' THEN 1 ELSE 0 END),
               SUM(CASE WHEN kind = 'message' THEN 1 ELSE 0 END),
               SUM(CASE WHEN kind = 'conversation' THEN 1 ELSE 0 END),
               SUM(CASE WHEN kind = 'run' THEN input_tokens ELSE 0 END),
               SUM(CASE WHEN kind = 'run' THEN output_tokens ELSE 0 END),
               SUM(CASE WHEN kind = 'run' THEN cost ELSE 0 END)
           FROM {e} WHERE kind IN ('run', 'message', 'conversation')
           GROUP BY workspace_id, app_id, day""",
    ),
    Rollup(
        "user_days",
        ("workspace_id", "app_id", "day", "user_id"),
        (("runs", "sum"), ("cost", "sum")),
        # Each app's rows, and the workspace's (app_id ''): a user counts once per workspace.
        """SELECT {tz}, workspace_id, app_id, day, user_id, COUNT(*), SUM(cost)
           FROM {e} WHERE kind = 'run'
           GROUP BY workspace_id, app_id, day, user_id
           UNION ALL
           SELECT {tz}, workspace_id, '', day, user_id, COUNT(*), SUM(cost)
           FROM {e} WHERE kind = 'run'
           GROUP BY workspace_id, day, user_id""",
        Chain(
            ("workspace_id", "app_id", "user_id"),
            "SELECT DISTINCT workspace_id, user_id FROM stage WHERE kind = 'run'",
            ("workspace_id", "user_id"),
            first=True,
        ),
    ),
    Rollup(
        "conversation_days",
        ("workspace_id", "app_id", "day", "conversation_id"),
        (("messages", "sum"), ("cost", "sum")),
        """SELECT {tz}, workspace_id, app_id, day, conversation_id,
               SUM(CASE WHEN kind = 'message' THEN 1 ELSE 0 END),
               SUM(CASE WHEN kind = 'run' THEN cost ELSE 0 END)
           FROM {e} WHERE kind IN ('run', 'message') AND conversation_id IS NOT NULL
           GROUP BY workspace_id, app_id, day, conversation_id""",
        Chain(
            ("app_id", "conversation_id"),
            "SELECT DISTINCT app_id, conversation_id FROM stage "
            "WHERE kind IN ('run', 'message') AND conversation_id IS NOT NULL",
            ("app_id", "conversation_id"),
        ),
    ),
    Rollup(
        "latency_days",
        ("workspace_id", "app_id", "day", "metric", "bucket"),
        (("n", "sum"),),
        f"""SELECT {{tz}}, workspace_id, app_id, day, metric, bucket, COUNT(*)
           FROM (
               SELECT workspace_id, app_id, day, 'latency' AS metric,
                   {_bucket_sql("latency_ms")} AS bucket
               FROM {{e}}
               WHERE kind = 'run' AND status = 'succeeded' AND latency_ms IS NOT NULL
               UNION ALL
               SELECT workspace_id, app_id, day, 'ttft' AS metric,
                   {_bucket_sql("ttft_ms")} AS bucket
               FROM {{e}}
               WHERE kind = 'run' AND status = 'succeeded' AND ttft_ms IS NOT NULL
           ) AS b
           GROUP BY workspace_id, app_id, day, metric, bucket""",
    ),
    Rollup(
        "app_users",
        ("workspace_id", "app_id", "user_id"),
        (("user_kind", "max"), ("first_day", "min"), ("last_day", "max")),
        """SELECT {tz}, workspace_id, app_id, user_id, MAX(user_kind), MIN(day), MAX(day)
           FROM {e} WHERE kind = 'run'
           GROUP BY workspace_id, app_id, user_id""",
    ),
)
_MERGE = {
    "sum": "{t}.{c} + d.{c}",
    "min": "LEAST({t}.{c}, d.{c})",
    "max": "GREATEST({t}.{c}, d.{c})",
}


def _chain_columns(chain: Chain | None) -> tuple[str, ...]:
    if chain is None:
        return ()
    return ("first_day", "prev_day") if chain.first else ("prev_day",)


def _fresh(rollup: Rollup, delta: str) -> str:
    """Insert a whole zone's rows, chain columns computed by window functions."""
    columns = ", ".join(rollup.columns)
    if rollup.chain is None:
        return f"INSERT INTO {rollup.table} ({columns}) {delta}"
    part = ", ".join(rollup.chain.partition)
    chained = ["LAG(day) OVER (PARTITION BY " + part + " ORDER BY day)"]
    if rollup.chain.first:
        chained.insert(0, f"MIN(day) OVER (PARTITION BY {part})")
    every = ", ".join((*rollup.columns, *_chain_columns(rollup.chain)))
    return (
        f"INSERT INTO {rollup.table} ({every}) SELECT {columns}, {', '.join(chained)} "
        f"FROM ({delta}) AS d0 ({columns})"
    )


def _chain_update(rollup: Rollup) -> str:
    """Recompute the chain columns of the entities the staged batch touched."""
    assert rollup.chain is not None
    t, chain = rollup.table, rollup.chain
    part = ", ".join(f"u.{c}" for c in chain.partition)
    first = f", MIN(u.day) OVER (PARTITION BY {part}) AS first" if chain.first else ""
    sets = "prev_day = p.prev" + (", first_day = p.first" if chain.first else "")
    changed = f"{t}.prev_day IS DISTINCT FROM p.prev" + (
        f" OR {t}.first_day IS DISTINCT FROM p.first" if chain.first else ""
    )
    join = " AND ".join(f"u.{c} = s.{c}" for c in chain.join)
    match = " AND ".join(f"{t}.{c} = p.{c}" for c in (*chain.partition, "day"))
    return f"""UPDATE {t} SET {sets} FROM (
            SELECT {part}, u.day,
                LAG(u.day) OVER (PARTITION BY {part} ORDER BY u.day) AS prev{first}
            FROM {t} AS u JOIN ({chain.affected}) AS s ON {join}
            WHERE u.tz = CAST(:tz AS VARCHAR)) AS p
        WHERE {t}.tz = CAST(:tz AS VARCHAR) AND {match} AND ({changed})"""


def _statements(store: Store, source: str, *, fresh: bool) -> list[str]:
    """SQL adding the events of ``source`` to one time zone's rollups.

    ``fresh``: the zone has no rollup rows yet, so rows are inserted as they are.
    Otherwise each table is merged: matching rows are updated (counters added, first
    days kept the earliest), then the new keys inserted, then the chain columns of the
    users and conversations the batch touched recomputed. Writers take turns
    (``Store.transaction``), so nothing comes between these statements.
    """
    day = store.local_date("ts", "tz")
    e = f"(SELECT *, {day} AS day FROM {source}) AS e"
    statements = []
    for rollup in ROLLUPS:
        delta = rollup.aggregate.format(tz="CAST(:tz AS VARCHAR)", e=e)
        if fresh:
            statements.append(_fresh(rollup, delta))
            continue
        t = rollup.table
        columns = ", ".join(rollup.columns)
        named = f"SELECT * FROM ({delta}) AS d0 ({columns})"
        match = " AND ".join(f"{t}.{k} = d.{k}" for k in ("tz", *rollup.keys))
        merged = ", ".join(f"{c} = " + _MERGE[op].format(t=t, c=c) for c, op in rollup.values)
        statements.append(f"UPDATE {t} SET {merged} FROM ({named}) AS d WHERE {match}")
        statements.append(
            f"INSERT INTO {t} ({columns}) SELECT {columns} FROM ({named}) AS d "
            f"WHERE NOT EXISTS (SELECT 1 FROM {t} WHERE {match})"
        )
        if rollup.chain is not None:
            statements.append(_chain_update(rollup))
    return statements


def add(tx: Tx, store: Store, source: str, tz: str, *, fresh: bool = False) -> None:
    """Add the events of table ``source`` to time zone ``tz``'s rollups."""
    for statement in _statements(store, source, fresh=fresh):
        tx.execute(statement, {"tz": tz})


def tracked(tx: Tx) -> list[str]:
    """The time zones whose rollups are kept."""
    return [str(row[0]) for row in tx.fetch("SELECT tz FROM timezones ORDER BY tz")]


def is_tracked(store: Store, tz: str) -> bool:
    """Whether ``tz``'s rollups are kept (and so ready to query)."""
    return bool(store.fetch("SELECT 1 FROM timezones WHERE tz = :tz", {"tz": tz}))


def track(store: Store, tz: str) -> bool:
    """Keep rollups for ``tz`` from now on, building them from the raw events once.

    Returns whether it had to build them. Runs as one write, so no batch is added twice
    or missed while the zone is built.
    """
    if is_tracked(store, tz):
        return False
    with store.transaction() as tx:
        if tx.fetch("SELECT 1 FROM timezones WHERE tz = :tz", {"tz": tz}):
            return False
        add(tx, store, "events", tz, fresh=True)
        tx.execute("INSERT INTO timezones (tz) VALUES (:tz)", {"tz": tz})
    return True


__all__ = ["BUCKET_BASE", "add", "bucket_of", "bucket_upper", "is_tracked", "track", "tracked"]
