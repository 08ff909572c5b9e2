"""Notifications: replies, mentions, status changes of your discussions, finished jobs.

They are written inside the transaction of what caused them (:func:`notify`), by whichever
process did it — a server, or a fine-tuning worker finishing a job — so none is lost and
none exists for an action that rolled back. The same transaction queues the event for the
workspace's webhook, if it has one (:func:`danlu.community.webhooks.enqueue`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from danlu.community.tables import Notification
from danlu.community.webhooks import enqueue
from danlu.core.db import Database
from danlu.core.keys import Principal
from danlu.core.tables import User, utcnow

KINDS = ("reply", "mention", "status", "job_finished")


def notify(
    session: Session,
    *,
    user_id: str,
    kind: str,
    title: str,
    actor: str | None = None,
    data: dict[str, Any] | None = None,
    repo_id: str | None = None,
    app_id: str | None = None,
) -> None:
    """Add a notification inside the caller's transaction."""
    session.add(
        Notification(
            user_id=user_id,
            kind=kind,
            actor=actor,
            title=title[:500],
            data=data or {},
            repo_id=repo_id,
            app_id=app_id,
        )
    )


class FinishedJob(Protocol):
    """What a notification needs of a fine-tuning job (``danlu.refinery.job_tables.FineTune``)."""

    @property
    def id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def workspace_id(self) -> str: ...
    @property
    def output_repo(self) -> str: ...


def notify_job_finished(
    session: Session, job: FinishedJob, status: str, error: str | None = None
) -> None:
    """A fine-tuning job ended: tell whoever started it, and the workspace's webhook."""
    outcome = {"succeeded": f"published {job.output_repo}", "cancelled": "was cancelled"}
    title = f"fine-tuning job {job.id} " + outcome.get(status, f"failed: {error or 'no reason'}")
    data = {"job": job.id, "status": status, "output_repo": job.output_repo, "error": error}
    if session.get(User, job.user_id) is not None:  # its user may have been deleted since
        notify(session, user_id=job.user_id, kind="job_finished", title=title, data=data)
    enqueue(session, job.workspace_id, "job.finished", data)


@dataclass(frozen=True)
class NotificationView:
    id: int
    kind: str
    actor: str | None
    title: str
    data: dict[str, Any]
    read: bool
    created_at: datetime


class Notifications:
    def __init__(self, db: Database):
        self.db = db

    def listing(
        self,
        principal: Principal,
        *,
        unread_only: bool = False,
        before: int | None = None,
        limit: int = 50,
    ) -> tuple[list[NotificationView], int]:
        """The caller's notifications, newest first, and how many are unread."""
        query = (
            select(Notification)
            .where(Notification.user_id == principal.user_id)
            .order_by(Notification.id.desc())
            .limit(limit)
        )
        if unread_only:
            query = query.where(Notification.read_at.is_(None))
        if before is not None:
            query = query.where(Notification.id < before)
        with self.db.read() as session:
            rows = list(session.scalars(query))
            unread = session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.user_id == principal.user_id, Notification.read_at.is_(None))
            )
        views = [
            NotificationView(
                n.id,
                n.kind,
                n.actor,
                n.title,
                dict(n.data or {}),
                n.read_at is not None,
                n.created_at,
            )
            for n in rows
        ]
        return views, int(unread or 0)

    def mark_read(self, principal: Principal, ids: list[int] | None) -> int:
        """Mark some (or, with None, all) of the caller's notifications read; returns how many."""
        query = update(Notification).where(
            Notification.user_id == principal.user_id, Notification.read_at.is_(None)
        )
        if ids is not None:
            query = query.where(Notification.id.in_(ids))
        with self.db.write() as session:
            done = session.execute(query.values(read_at=utcnow()))
            return int(getattr(done, "rowcount", 0) or 0)
