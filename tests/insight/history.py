"""Event histories built by hand: runs, messages and feedback at local times."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from danlu.insight import rollups
from danlu.insight.events import (
    CONVERSATION,
    ERROR,
    MESSAGE,
    RUN,
    Event,
    feedback_event,
)
from danlu.insight.recorder import write_events
from danlu.insight.stores.base import Store
from danlu.insight.window import Scope, Window

SHANGHAI = "Asia/Shanghai"
WS = "ws-1"
APP = "app-a"
_ids = itertools.count(1)


def at(local: str, tz: str = SHANGHAI) -> datetime:
    """'2024-03-01 10:00' in ``tz`` → an aware UTC datetime."""
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


def d(text: str) -> date:
    return date.fromisoformat(text)


def run(
    user: str,
    when: str | datetime,
    *,
    app: str = APP,
    workspace: str = WS,
    ok: bool = True,
    cost: int = 0,
    latency_ms: float = 100.0,
    ttft_ms: float | None = None,
    conversation: str | None = None,
    new_conversation: bool = False,
    tokens: tuple[int, int] = (0, 0),
    run_id: str | None = None,
    tz: str = SHANGHAI,
) -> list[Event]:
    """One run's events, as the recorder writes them: run, then conversation/message/error."""
    ts = when if isinstance(when, datetime) else at(when, tz)
    base = {
        "ts": ts,
        "workspace_id": workspace,
        "app_id": app,
        "user_id": user,
        "user_kind": "anonymous" if user.startswith("anon:") else "known",
        "run_id": run_id or f"run-{next(_ids)}",
        "conversation_id": conversation,
        "version": 1,
    }
    events = [
        Event(
            kind=RUN,
            status="succeeded" if ok else "failed",
            model="m",
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            cost=cost,
            latency_ms=latency_ms,
            ttft_ms=ttft_ms if ok else None,
            **base,
        )
    ]
    if new_conversation:
        events.append(Event(kind=CONVERSATION, **base))
    if ok:
        events.append(Event(kind=MESSAGE, **base))
    else:
        events.append(Event(kind=ERROR, status="failed", error="boom", **base))
    return events


def feedback(
    run_events: Sequence[Event],
    when: str,
    *,
    rating: str | None = None,
    comment: str | None = None,
    tz: str = SHANGHAI,
) -> Event:
    first = run_events[0]
    assert first.run_id is not None
    return feedback_event(
        workspace_id=first.workspace_id,
        app_id=first.app_id,
        run_id=first.run_id,
        user_id=first.user_id,
        user_kind=first.user_kind,
        rating=rating,
        comment=comment,
        ts=at(when, tz),
    )


def load(store: Store, *histories: Sequence[Event], batch: int = 7, tz: str = SHANGHAI) -> None:
    """Track ``tz``, then write the events in small batches (the recorder's incremental path)."""
    rollups.track(store, tz)
    events = [e for history in histories for e in history]
    for lo in range(0, len(events), batch):
        write_events(store, events[lo : lo + batch])


def app_scope(app: str = APP) -> Scope:
    return Scope("app", app)


def window(start: str, end: str, tz: str = SHANGHAI) -> Window:
    return Window(d(start), d(end), tz)
