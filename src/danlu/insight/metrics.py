"""Metrics off the rollups: the overview and the daily series, each with its formula.

Every query reads the rollup tables only (``rollups.py``), filtered by time zone
and scope, so a dashboard costs the same whatever the number of raw events. The
formulas are in ``formulas.py``; the tests compute each one by hand.
"""

# ruff: noqa: S608 - SQL is assembled from constant fragments (columns, tables, the store's
# date expression); every value is a bound parameter.

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from danlu.core.errors import InvalidRequest
from danlu.insight.formulas import FORMULAS
from danlu.insight.rollups import bucket_upper
from danlu.insight.stores.base import Store
from danlu.insight.window import Scope, Window

ALIASES = {"errors": "error_rate", "users": "dau", "active_users": "dau"}


def ratio(numerator: float, denominator: float, digits: int = 4) -> float | None:
    """``numerator ÷ denominator`` rounded, or None when there is nothing to divide by."""
    return round(numerator / denominator, digits) if denominator else None


def metric(name: str, value: Any, **inputs: Any) -> dict[str, Any]:
    """A number with its formula (and the inputs it came from, to check it by hand)."""
    found = FORMULAS[name]
    shown: dict[str, Any] = {"value": value, "formula": found.formula, "unit": found.unit}
    if inputs:
        shown["inputs"] = inputs
    return shown


def percentile(histogram: Mapping[int, int], p: float) -> float | None:
    """Nearest-rank percentile read off a latency histogram: its bucket's upper edge."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(p * total))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return round(bucket_upper(bucket), 1)
    return round(bucket_upper(max(histogram)), 1)  # pragma: no cover - rank <= total


def _where(scope: Scope) -> str:
    """Rows of the per-app rollups in scope (a workspace: all its apps)."""
    return f"tz = :tz AND {scope.column} = :scope"


def active_where(scope: Scope) -> str:
    """``user_days`` rows in scope: an app's own, or the workspace's (``app_id = ''``)."""
    if scope.kind == "app":
        return "tz = :tz AND app_id = :scope"
    return "tz = :tz AND workspace_id = :scope AND app_id = ''"


def _params(scope: Scope, window: Window, **extra: Any) -> dict[str, Any]:
    return {"tz": window.tz, "scope": scope.id, "start": window.start, "end": window.end, **extra}


def _int(value: Any) -> int:
    return int(value or 0)


def first_days_sql(scope: Scope) -> str:
    """Each end user's kind and first and last active day in the scope."""
    return (
        "SELECT user_id, MIN(first_day) AS first_day, MAX(last_day) AS last_day, "
        f"MAX(user_kind) AS user_kind FROM app_users WHERE {_where(scope)} GROUP BY user_id"
    )


def _first_in(since: str) -> str:
    """SQL: this row is the user's first active day on or after ``:since`` (so counting
    such rows in a period counts distinct users, without a distinct count)."""
    return f"(prev_day IS NULL OR prev_day < :{since})"


def feedback_counts(store: Store, scope: Scope, window: Window) -> tuple[int, int, int]:
    """(likes, dislikes, comments) whose latest rating fell in the window."""
    day = store.local_date("ts", "tz")
    row = store.fetch(
        f"""SELECT SUM(CASE WHEN rating = 'like' THEN 1 ELSE 0 END),
                   SUM(CASE WHEN rating = 'dislike' THEN 1 ELSE 0 END),
                   SUM(CASE WHEN comment IS NOT NULL THEN 1 ELSE 0 END)
            FROM (SELECT rating, comment, {day} AS day FROM feedback
                  WHERE {scope.column} = :scope) AS f
            WHERE day BETWEEN :start AND :end""",
        _params(scope, window),
    )[0]
    return _int(row[0]), _int(row[1]), _int(row[2])


def histograms(store: Store, scope: Scope, window: Window) -> dict[str, dict[int, int]]:
    rows = store.fetch(
        f"""SELECT metric, bucket, SUM(n) FROM latency_days
            WHERE {_where(scope)} AND day BETWEEN :start AND :end
            GROUP BY metric, bucket""",
        _params(scope, window),
    )
    found: dict[str, dict[int, int]] = {"latency": {}, "ttft": {}}
    for name, bucket, n in rows:
        found.setdefault(str(name), {})[int(bucket)] = _int(n)
    return found


