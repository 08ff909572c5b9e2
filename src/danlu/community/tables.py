"""Community tables: discussions and their events, likes of apps, follows, activity,
notifications, workspace webhooks (with an outbox of deliveries), studio profiles and links,
download snapshots for trending, and the moderation audit log.

A discussion belongs to exactly one repo or one app (two nullable foreign keys, so deleting the
repo or app deletes its discussions, notifications and links with it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

# The tables these refer to must be known wherever this module is used (a fine-tuning worker
# imports it to notify a job's end): their modules are imported here, not left to chance.
from danlu.builder import tables as builder_tables
from danlu.core.tables import Base, UTCDateTime, utcnow
from danlu.hub import tables as hub_tables
from danlu.knowledge import tables as knowledge_tables

REFERENCED = (builder_tables.App, hub_tables.Repo, knowledge_tables.KnowledgeBase)


class Discussion(Base):
    """A thread on a repo or an app, numbered per target (1, 2, …) as on the Hugging Face Hub."""

    __tablename__ = "community_discussions"
    __table_args__ = (UniqueConstraint("repo_id", "num"), UniqueConstraint("app_id", "num"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    repo_id: Mapped[str | None] = mapped_column(
        ForeignKey("repos.id", ondelete="CASCADE"), nullable=True
    )
    app_id: Mapped[str | None] = mapped_column(
        ForeignKey("apps.id", ondelete="CASCADE"), nullable=True
    )
    # The workspace that owns the repo or app: its members are the maintainers.
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    num: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, closed
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    author_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DiscussionEvent(Base):
    """One event of a discussion: a comment, a status change, a title change or a pin."""

    __tablename__ = "community_events"
    __table_args__ = (
        Index("ix_community_events_discussion_created", "discussion_id", "created_at"),
    )

    # 24 lowercase hex digits, like the Hub's ids (the client lower-cases them in URLs).
    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    discussion_id: Mapped[str] = mapped_column(
        ForeignKey("community_discussions.id", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(String(16))  # comment, status-change, title-change, pin
    author_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    # The comment this one replies to.
    parent_id: Mapped[str | None] = mapped_column(String(24), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    raw: Mapped[str] = mapped_column(Text, default="")  # a comment's Markdown, as written
    html: Mapped[str] = mapped_column(Text, default="")  # … rendered and sanitized
    edited: Mapped[bool] = mapped_column(Boolean, default=False)
    edited_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CommentRevision(Base):
    """Every version of a comment, the first included: its edit history."""

    __tablename__ = "community_comment_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(
        ForeignKey("community_events.id", ondelete="CASCADE"), index=True
    )
    raw: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AppLike(Base):
    """A user's like of an app (repo likes live in the hub's ``repo_likes``)."""

    __tablename__ = "community_app_likes"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    app_id: Mapped[str] = mapped_column(
        ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Follow(Base):
    """A user following a user or a workspace."""

    __tablename__ = "community_follows"

    follower_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # user, workspace
    # A user id or a workspace id (kept when either is deleted: it then matches nothing).
    target_id: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Activity(Base):
    """Something a user did in the community, for the feeds of those who follow them.

    Pushes, publishes and repo likes are not copied here: the feed reads them from the hub's
    and the builder's own tables.
    """

    __tablename__ = "community_activities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    actor_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The workspace the thing belongs to (a followed workspace shows it).
    workspace_id: Mapped[str | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=True, index=True
    )
    verb: Mapped[str] = mapped_column(String(32))
    repo_id: Mapped[str | None] = mapped_column(
        ForeignKey("repos.id", ondelete="CASCADE"), nullable=True
    )
    app_id: Mapped[str | None] = mapped_column(
        ForeignKey("apps.id", ondelete="CASCADE"), nullable=True
    )
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class Notification(Base):
    """Something a user should know: a reply, a mention, a status change, a finished job."""

    __tablename__ = "community_notifications"
    __table_args__ = (Index("ix_community_notifications_user_id_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # reply, mention, status, job_finished
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    title: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    repo_id: Mapped[str | None] = mapped_column(
        ForeignKey("repos.id", ondelete="CASCADE"), nullable=True
    )
    app_id: Mapped[str | None] = mapped_column(
        ForeignKey("apps.id", ondelete="CASCADE"), nullable=True
    )
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Webhook(Base):
    """A workspace's webhook: where its events are POSTed, signed with its secret."""

    __tablename__ = "community_webhooks"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)  # sealed (AES-GCM) with the server secret
    events: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: every event
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookDelivery(Base):
    """One event to POST to a workspace's webhook: written with the event (an outbox), sent by
    the server's background loop, retried with backoff."""

    __tablename__ = "community_webhook_deliveries"
    __table_args__ = (
        Index("ix_community_webhook_deliveries_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # sending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AppProfile(Base):
    """How a published app shows in the studio: cover, description, tags."""

    __tablename__ = "community_app_profiles"

    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    cover_url: Mapped[str] = mapped_column(String(1024), default="")
    description: Mapped[str] = mapped_column(Text, default="")  # empty: the app's own
    tags: Mapped[str] = mapped_column(Text, default="")  # ",a,b," for portable LIKE filters
    listed: Mapped[bool] = mapped_column(Boolean, default=True)
    duplicated_from: Mapped[str | None] = mapped_column(
        ForeignKey("apps.id", ondelete="SET NULL"), nullable=True, index=True
    )
    # The published version the DSL links were derived from.
    links_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AppLink(Base):
    """An app uses a model, a dataset or a knowledge base (from its DSL, or linked by hand)."""

    __tablename__ = "community_app_links"
    __table_args__ = (UniqueConstraint("app_id", "kind", "ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # model, dataset, knowledge_base
    ref: Mapped[str] = mapped_column(String(200))  # as written: a model name, a repo id, a kb id
    repo_id: Mapped[str | None] = mapped_column(
        ForeignKey("repos.id", ondelete="CASCADE"), nullable=True, index=True
    )
    kb_id: Mapped[str | None] = mapped_column(
        ForeignKey("knowledge_bases.id", ondelete="CASCADE"), nullable=True, index=True
    )
    source: Mapped[str] = mapped_column(String(8))  # dsl, manual


class DownloadDay(Base):
    """A repo's download counter as last seen on a day (UTC): its differences are the
    downloads of each day, which the trending score decays."""

    __tablename__ = "community_download_days"

    repo_id: Mapped[str] = mapped_column(
        ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD
    total: Mapped[int] = mapped_column(BigInteger)


class AuditEntry(Base):
    """A moderation action (hide, pin, close or rename by a maintainer, webhook changes)."""

    __tablename__ = "community_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    workspace_id: Mapped[str | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=True, index=True
    )
    target: Mapped[str] = mapped_column(String(300))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
