"""Usage reports from the ledger: per key, per model or per UTC day, and CSV exports."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import func, select

from danlu.billing.money import format_yuan
from danlu.billing.recorder import UsageEntry
from danlu.billing.tables import UsageRecord
from danlu.core.db import Database
from danlu.core.errors import InvalidRequest

GroupBy = Literal["key", "model", "day"]


@dataclass(frozen=True)
class UsageRow:
    """Totals for one key, model or day. Money in micro-yuan."""

    group: str  # the key id ("" for none), the model, or the day as YYYY-MM-DD (UTC)
    requests: int
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    cost: int
    shortfall: int

    @property
    def charged(self) -> int:
        return self.cost - self.shortfall


def usage_report(
    db: Database, workspace_id: str, start: date, end: date, *, by: GroupBy
) -> list[UsageRow]:
    """A workspace's usage from ``start`` to ``end`` (UTC days, both included)."""
    since, until = _range(start, end)
    group: Any
    if by == "key":
        group = func.coalesce(UsageRecord.key_id, "")
    elif by == "model":
        group = UsageRecord.model
    elif by == "day":
        # Timestamps are stored as naive UTC, so date() is the UTC day on both backends.
        group = func.date(UsageRecord.created_at)
    else:
        raise InvalidRequest("group usage by 'key', 'model' or 'day'", param="by")
    query = (
        select(
            group,
            func.count(),
            func.sum(UsageRecord.input_tokens),
            func.sum(UsageRecord.cached_tokens),
            func.sum(UsageRecord.output_tokens),
            func.sum(UsageRecord.cost),
            func.sum(UsageRecord.shortfall),
        )
        .where(
            UsageRecord.workspace_id == workspace_id,
            UsageRecord.created_at >= since,
            UsageRecord.created_at < until,
        )
        .group_by(group)
        .order_by(group)
    )
    with db.read() as session:
        rows = session.execute(query).all()
    # SQLite answers date() with text, PostgreSQL with a date; sums may come back as Decimal.
    return [
        UsageRow(
            group=value.isoformat() if isinstance(value, date) else str(value),
            requests=int(count),
            input_tokens=int(inputs or 0),
            cached_tokens=int(cached or 0),
            output_tokens=int(outputs or 0),
            cost=int(cost or 0),
            shortfall=int(shortfall or 0),
        )
        for value, count, inputs, cached, outputs, cost, shortfall in rows
    ]


def usage_records(db: Database, workspace_id: str, start: date, end: date) -> list[UsageEntry]:
    """Every ledger row of a workspace from ``start`` to ``end`` (UTC days, both included)."""
    since, until = _range(start, end)
    with db.read() as session:
        rows = session.scalars(
            select(UsageRecord)
            .where(
                UsageRecord.workspace_id == workspace_id,
                UsageRecord.created_at >= since,
                UsageRecord.created_at < until,
            )
            .order_by(UsageRecord.created_at, UsageRecord.id)
        ).all()
    return [
        UsageEntry(
            request_id=row.request_id,
            workspace_id=row.workspace_id,
            key_id=row.key_id,
            user_id=row.user_id,
            model=row.model,
            deployment=row.deployment,
            input_tokens=row.input_tokens,
            cached_tokens=row.cached_tokens,
            output_tokens=row.output_tokens,
            cost=row.cost,
            shortfall=row.shortfall,
            status=row.status,
            latency_ms=row.latency_ms,
            ttft_ms=row.ttft_ms,
            created_at=row.created_at,
        )
        for row in rows
    ]


def report_csv(rows: list[UsageRow], *, by: GroupBy) -> str:
    """A report as CSV: a header row, then one row per group; yuan with six decimals."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            by,
            "requests",
            "input_tokens",
            "cached_tokens",
            "output_tokens",
            "cost_yuan",
            "charged_yuan",
        ]
    )
    for row in rows:
        writer.writerow(
            [
                _cell(row.group),
                row.requests,
                row.input_tokens,
                row.cached_tokens,
                row.output_tokens,
                format_yuan(row.cost, symbol=False),
                format_yuan(row.charged, symbol=False),
            ]
        )
    return out.getvalue()


def records_csv(entries: list[UsageEntry]) -> str:
    """Ledger rows as CSV, one per request; times in UTC (ISO 8601)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "created_at", "request_id", "key_id", "user_id", "model", "deployment",
            "input_tokens", "cached_tokens", "output_tokens", "cost_yuan", "charged_yuan",
            "status", "latency_ms", "ttft_ms",
        ]
    )  # fmt: skip
    for entry in entries:
        writer.writerow(
            [
                entry.created_at.astimezone(UTC).isoformat(),
                _cell(entry.request_id),
                _cell(entry.key_id or ""),
                _cell(entry.user_id or ""),
                _cell(entry.model),
                _cell(entry.deployment or ""),
                entry.input_tokens,
                entry.cached_tokens,
                entry.output_tokens,
                format_yuan(entry.cost, symbol=False),
                format_yuan(entry.charged, symbol=False),
                _cell(entry.status),
                "" if entry.latency_ms is None else entry.latency_ms,
                "" if entry.ttft_ms is None else entry.ttft_ms,
            ]
        )
    return out.getvalue()


def _cell(text: str) -> str:
    """Text a spreadsheet will not run as a formula (CSV injection): quote a leading =+-@."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _range(start: date, end: date) -> tuple[datetime, datetime]:
    if isinstance(start, datetime) or isinstance(end, datetime):
        raise InvalidRequest("a report's range is two dates (UTC days), not times", param="start")
    if end < start:
        raise InvalidRequest("the report's end date is before its start date", param="end")
    since = datetime.combine(start, time.min, tzinfo=UTC)
    return since, datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