def user_counts(store: Store, scope: Scope, window: Window) -> dict[str, int]:
    """Active, new, DAU/WAU/MAU on the last day, user-days, and the previous period's users
    (for churn), in one scan of ``user_days``."""
    previous = window.start - timedelta(days=window.days)
    week, month = window.end - timedelta(days=6), window.end - timedelta(days=29)
    in_window = "day BETWEEN :start AND :end"
    row = store.fetch(
        f"""SELECT
                SUM(CASE WHEN {in_window} THEN 1 ELSE 0 END),
                SUM(CASE WHEN {in_window} AND {_first_in("start")} THEN 1 ELSE 0 END),
                SUM(CASE WHEN {in_window} AND day = first_day THEN 1 ELSE 0 END),
                SUM(CASE WHEN day = :end THEN 1 ELSE 0 END),
                SUM(CASE WHEN day >= :week AND {_first_in("week")} THEN 1 ELSE 0 END),
                SUM(CASE WHEN day >= :month AND {_first_in("month")} THEN 1 ELSE 0 END),
                SUM(CASE WHEN day BETWEEN :pstart AND :pend AND {_first_in("pstart")}
                    THEN 1 ELSE 0 END),
                SUM(CASE WHEN {in_window} AND prev_day BETWEEN :pstart AND :pend
                    THEN 1 ELSE 0 END)
            FROM user_days
            WHERE {active_where(scope)} AND day BETWEEN :lo AND :end""",
        _params(
            scope,
            window,
            week=week,
            month=month,
            pstart=previous,
            pend=window.start - timedelta(days=1),
            lo=min(previous, month),
        ),
    )[0]
    names = ("user_days", "active", "new", "dau", "wau", "mau", "previous", "came_back")
    return dict(zip(names, map(_int, row), strict=True))


def overview(store: Store, scope: Scope, window: Window) -> dict[str, Any]:
    """Every headline number of the window, each with its formula."""
    where = _where(scope)
    params = _params(scope, window)
    totals = store.fetch(
        f"""SELECT SUM(runs), SUM(failed), SUM(messages), SUM(conversations),
                   SUM(input_tokens), SUM(output_tokens), SUM(cost)
            FROM app_days WHERE {where} AND day BETWEEN :start AND :end""",
        params,
    )[0]
    runs, failed, messages, conversations, tokens_in, tokens_out, cost = map(_int, totals)
    users = user_counts(store, scope, window)
    active, new = users["active"], users["new"]
    churned = users["previous"] - users["came_back"]
    sessions, session_messages, session_cost = map(
        _int,
        store.fetch(
            f"""SELECT SUM(CASE WHEN {_first_in("start")} THEN 1 ELSE 0 END),
                       SUM(messages), SUM(cost)
                FROM conversation_days WHERE {where} AND day BETWEEN :start AND :end""",
            params,
        )[0],
    )
    likes, dislikes, comments = feedback_counts(store, scope, window)
    hist = histograms(store, scope, window)
    avg_dau = ratio(users["user_days"], window.days, 2) or 0.0
    mau = users["mau"]
    return {
        "active_users": metric("active_users", active),
        "dau": metric("dau", users["dau"], day=str(window.end)),
        "wau": metric("wau", users["wau"], day=str(window.end)),
        "mau": metric("mau", mau, day=str(window.end)),
        "avg_dau": metric("avg_dau", avg_dau, user_days=users["user_days"], days=window.days),
        "stickiness": metric("stickiness", ratio(avg_dau, mau), avg_dau=avg_dau, mau=mau),
        "new_users": metric("new_users", new),
        "returning_users": metric("returning_users", active - new, active=active, new=new),
        "churn": metric(
            "churn",
            ratio(churned, users["previous"]),
            churned=churned,
            previous_period_users=users["previous"],
            previous_period=[
                str(window.start - timedelta(days=window.days)),
                str(window.start - timedelta(days=1)),
            ],
        ),
        "runs": metric("runs", runs),
        "failed_runs": metric("failed_runs", failed),
        "error_rate": metric("error_rate", ratio(failed, runs), failed=failed, runs=runs),
        "messages": metric("messages", messages),
        "conversations": metric("conversations", conversations),
        "sessions": metric("sessions", sessions),
        "messages_per_session": metric(
            "messages_per_session",
            ratio(session_messages, sessions, 2),
            messages_in_conversations=session_messages,
            sessions=sessions,
        ),
        "likes": metric("likes", likes),
        "dislikes": metric("dislikes", dislikes),
        "comments": metric("comments", comments),
        "satisfaction": metric(
            "satisfaction", ratio(1000 * likes, messages, 1), likes=likes, messages=messages
        ),
        "input_tokens": metric("input_tokens", tokens_in),
        "output_tokens": metric("output_tokens", tokens_out),
        "cost": metric("cost", cost),
        "cost_per_user": metric(
            "cost_per_user", ratio(cost, active, 1), cost=cost, active_users=active
        ),
        "cost_per_conversation": metric(
            "cost_per_conversation",
            ratio(session_cost, sessions, 1),
            cost_in_conversations=session_cost,
            sessions=sessions,
        ),
        **{
            f"{kind}_p{p}": metric(
                f"{kind}_p{p}",
                percentile(hist[kind], p / 100),
                runs=sum(hist[kind].values()),
            )
            for kind in ("latency", "ttft")
            for p in (50, 95)
        },
    }


