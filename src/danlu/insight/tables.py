"""Insight's tables in the metadata database: each workspace's time zone, and annotations.

Events and rollups live in the insight store (``stores/``); what is edited by people
and belongs with the apps lives here, under the migrations like every other table.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from danlu.core.tables import Base, UTCDateTime, utcnow


class InsightWorkspace(Base):
    """A workspace's analytics settings: the time zone its days are counted in."""

    __tablename__ = "insight_workspaces"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    timezone: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Annotation(Base):
    """A run's answer marked good: a saved reply and/or a training example for the refinery."""

    __tablename__ = "insight_annotations"
    __table_args__ = (
        UniqueConstraint("app_id", "run_id"),
        Index("ix_insight_annotations_app_created", "app_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    run_id: Mapped[str] = mapped_column(String(40))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)  # the app's answer, or the annotator's edit
    saved_reply: Mapped[bool] = mapped_column(Boolean, default=False)
    training: Mapped[bool] = mapped_column(Boolean, default=False)
    exported_to: Mapped[str | None] = mapped_column(String(200), nullable=True)
    exported_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
