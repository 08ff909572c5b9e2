"""What a metric is computed over: a scope (one app or a workspace) and a window of local days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from danlu.core.errors import InvalidRequest

MAX_WINDOW_DAYS = 366


def zone(tz: str) -> ZoneInfo:
    """An IANA time zone, or InvalidRequest naming the bad one."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest(
            f"unknown time zone {tz!r}; use an IANA name such as Asia/Shanghai or UTC",
            param="tz",
        ) from None


def today(tz: str) -> date:
    return datetime.now(UTC).astimezone(zone(tz)).date()


@dataclass(frozen=True)
class Scope:
    """One app (``kind="app"``, its id) or a whole workspace (its id)."""

    kind: Literal["app", "workspace"]
    id: str

    @property
    def column(self) -> str:
        return "app_id" if self.kind == "app" else "workspace_id"


@dataclass(frozen=True)
class Window:
    """Local days ``start`` … ``end`` (both included) in time zone ``tz``."""

    start: date
    end: date
    tz: str

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def each_day(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    @classmethod
    def of(cls, start: date | None, end: date | None, tz: str, *, default_days: int = 30) -> Window:
        """The window asked for; by default the last ``default_days`` days up to today."""
        zone(tz)
        last = end or today(tz)
        first = start or last - timedelta(days=default_days - 1)
        if first > last:
            raise InvalidRequest("from is after to", param="from")
        if (last - first).days + 1 > MAX_WINDOW_DAYS:
            raise InvalidRequest(f"ask for at most {MAX_WINDOW_DAYS} days at a time", param="from")
        return cls(first, last, tz)


__all__ = ["MAX_WINDOW_DAYS", "Scope", "Window", "today", "zone"]