def apps_breakdown(store: Store, scope: Scope, window: Window) -> list[dict[str, Any]]:
    """Runs, failures, messages, cost and active users of each app in the window."""
    params = _params(scope, window)
    totals = store.fetch(
        f"""SELECT app_id, SUM(runs), SUM(failed), SUM(messages), SUM(cost) FROM app_days
            WHERE {_where(scope)} AND day BETWEEN :start AND :end GROUP BY app_id""",
        params,
    )
    active = dict(
        store.fetch(
            f"""SELECT app_id, SUM(CASE WHEN {_first_in("start")} THEN 1 ELSE 0 END)
                FROM user_days WHERE {_where(scope)} AND app_id <> ''
                AND day BETWEEN :start AND :end GROUP BY app_id""",
            params,
        )
    )
    rows = [
        {
            "app_id": str(app_id),
            "runs": _int(runs),
            "failed_runs": _int(failed),
            "messages": _int(messages),
            "cost": _int(cost),
            "active_users": _int(active.get(app_id)),
        }
        for app_id, runs, failed, messages, cost in totals
    ]
    return sorted(rows, key=lambda r: (-r["runs"], r["app_id"]))


def active_counts(store: Store, scope: Scope, window: Window) -> dict[date, tuple[int, int, int]]:
    """(DAU, WAU, MAU) for each day of the window, from one pass over ``user_days``.

    A user active on day a counts in the trailing W-day window of days a … a+W−1. With
    p the user's previous active day, only days max(a, p+W) … a+W−1 are new to that
    user, so these spans are disjoint per user, and a running sum of span starts minus
    span ends (a+W: the rows of day a+W−W) is exactly the number of distinct users.
    """
    lo = window.start - timedelta(days=29)

    def start(w: int) -> str:
        return (
            f"CASE WHEN prev_day IS NULL OR prev_day + {w} <= day THEN day ELSE prev_day + {w} END"
        )

    rows = store.fetch(
        f"""WITH b AS (SELECT day, prev_day FROM user_days
                       WHERE {active_where(scope)} AND day BETWEEN :lo AND :end)
            SELECT 'd', day, COUNT(*) FROM b GROUP BY day
            UNION ALL SELECT 'w', {start(7)}, COUNT(*) FROM b GROUP BY 2
            UNION ALL SELECT 'm', {start(30)}, COUNT(*) FROM b GROUP BY 2""",
        _params(scope, window, lo=lo),
    )
    counted: dict[str, dict[date, int]] = {"d": {}, "w": {}, "m": {}}
    for kind, day, n in rows:
        counted[str(kind)][_day(day)] = _int(n)
    daily, weekly_starts, monthly_starts = counted["d"], counted["w"], counted["m"]
    counts: dict[date, tuple[int, int, int]] = {}
    weekly = monthly = 0
    day = lo
    while day <= window.end:
        weekly += weekly_starts.get(day, 0) - daily.get(day - timedelta(days=7), 0)
        monthly += monthly_starts.get(day, 0) - daily.get(day - timedelta(days=30), 0)
        if day >= window.start:
            counts[day] = (daily.get(day, 0), weekly, monthly)
        day += timedelta(days=1)
    return counts


