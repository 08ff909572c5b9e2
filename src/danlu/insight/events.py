"""Insight events: one row per thing that happened in an app, and who it happened to.

Kinds:

- ``run``: every app run, with its status, model(s), tokens, cost, latency and time
  to first token;
- ``conversation``: a run that started a new conversation;
- ``message``: an answer the app gave (a run that succeeded);
- ``error``: a run that failed, with its error;
- ``feedback``: an end user's like, dislike or comment on a run's answer.

Every event carries the end user's identity: ``known`` when the caller passed a
``user``, otherwise ``anonymous`` (the conversation, or failing that the API key
the run came through, stands for the visitor).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

RUN = "run"
CONVERSATION = "conversation"
MESSAGE = "message"
ERROR = "error"
FEEDBACK = "feedback"
KINDS = (RUN, CONVERSATION, MESSAGE, ERROR, FEEDBACK)

KNOWN = "known"
ANONYMOUS = "anonymous"
ANONYMOUS_PREFIX = "anon:"

LIKE = "like"
DISLIKE = "dislike"
CLEARED = "none"  # a rating taken back
RATINGS = (LIKE, DISLIKE, CLEARED)


@dataclass(frozen=True)
class Event:
    """One event. Money in micro-yuan, times in milliseconds, ``ts`` aware UTC."""

    ts: datetime
    kind: str
    workspace_id: str
    app_id: str
    user_id: str
    user_kind: str
    run_id: str | None = None
    conversation_id: str | None = None
    version: int | None = None
    status: str | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost: int = 0
    latency_ms: float | None = None
    ttft_ms: float | None = None
    rating: str | None = None
    comment: str | None = None
    error: str | None = None
    detail: str | None = None  # JSON: per-model tokens, node start offsets

    def as_row(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in COLUMNS)

    def details(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.detail) if self.detail else {}
        return loaded


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Event))


def identity(end_user: str | None, conversation_id: str | None, owner: str) -> tuple[str, str]:
    """(user id, kind): the caller's ``user`` if given, else an anonymous stand-in."""
    if end_user:
        return end_user[:128], KNOWN
    if conversation_id:
        return ANONYMOUS_PREFIX + conversation_id, ANONYMOUS
    return ANONYMOUS_PREFIX + (owner or "unknown")[:120], ANONYMOUS


def feedback_event(
    *,
    workspace_id: str,
    app_id: str,
    run_id: str,
    user_id: str,
    user_kind: str,
    rating: str | None,
    comment: str | None,
    conversation_id: str | None = None,
    ts: datetime | None = None,
) -> Event:
    """A like, dislike, cleared rating (``"none"``) and/or comment on one run's answer.

    ``rating=None`` leaves an earlier rating as it was (a comment alone); likewise
    ``comment=None``.
    """
    if rating is not None and rating not in RATINGS:
        raise ValueError(f"rating is one of {RATINGS}, not {rating!r}")
    return Event(
        ts=ts or datetime.now(UTC),
        kind=FEEDBACK,
        workspace_id=workspace_id,
        app_id=app_id,
        user_id=user_id,
        user_kind=user_kind,
        run_id=run_id,
        conversation_id=conversation_id,
        rating=rating,
        comment=comment,
    )


__all__ = [
    "ANONYMOUS",
    "CLEARED",
    "COLUMNS",
    "CONVERSATION",
    "DISLIKE",
    "ERROR",
    "FEEDBACK",
    "KINDS",
    "KNOWN",
    "LIKE",
    "MESSAGE",
    "RATINGS",
    "RUN",
    "Event",
    "feedback_event",
    "identity",
]
