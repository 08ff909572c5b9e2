"""Metrics as CSV, for spreadsheets: the same numbers and formulas as the JSON API."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any


def _cell(value: Any) -> Any:
    """Text a spreadsheet will not run as a formula (CSV injection); numbers as they are."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _write(header: list[str], rows: Iterable[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


def overview_csv(overview: dict[str, Any]) -> str:
    metrics = overview["metrics"]
    return _write(
        ["metric", "value", "unit", "formula", "from", "to", "tz"],
        (
            [
                name,
                m["value"],
                m["unit"],
                m["formula"],
                overview["from"],
                overview["to"],
                overview["tz"],
            ]
            for name, m in metrics.items()
        ),
    )


def series_csv(series: dict[str, Any]) -> str:
    extra = sorted({k for p in series["data"] for k in p} - {"day", "value"})
    return _write(
        ["day", series["metric"], *extra],
        ([p["day"], p["value"], *(p.get(k) for k in extra)] for p in series["data"]),
    )


def retention_csv(table: dict[str, Any]) -> str:
    periods = table["periods"]
    unit = "day" if table["grain"] == "day" else "week"
    header = ["cohort", "size", "kind", *(f"{unit} {n}" for n in range(periods + 1))]
    rows = []
    for cohort in table["cohorts"]:
        for kind in ("classic", "unbounded"):
            rows.append([cohort["cohort"], cohort["size"], kind, *cohort[kind]])
    return _write(header, rows)


def users_csv(users: dict[str, Any]) -> str:
    columns = ["user", "kind", "first_seen", "last_seen", "runs", "cost", "active_days"]
    return _write(columns, ([u[c] for c in columns] for u in users["data"]))


def apps_csv(apps: list[dict[str, Any]]) -> str:
    columns = [
        "app_id",
        "slug",
        "name",
        "deleted",
        "runs",
        "failed_runs",
        "messages",
        "cost",
        "active_users",
    ]
    return _write(columns, ([a[c] for c in columns] for a in apps))


__all__ = ["apps_csv", "overview_csv", "retention_csv", "series_csv", "users_csv"]