def _day(value: Any) -> date:
    """A DATE from either engine (date arithmetic may come back as a datetime)."""
    if isinstance(value, datetime):
        return value.date()
    assert isinstance(value, date)
    return value


def _by_day(rows: list[tuple[Any, ...]]) -> dict[date, tuple[int, ...]]:
    return {_day(row[0]): tuple(_int(v) for v in row[1:]) for row in rows}


def _daily_totals(store: Store, scope: Scope, window: Window) -> dict[date, tuple[int, ...]]:
    """Per day: runs, failed, messages, cost, input tokens, output tokens."""
    return _by_day(
        store.fetch(
            f"""SELECT day, SUM(runs), SUM(failed), SUM(messages), SUM(cost),
                       SUM(input_tokens), SUM(output_tokens)
                FROM app_days WHERE {_where(scope)} AND day BETWEEN :start AND :end
                GROUP BY day""",
            _params(scope, window),
        )
    )


def _per_day(store: Store, scope: Scope, window: Window, sql: str, **extra: Any) -> dict[date, int]:
    return {_day(day): _int(n) for day, n in store.fetch(sql, _params(scope, window, **extra))}


ZERO = (0, 0, 0, 0, 0, 0)
Point = dict[str, Any]


def _active_points(name: str, store: Store, scope: Scope, window: Window) -> list[Point]:
    active = active_counts(store, scope, window)
    if name == "stickiness":
        return [
            {"value": ratio(dau, mau), "dau": dau, "mau": mau} for dau, _, mau in active.values()
        ]
    index = ("dau", "wau", "mau").index(name)
    return [{"value": counts[index]} for counts in active.values()]


def _new_users(store: Store, scope: Scope, window: Window) -> dict[date, int]:
    return _per_day(
        store,
        scope,
        window,
        f"""SELECT day, COUNT(*) FROM user_days WHERE {active_where(scope)}
            AND day = first_day AND day BETWEEN :start AND :end GROUP BY day""",
    )


def _user_points(name: str, store: Store, scope: Scope, window: Window) -> list[Point]:
    new = _new_users(store, scope, window)
    if name == "new_users":
        return [{"value": new.get(d, 0)} for d in window.each_day()]
    active = active_counts(store, scope, window)
    return [{"value": active[d][0] - new.get(d, 0)} for d in window.each_day()]


def _total_points(name: str, store: Store, scope: Scope, window: Window) -> list[Point]:
    totals = _daily_totals(store, scope, window)
    days = [totals.get(d, ZERO) for d in window.each_day()]
    if name in ("runs", "messages", "cost"):
        index = {"runs": 0, "messages": 2, "cost": 3}[name]
        return [{"value": t[index]} for t in days]
    if name == "error_rate":
        return [{"value": ratio(t[1], t[0]), "failed": t[1], "runs": t[0]} for t in days]
    return [{"value": t[4] + t[5], "input": t[4], "output": t[5]} for t in days]  # tokens


def _cost_per_user(name: str, store: Store, scope: Scope, window: Window) -> list[Point]:
    totals = _daily_totals(store, scope, window)
    active = active_counts(store, scope, window)
    return [
        {"value": ratio(totals.get(d, ZERO)[3], active[d][0], 1), "dau": active[d][0]}
        for d in window.each_day()
    ]


def _session_points(name: str, store: Store, scope: Scope, window: Window) -> list[Point]:
    sessions = _per_day(
        store,
        scope,
        window,
        f"""SELECT day, COUNT(*) FROM conversation_days
            WHERE {_where(scope)} AND day BETWEEN :start AND :end GROUP BY day""",
    )
    return [{"value": sessions.get(d, 0)} for d in window.each_day()]


