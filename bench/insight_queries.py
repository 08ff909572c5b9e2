"""Insight at scale: a retention cohort table and a DAU/MAU series over 10 million events.

What it measures
    Synthetic traffic for one published app: ``--users`` end users (200,000) arriving over
    ``--days`` days (120) with a decaying chance to come back each day, and ``--events``
    events (10,000,000) spread over their active days (every active day has at least one
    run). Events are generated with numpy, loaded in bulk (Arrow) into the embedded DuckDB
    store, then the daily rollups are built from them once (what the recorder otherwise
    keeps up to date batch by batch). Then, through the same functions the HTTP API calls:

    - ``retention``: the 30-day retention cohort table by day (cohorts of the last 30 days,
      periods 0-30, classic and unbounded);
    - ``retention (weeks)``: the same by week (8 periods);
    - ``DAU/MAU series``: DAU, WAU, MAU and stickiness for each of the last 90 days;
    - ``overview``: every headline number of the last 30 days;

    each ``--repeat`` times (7), reporting the median and the slowest. Goal: every median
    under 1 second (the issue's goal for the first two).

    ``--store postgresql+psycopg://...`` runs the same against the PostgreSQL store
    (loading is slower there; use fewer ``--events``).

Run: ``python bench/insight_queries.py [--events 10000000] [--users 200000] [--days 120]
[--repeat 7] [--store duckdb|URL] [--keep PATH]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from danlu.insight import cohorts, metrics, rollups
from danlu.insight.stores.base import Store
from danlu.insight.stores.duckdb_store import ARROW_SCHEMA, DuckDBStore
from danlu.insight.window import Scope, Window

TZ = "Asia/Shanghai"
END = date(2026, 3, 31)  # the last local day of the synthetic traffic
APP = "app_bench"
WORKSPACE = "ws_bench"
GOAL_S = 1.0


def user_days(users: int, days: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(user index, day offset) of every active day: growth in arrivals, decaying returns."""
    weights = 1.0 + np.arange(days) / (days / 2)
    first = rng.choice(days, size=users, p=weights / weights.sum())
    engagement = rng.beta(2.0, 5.0, size=users).astype(np.float32)
    who: list[np.ndarray] = []
    when: list[np.ndarray] = []
    offsets = np.arange(days, dtype=np.float32)
    for lo in range(0, users, 20_000):
        hi = min(lo + 20_000, users)
        since = offsets[None, :] - first[lo:hi, None]
        chance = np.where(
            since >= 1, 0.9 * engagement[lo:hi, None] * (np.maximum(since, 0) + 1) ** -0.35, 0.0
        )
        active = (since == 0) | (rng.random(since.shape, dtype=np.float32) < chance)
        u, d = np.nonzero(active)
        who.append(u + lo)
        when.append(d)
    return np.concatenate(who), np.concatenate(when)


def event_batches(
    users: int, days: int, events: int, rng: np.random.Generator, chunk: int = 1_000_000
) -> Iterator[pa.Table]:
    """The events, as Arrow tables of ``chunk`` rows in the events table's schema."""
    who, when = user_days(users, days, rng)
    if len(who) > events:
        raise SystemExit(f"{len(who):,} active user-days need more than {events:,} events")
    # One run per active day, the rest of the events on random active days.
    extra = rng.integers(0, len(who), size=events - len(who))
    index = np.concatenate([np.arange(len(who)), extra])
    rng.shuffle(index)
    first_day = END - timedelta(days=days - 1)
    # Local midnight in Asia/Shanghai (UTC+8, no DST) of each day, as UTC microseconds.
    midnight = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    base_us = int(midnight.timestamp() * 1_000_000) - 8 * 3600 * 1_000_000
    user_names = pa.array([f"user-{i:06d}" for i in range(users)])
    kinds = pa.array(["run", "message", "conversation", "error"])
    for lo in range(0, events, chunk):
        part = index[lo : lo + chunk]
        n = len(part)
        is_first = part < len(who)
        kind = np.where(is_first, 0, rng.choice(4, size=n, p=[0.5, 0.4, 0.08, 0.02]))
        ts = (
            base_us
            + when[part].astype(np.int64) * 86_400_000_000
            + rng.integers(0, 86_400_000_000, size=n)
        )
        is_run = kind == 0
        failed = is_run & (rng.random(n) < 0.02)
        status = np.where(is_run, np.where(failed, "failed", "succeeded"), None)
        latency = np.where(is_run, rng.lognormal(7.0, 0.6, size=n), np.nan)
        ttft = np.where(is_run & ~failed, latency * 0.2, np.nan)
        tokens_in = np.where(is_run, rng.integers(50, 2000, size=n), 0)
        tokens_out = np.where(is_run, rng.integers(10, 500, size=n), 0)
        cost = (tokens_in * 800_000 + tokens_out * 2_000_000 + 999_999) // 1_000_000
        conversation = np.where(kind != 3, who[part] * 8 + rng.integers(0, 8, size=n), -1)
        columns: dict[str, Any] = {
            "ts": pa.array(ts, type=pa.timestamp("us", tz="UTC")),
            "kind": pa.DictionaryArray.from_arrays(pa.array(kind, pa.int32()), kinds),
            "workspace_id": pa.array([WORKSPACE] * n),
            "app_id": pa.array([APP] * n),
            "user_id": pa.DictionaryArray.from_arrays(pa.array(who[part], pa.int32()), user_names),
            "user_kind": pa.array(["known"] * n),
            "run_id": pa.nulls(n, pa.string()),
            "conversation_id": pa.array(
                [f"conv-{c}" if c >= 0 else None for c in conversation.tolist()]
            ),
            "version": pa.array(np.ones(n, dtype=np.int32)),
            "status": pa.array(status.tolist(), pa.string()),
            "model": pa.array(np.where(is_run, "qwen-plus", None).tolist(), pa.string()),
            "input_tokens": pa.array(tokens_in.astype(np.int64)),
            "output_tokens": pa.array(tokens_out.astype(np.int64)),
            "cost": pa.array(np.where(is_run, cost, 0).astype(np.int64)),
            "latency_ms": pa.array(latency, from_pandas=True),
            "ttft_ms": pa.array(ttft, from_pandas=True),
            "rating": pa.nulls(n, pa.string()),
            "comment": pa.nulls(n, pa.string()),
            "error": pa.nulls(n, pa.string()),
            "detail": pa.nulls(n, pa.string()),
        }
        columns["kind"] = columns["kind"].cast(pa.string())
        columns["user_id"] = columns["user_id"].cast(pa.string())
        yield pa.table(columns).cast(ARROW_SCHEMA)


