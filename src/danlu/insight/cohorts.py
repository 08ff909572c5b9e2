"""Retention cohort tables (by day or by week) and the end users behind the numbers.

A cohort is the end users whose first run ever (in the app, or in any app of the
workspace) fell on one day, or in one Monday-to-Sunday week. Observation stops at
the window's last day: a cell that lies after it is empty (``None``), not zero.
"""

# ruff: noqa: S608 - SQL is assembled from constant fragments (columns, tables, the store's
# date expression); every value is a bound parameter.

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Literal

from danlu.core.errors import InvalidRequest
from danlu.insight.formulas import FORMULAS
from danlu.insight.metrics import (
    _day,
    _int,
    _params,
    active_where,
    first_days_sql,
    ratio,
)
from danlu.insight.stores.base import Store
from danlu.insight.window import Scope, Window

Grain = Literal["day", "week"]
MAX_PERIODS = {"day": 90, "week": 52}
EPOCH_MONDAY = date(1970, 1, 5)


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _week(column: str) -> str:
    """SQL: weeks (Monday-based) since 1970-01-05, the same integer on both engines."""
    return f"CAST(FLOOR(({column} - DATE '1970-01-05') / 7.0) AS INTEGER)"


def _week_start(index: int) -> date:
    return EPOCH_MONDAY + timedelta(days=7 * index)


def retention(
    store: Store, scope: Scope, window: Window, grain: Grain = "day", periods: int | None = None
) -> dict[str, Any]:
    """Classic and unbounded retention for each cohort in the window, periods 0 … N."""
    if grain not in MAX_PERIODS:
        raise InvalidRequest("grain is day or week", param="grain")
    periods = (30 if grain == "day" else 8) if periods is None else periods
    if not 1 <= periods <= MAX_PERIODS[grain]:
        raise InvalidRequest(
            f"ask for 1 to {MAX_PERIODS[grain]} {grain}s of retention", param="days"
        )
    first = window.start if grain == "day" else monday(window.start)
    params = _params(scope, window, first=first)
    rows_in = (
        f"FROM user_days WHERE {active_where(scope)} "
        "AND first_day BETWEEN :first AND :end AND day <= :end"
    )
    if grain == "day":
        classic = store.fetch(
            f"""SELECT first_day, day - first_day, COUNT(*) {rows_in}
                GROUP BY first_day, day - first_day""",
            params,
        )
        spans = store.fetch(
            f"""SELECT first_day, span, COUNT(*) FROM (
                    SELECT user_id, first_day, MAX(day) - first_day AS span {rows_in}
                    GROUP BY user_id, first_day) AS s
                GROUP BY first_day, span""",
            params,
        )
    else:
        week_of_first, week_of_day = _week("first_day"), _week("day")
        classic = store.fetch(
            f"""SELECT c, n, COUNT(*) FROM (
                    SELECT DISTINCT user_id, {week_of_first} AS c,
                        {week_of_day} - {week_of_first} AS n {rows_in}
                ) AS w GROUP BY c, n""",
            params,
        )
        spans = store.fetch(
            f"""SELECT c, span, COUNT(*) FROM (
                    SELECT user_id, {week_of_first} AS c,
                        MAX({week_of_day}) - {week_of_first} AS span {rows_in}
                    GROUP BY user_id, {week_of_first}) AS s
                GROUP BY c, span""",
            params,
        )
    sizes: dict[Any, int] = {}
    active: dict[tuple[Any, int], int] = {}
    for c, n, count in classic:
        key = _day(c) if grain == "day" else int(c)
        active[(key, int(n))] = _int(count)
        if int(n) == 0:
            sizes[key] = _int(count)
    last_seen: dict[Any, dict[int, int]] = {}
    for c, span, count in spans:
        key = _day(c) if grain == "day" else int(c)
        last_seen.setdefault(key, {})[int(span)] = _int(count)
    if grain == "day":
        cohorts: list[Any] = window.each_day()
    else:
        weeks = (monday(window.end) - first).days // 7 + 1
        start_index = (first - EPOCH_MONDAY).days // 7
        cohorts = [start_index + i for i in range(weeks)]
    rows = []
    for cohort in cohorts:
        size = sizes.get(cohort, 0)
        start = cohort if grain == "day" else _week_start(cohort)
        classic_users: list[int | None] = []
        unbounded_users: list[int | None] = []
        spans_of = last_seen.get(cohort, {})
        for n in range(periods + 1):
            period_start = start + timedelta(days=n if grain == "day" else 7 * n)
            if period_start > window.end:
                classic_users.append(None)
                unbounded_users.append(None)
                continue
            classic_users.append(active.get((cohort, n), 0))
            unbounded_users.append(sum(k for span, k in spans_of.items() if span >= n))
        rows.append(
            {
                "cohort": str(start),
                "size": size,
                "classic": [ratio(u, size) if u is not None else None for u in classic_users],
                "unbounded": [ratio(u, size) if u is not None else None for u in unbounded_users],
                "classic_users": classic_users,
                "unbounded_users": unbounded_users,
            }
        )
    suffix = "" if grain == "day" else "_week"
    return {
        "object": "insight.retention",
        "grain": grain,
        "periods": periods,
        "tz": window.tz,
        "from": str(window.start),
        "to": str(window.end),
        "formula": {
            "classic": FORMULAS[f"retention_classic{suffix}"].formula,
            "unbounded": FORMULAS[f"retention_unbounded{suffix}"].formula,
        },
        "average": _weighted(rows, periods),
        "cohorts": rows,
    }


