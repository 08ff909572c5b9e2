"""Conversation logs and run traces, read from the builder's tables (where runs are stored).

Search is a substring match, case-insensitive. Run inputs and outputs are stored as
JSON whose non-ASCII characters are escaped (``\\u9000``), so a query is also matched
in that escaped form: searching 退款 finds it in inputs, outputs and messages alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import String, cast, exists, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from danlu.builder.tables import App, AppRun, AppVersion, Conversation, Message
from danlu.core.db import Database
from danlu.core.errors import NotFound
from danlu.insight.window import zone

MAX_PAGE = 200


def _like(column: Any, text: str) -> ColumnElement[bool]:
    escaped = text.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    result: ColumnElement[bool] = column.ilike(f"%{escaped}%", escape="!")
    return result


def _json_text(text: str) -> str:
    """How ``text`` appears inside stored JSON (non-ASCII escaped)."""
    return json.dumps(text)[1:-1]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def utc_bounds(
    start: date | None, end: date | None, tz: str
) -> tuple[datetime | None, datetime | None]:
    """Local days → [start of ``start``, start of the day after ``end``) in UTC."""
    where = zone(tz)

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=where).astimezone(UTC)

    return (
        midnight(start) if start else None,
        midnight(end + timedelta(days=1)) if end else None,
    )


@dataclass(frozen=True)
class LogQuery:
    q: str | None = None
    user: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    offset: int = 0


def conversations(db: Database, app: App, query: LogQuery) -> dict[str, Any]:
    """An app's conversations, newest first, with the ones whose messages match ``q``."""
    found = select(Conversation).where(Conversation.app_id == app.id)
    if query.user:
        found = found.where(Conversation.end_user == query.user)
    if query.since:
        found = found.where(Conversation.created_at >= query.since)
    if query.until:
        found = found.where(Conversation.created_at < query.until)
    if query.q:
        found = found.where(
            exists(
                select(Message.id).where(
                    Message.conversation_id == Conversation.id, _like(Message.content, query.q)
                )
            )
        )
    limit = min(max(query.limit, 1), MAX_PAGE)
    with db.read() as session:
        page = list(
            session.scalars(
                found.order_by(Conversation.created_at.desc(), Conversation.id)
                .limit(limit)
                .offset(max(query.offset, 0))
            )
        )
        ids = [c.id for c in page]
        stats = {
            row[0]: (row[1], row[2])
            for row in session.execute(
                select(Message.conversation_id, func.count(), func.max(Message.created_at))
                .where(Message.conversation_id.in_(ids))
                .group_by(Message.conversation_id)
            )
        }
        firsts = dict(
            session.execute(
                select(Message.conversation_id, Message.content).where(
                    Message.conversation_id.in_(ids), Message.position == 0
                )
            ).all()
        )
        hits: dict[str, str] = {}
        if query.q:
            for conversation_id, content in session.execute(
                select(Message.conversation_id, Message.content)
                .where(Message.conversation_id.in_(ids), _like(Message.content, query.q))
                .order_by(Message.position)
            ):
                hits.setdefault(conversation_id, _snippet(content, query.q))
    return {
        "object": "list",
        "data": [
            {
                "id": c.id,
                "user": c.end_user,
                "created_at": _iso(c.created_at),
                "last_message_at": _iso(stats.get(c.id, (0, None))[1]),
                "messages": int(stats.get(c.id, (0, None))[0]),
                "first_query": firsts.get(c.id),
                "match": hits.get(c.id),
            }
            for c in page
        ],
        "limit": limit,
        "offset": query.offset,
    }


def _snippet(content: str, q: str, width: int = 60) -> str:
    at = content.lower().find(q.lower())
    if at < 0:
        return content[: 2 * width]
    lo, hi = max(at - width, 0), min(at + len(q) + width, len(content))
    return ("…" if lo else "") + content[lo:hi] + ("…" if hi < len(content) else "")


def conversation(db: Database, app: App, conversation_id: str) -> dict[str, Any]:
    """One conversation's messages in order (each answer with its run id)."""
    with db.read() as session:
        found = session.get(Conversation, conversation_id)
        if found is None or found.app_id != app.id:
            raise NotFound(f"no conversation {conversation_id!r} in this app", param="conversation")
        messages = list(
            session.scalars(
                select(Message)
                .where(Message.conversation_id == found.id)
                .order_by(Message.position)
            )
        )
    return {
        "object": "insight.conversation",
        "id": found.id,
        "user": found.end_user,
        "created_at": _iso(found.created_at),
        "variables": found.variables or {},
        "messages": [
            {
                "position": m.position,
                "role": m.role,
                "content": m.content,
                "run_id": m.run_id,
                "created_at": _iso(m.created_at),
            }
            for m in messages
        ],
    }


