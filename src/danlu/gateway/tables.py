"""Gateway tables: upstream providers configured through the API or CLI (not the file)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from danlu.core.tables import Base, UTCDateTime, utcnow


class StoredProvider(Base):
    __tablename__ = "gateway_providers"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    preset: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The provider's options without its API key, which is sealed (danlu.core.secretbox).
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    api_key_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Bumped on every change, so every server process reloads what changed (see ProviderStore).
    revision: Mapped[int] = mapped_column(Integer, default=1)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LimitRule(Base):
    """Limits for one API key, user or workspace; subject ``*`` is the default for its scope."""

    __tablename__ = "gateway_limits"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)  # key, user, workspace
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    rpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    concurrency: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Models it may call (None: any). Names as clients send them.
    models: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