def _weighted(rows: list[dict[str, Any]], periods: int) -> dict[str, list[float | None]]:
    """Each period's retention over all cohorts that can show it (users-weighted)."""
    averages: dict[str, list[float | None]] = {"classic": [], "unbounded": []}
    for kind in ("classic", "unbounded"):
        for n in range(periods + 1):
            seen = [r for r in rows if r[f"{kind}_users"][n] is not None]
            retained = sum(r[f"{kind}_users"][n] for r in seen)
            averages[kind].append(ratio(retained, sum(r["size"] for r in seen)))
    return averages


def users(
    store: Store, scope: Scope, window: Window, *, limit: int = 50, offset: int = 0
) -> dict[str, Any]:
    """Who was active in the window: new vs returning, known vs anonymous, and a page of them."""
    params = _params(scope, window, limit=limit, offset=offset)
    active = f"""SELECT user_id, SUM(runs) AS runs, SUM(cost) AS cost, COUNT(*) AS days
                 FROM user_days WHERE {active_where(scope)} AND day BETWEEN :start AND :end
                 GROUP BY user_id"""
    summary = store.fetch(
        f"""SELECT COUNT(*),
                   SUM(CASE WHEN f.first_day >= :start THEN 1 ELSE 0 END),
                   SUM(CASE WHEN f.user_kind = 'known' THEN 1 ELSE 0 END)
            FROM ({active}) AS a JOIN ({first_days_sql(scope)}) AS f ON f.user_id = a.user_id""",
        params,
    )[0]
    total, new, known = (_int(v) for v in summary)
    page = store.fetch(
        f"""SELECT a.user_id, f.user_kind, f.first_day, f.last_day, a.runs, a.cost, a.days
            FROM ({active}) AS a JOIN ({first_days_sql(scope)}) AS f ON f.user_id = a.user_id
            ORDER BY a.runs DESC, a.user_id LIMIT :limit OFFSET :offset""",
        params,
    )
    return {
        "object": "insight.users",
        "tz": window.tz,
        "from": str(window.start),
        "to": str(window.end),
        "summary": {
            "active_users": total,
            "new_users": new,
            "returning_users": total - new,
            "known_users": known,
            "anonymous_users": total - known,
        },
        "formula": {
            "new_users": FORMULAS["new_users"].formula,
            "returning_users": FORMULAS["returning_users"].formula,
            "known_users": "active users identified by the `user` the caller passed",
            "anonymous_users": "active users without a `user`: each conversation (or the API "
            "key, outside conversations) stands for one visitor",
        },
        "data": [
            {
                "user": str(user_id),
                "kind": str(kind),
                "first_seen": str(_day(first_day)),
                "last_seen": str(_day(last_day)),
                "runs": _int(runs),
                "cost": _int(cost),
                "active_days": _int(days),
            }
            for user_id, kind, first_day, last_day, runs, cost, days in page
        ],
        "limit": limit,
        "offset": offset,
    }


__all__ = ["MAX_PERIODS", "monday", "retention", "users"]