def load(store: Store, batches: Iterator[pa.Table]) -> int:
    loaded = 0
    for table in batches:
        if isinstance(store, DuckDBStore):
            with store.transaction() as tx:
                tx.load("events", table)
        else:
            _copy_postgres(store, table)
        loaded += table.num_rows
        print(f"  loaded {loaded:,} events", flush=True)
    return loaded


def _copy_postgres(store: Store, table: pa.Table) -> None:
    from danlu.insight.stores.postgres_store import PostgresStore

    assert isinstance(store, PostgresStore)
    names = table.column_names
    with store.engine.begin() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY insight.events ({', '.join(names)}) FROM STDIN") as copy,
        ):
            for row in zip(*(table.column(c).to_pylist() for c in names), strict=True):
                copy.write_row(row)


def analyze(store: Store) -> None:
    """PostgreSQL: statistics and the visibility map after a bulk load, as autovacuum would
    soon make them (without them the planner guesses and index-only scans are off)."""
    from danlu.insight.stores.postgres_store import PostgresStore

    if not isinstance(store, PostgresStore):
        return
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in ("app_days", "user_days", "conversation_days", "latency_days", "app_users"):
            connection.exec_driver_sql(f"VACUUM ANALYZE insight.{table}")


def timed(run: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    seconds = []
    result = None
    for _ in range(repeat):
        began = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - began)
    return statistics.median(seconds), max(seconds), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--store", default="duckdb", help="duckdb, or a PostgreSQL URL")
    parser.add_argument("--keep", type=Path, help="write the DuckDB file here and keep it")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        store: Store
        if args.store == "duckdb":
            path = args.keep or Path(tmp) / "insight.duckdb"
            store = DuckDBStore(path)
        else:
            from danlu.insight.stores.postgres_store import PostgresStore

            store = PostgresStore(args.store)
        print(f"store: {store.describe()}")
        began = time.perf_counter()
        events = load(store, event_batches(args.users, args.days, args.events, rng))
        load_s = time.perf_counter() - began
        began = time.perf_counter()
        rollups.track(store, TZ)
        analyze(store)
        rollup_s = time.perf_counter() - began
        counts = store.fetch(
            "SELECT (SELECT COUNT(*) FROM user_days), (SELECT COUNT(*) FROM app_users)"
        )[0]
        print(
            f"{events:,} events loaded in {load_s:.1f} s; rollups built in {rollup_s:.1f} s "
            f"({counts[0]:,} user-day rows, {counts[1]:,} users)\n"
        )
        app = Scope("app", APP)
        workspace = Scope("workspace", WORKSPACE)
        last30 = Window(END - timedelta(days=29), END, TZ)
        last90 = Window(END - timedelta(days=89), END, TZ)
        last8w = Window(END - timedelta(days=55), END, TZ)
        cases: list[tuple[str, Callable[[], Any]]] = [
            (
                "retention, 30 daily cohorts x 31 days",
                lambda: cohorts.retention(store, app, last30, "day", 30),
            ),
            (
                "retention, 8 weekly cohorts x 9 weeks",
                lambda: cohorts.retention(store, app, last8w, "week", 8),
            ),
            (
                "DAU/WAU/MAU + stickiness, 90 days",
                lambda: metrics.series(store, app, last90, "stickiness"),
            ),
            ("overview, 30 days", lambda: metrics.overview(store, app, last30)),
            (
                "retention (workspace), 30 days",
                lambda: cohorts.retention(store, workspace, last30, "day", 30),
            ),
            (
                "DAU/MAU (workspace), 90 days",
                lambda: metrics.series(store, workspace, last90, "stickiness"),
            ),
        ]
        print(f"| query | median (s) | slowest (s) | goal {GOAL_S:.0f} s |")
        print("|---|---:|---:|---|")
        results: dict[str, Any] = {}
        for name, run in cases:
            median, slowest, result = timed(run, args.repeat)
            results[name] = result
            verdict = "ok" if median < GOAL_S else "MISSED"
            print(f"| {name} | {median:.3f} | {slowest:.3f} | {verdict} |", flush=True)
        table = results["retention, 30 daily cohorts x 31 days"]
        first = table["cohorts"][0]
        stick = results["DAU/WAU/MAU + stickiness, 90 days"]["data"][-1]
        print(
            f"\nsanity: cohort {first['cohort']} has {first['size']:,} users, day-1 retention "
            f"{first['classic'][1]}, day-7 {first['classic'][7]}; on {stick['day']} DAU "
            f"{stick['dau']:,}, MAU {stick['mau']:,}, stickiness {stick['value']}"
        )
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, {date.today()}"
        )
        store.close()


if __name__ == "__main__":
    main()