def _latency_points(name: str, store: Store, scope: Scope, window: Window) -> list[Point]:
    per_day: dict[date, dict[int, int]] = {}
    for day, bucket, n in store.fetch(
        f"""SELECT day, bucket, SUM(n) FROM latency_days
            WHERE {_where(scope)} AND metric = :metric AND day BETWEEN :start AND :end
            GROUP BY day, bucket""",
        _params(scope, window, metric=name),
    ):
        per_day.setdefault(_day(day), {})[int(bucket)] = _int(n)
    points = []
    for d in window.each_day():
        p50 = percentile(per_day.get(d, {}), 0.5)
        points.append({"value": p50, "p50": p50, "p95": percentile(per_day.get(d, {}), 0.95)})
    return points


def _satisfaction_points(name: str, store: Store, scope: Scope, window: Window) -> list[Point]:
    day_sql = store.local_date("ts", "tz")
    likes = _per_day(
        store,
        scope,
        window,
        f"""SELECT day, COUNT(*) FROM (
                SELECT {day_sql} AS day FROM feedback
                WHERE {scope.column} = :scope AND rating = 'like') AS f
            WHERE day BETWEEN :start AND :end GROUP BY day""",
    )
    totals = _daily_totals(store, scope, window)
    return [
        {
            "value": ratio(1000 * likes.get(d, 0), totals.get(d, ZERO)[2], 1),
            "likes": likes.get(d, 0),
            "messages": totals.get(d, ZERO)[2],
        }
        for d in window.each_day()
    ]


# metric -> (how its points are computed, the formula shown for the series)
_SERIES = {
    "dau": (_active_points, FORMULAS["dau"].formula),
    "wau": (_active_points, FORMULAS["wau"].formula),
    "mau": (_active_points, FORMULAS["mau"].formula),
    "stickiness": (_active_points, "DAU(d) ÷ MAU(d)"),
    "new_users": (_user_points, "end users whose first run ever in the scope was on day d"),
    "returning_users": (_user_points, "DAU(d) − new users(d)"),
    "runs": (_total_points, FORMULAS["runs"].formula.replace("window", "day")),
    "messages": (_total_points, "answers given on day d: runs that succeeded"),
    "sessions": (_session_points, "distinct conversations with at least one run on day d"),
    "error_rate": (_total_points, "failed runs(d) ÷ runs(d)"),
    "cost": (_total_points, FORMULAS["cost"].formula),
    "cost_per_user": (_cost_per_user, "cost(d) ÷ DAU(d)"),
    "tokens": (_total_points, "input + output tokens of day d's runs"),
    "latency": (
        _latency_points,
        "p50 and p95 of day d's succeeded runs; " + FORMULAS["latency_p95"].formula,
    ),
    "ttft": (_latency_points, "p50 and p95 of day d; " + FORMULAS["ttft_p95"].formula),
    "satisfaction": (
        _satisfaction_points,
        "1,000 × likes(d) ÷ messages(d); likes counted on the day they were given",
    ),
}
SERIES = tuple(_SERIES)
_UNITS = {
    "stickiness": "ratio",
    "error_rate": "ratio",
    "cost": "micro-yuan",
    "cost_per_user": "micro-yuan",
    "tokens": "tokens",
    "latency": "ms",
    "ttft": "ms",
    "satisfaction": "per 1,000 messages",
}


def series(store: Store, scope: Scope, window: Window, name: str) -> dict[str, Any]:
    """One metric per day of the window (days without activity are zeros, not gaps)."""
    name = ALIASES.get(name, name)
    if name not in _SERIES:
        raise InvalidRequest(f"metric is one of {', '.join(SERIES)}; not {name!r}", param="metric")
    compute, text = _SERIES[name]
    points = compute(name, store, scope, window)
    return {
        "object": "insight.series",
        "metric": name,
        "formula": text,
        "unit": _UNITS.get(name, "count"),
        "tz": window.tz,
        "from": str(window.start),
        "to": str(window.end),
        "data": [{"day": str(d), **p} for d, p in zip(window.each_day(), points, strict=True)],
    }


__all__ = [
    "SERIES",
    "active_counts",
    "active_where",
    "apps_breakdown",
    "metric",
    "overview",
    "percentile",
    "ratio",
    "series",
]