def runs(db: Database, app: App, query: LogQuery) -> dict[str, Any]:
    """An app's runs, newest first; ``q`` matches inputs, outputs, errors and messages."""
    found = select(AppRun).where(AppRun.app_id == app.id)
    if query.status:
        found = found.where(AppRun.status == query.status)
    if query.user:
        found = found.where(AppRun.end_user == query.user)
    if query.since:
        found = found.where(AppRun.created_at >= query.since)
    if query.until:
        found = found.where(AppRun.created_at < query.until)
    if query.q:
        escaped = _json_text(query.q)
        found = found.where(
            or_(
                _like(cast(AppRun.inputs, String), escaped),
                _like(cast(AppRun.outputs, String), escaped),
                _like(AppRun.error, query.q),
                exists(
                    select(Message.id).where(
                        Message.run_id == AppRun.id, _like(Message.content, query.q)
                    )
                ),
            )
        )
    limit = min(max(query.limit, 1), MAX_PAGE)
    with db.read() as session:
        page = list(
            session.scalars(
                found.order_by(AppRun.created_at.desc(), AppRun.id)
                .limit(limit)
                .offset(max(query.offset, 0))
            )
        )
    return {
        "object": "list",
        "data": [
            {
                "id": r.id,
                "version": r.version,
                "status": r.status,
                "user": r.end_user,
                "conversation_id": r.conversation_id,
                "inputs": r.inputs,
                "outputs": r.outputs,
                "error": r.error,
                "usage": r.usage,
                "elapsed_ms": r.elapsed_ms,
                "created_at": _iso(r.created_at),
            }
            for r in page
        ],
        "limit": limit,
        "offset": query.offset,
    }


def trace(db: Database, app: App, run_id: str, recorded: dict[str, Any] | None) -> dict[str, Any]:
    """One run as a trace: each node's start, duration, status, inputs and outputs.

    A node's inputs are what it could read from the nodes wired into it: the run's inputs
    for the start node, otherwise the outputs of its upstream nodes (by edge). Start
    offsets and the run's cost and time to first token come from insight's record of the
    run (``recorded``), once the recorder has written it.
    """
    with db.read() as session:
        run = session.get(AppRun, run_id)
        if run is None or run.app_id != app.id:
            raise NotFound(f"no run {run_id!r} in this app", param="run")
        version = (
            session.get(AppVersion, (app.id, run.version)) if run.version is not None else None
        )
        messages = list(
            session.scalars(select(Message).where(Message.run_id == run.id).order_by(Message.id))
        )
    spec = version.spec if version is not None else app.draft
    graph = spec.get("graph") or {}
    types = {n.get("id"): n.get("type") for n in graph.get("nodes") or []}
    upstream: dict[str, list[str]] = {}
    for edge in graph.get("edges") or []:
        upstream.setdefault(str(edge.get("target")), []).append(str(edge.get("source")))
    outputs = {str(n.get("node_id")): n.get("outputs") for n in run.nodes}
    detail = json.loads(recorded["detail"]) if recorded and recorded.get("detail") else {}
    starts: dict[str, float] = detail.get("nodes", {})
    nodes = []
    for node in run.nodes:
        node_id = str(node.get("node_id"))
        kind = types.get(node_id)
        inputs = (
            run.inputs
            if kind == "start"
            else {source: outputs.get(source) for source in upstream.get(node_id, [])}
        )
        nodes.append(
            {
                "node_id": node_id,
                "type": kind,
                "status": node.get("status"),
                "started_ms": starts.get(node_id),
                "elapsed_ms": node.get("elapsed_ms"),
                "inputs": inputs,
                "outputs": node.get("outputs"),
                "error": node.get("error"),
            }
        )
    nodes.sort(key=lambda n: (n["started_ms"] is None, n["started_ms"] or 0.0))
    shown = {k: v for k, v in (recorded or {}).items() if k != "detail"}
    if "models" in detail:
        shown["models"] = detail["models"]
    if "unpriced" in detail:
        shown["unpriced_models"] = detail["unpriced"]
    return {
        "object": "insight.trace",
        "run_id": run.id,
        "app": app.slug,
        "version": run.version,
        "status": run.status,
        "error": run.error,
        "user": run.end_user,
        "conversation_id": run.conversation_id,
        "inputs": run.inputs,
        "outputs": run.outputs,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "usage": run.usage,
        "elapsed_ms": run.elapsed_ms,
        "created_at": _iso(run.created_at),
        "recorded": bool(recorded),
        "insight": shown,
        "nodes": nodes,
    }


__all__ = ["LogQuery", "conversation", "conversations", "runs", "trace", "utc_bounds"]
