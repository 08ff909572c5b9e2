"""Fine-tuning jobs and their event log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from danlu.core.tables import Base, UTCDateTime, utcnow


class FineTune(Base):
    __tablename__ = "fine_tunes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(String(32))
    base_model: Mapped[str] = mapped_column(String(200))  # a hub model repo id
    base_revision: Mapped[str] = mapped_column(String(64))  # the commit, pinned at creation
    dataset: Mapped[str] = mapped_column(String(200))  # a hub dataset repo id
    dataset_revision: Mapped[str] = mapped_column(String(64))
    dataset_files: Mapped[list[str]] = mapped_column(JSON, default=list)
    method: Mapped[str] = mapped_column(String(16))  # lora, full
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    output_repo: Mapped[str] = mapped_column(String(200))
    serve: Mapped[bool] = mapped_column(Boolean, default=False)
    # queued, running, succeeded, failed, cancelled
    status: Mapped[str] = mapped_column(String(16), index=True)
    stage: Mapped[str] = mapped_column(String(32), default="queued")  # finer: validating, training…
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the latest report
    split: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # seed, sizes, held-out rows
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # before / after
    served_model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(128), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class FineTuneEvent(Base):
    __tablename__ = "fine_tune_events"
    __table_args__ = (Index("ix_fine_tune_events_job_id_id", "job_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("fine_tunes.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # status, progress, log, metrics
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
