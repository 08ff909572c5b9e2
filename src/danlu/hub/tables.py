"""Hub tables: repos, commits, the files of each commit, and refs.

Every commit stores its complete file list (a snapshot), so reading a tree at
any revision is one indexed query and nothing has to be replayed. A commit,
its files and the move of its branch are written in one transaction, and the
branch moves only if it still points where the commit started (compare and
swap), so a crash or a race never leaves a half-made commit or a dangling ref.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
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

from danlu.core.tables import Base, UTCDateTime, utcnow


class RepoType(StrEnum):
    MODEL = "model"
    DATASET = "dataset"
    SPACE = "space"

    @property
    def plural(self) -> str:
        return f"{self.value}s"


class Repo(Base):
    __tablename__ = "repos"
    __table_args__ = (UniqueConstraint("type", "workspace_id", "name_key"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    namespace: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(96))
    # Lower-cased name: repo names are unique regardless of case, as on the public hubs.
    name_key: Mapped[str] = mapped_column(String(96))
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    card: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Denormalised from the card for filtering with plain, portable SQL.
    tags: Mapped[str] = mapped_column(Text, default="")
    pipeline_tag: Mapped[str | None] = mapped_column(String(64), nullable=True)
    library_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    license: Mapped[str | None] = mapped_column(String(64), nullable=True)
    downloads: Mapped[int] = mapped_column(BigInteger, default=0)
    likes: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def repo_id(self) -> str:
        return f"{self.namespace}/{self.name}"


class Commit(Base):
    __tablename__ = "commits"
    __table_args__ = (Index("ix_commits_repo_created", "repo_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"))
    parent_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    author: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CommitFile(Base):
    """One file as it stands in one commit."""

    __tablename__ = "commit_files"

    commit_id: Mapped[str] = mapped_column(
        ForeignKey("commits.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    # The id git would give the blob: what the Hugging Face protocol calls blobId / ETag.
    git_sha1: Mapped[str] = mapped_column(String(40))
    lfs: Mapped[bool] = mapped_column(Boolean, default=False)


class RefKind(StrEnum):
    BRANCH = "branch"
    TAG = "tag"


class Ref(Base):
    __tablename__ = "refs"

    repo_id: Mapped[str] = mapped_column(
        ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    commit_id: Mapped[str] = mapped_column(String(40))


class ServedModel(Base):
    """A hub repo the gateway serves as a model (a GGUF file at a pinned commit)."""

    __tablename__ = "served_models"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"), index=True)
    commit_id: Mapped[str] = mapped_column(String(40))
    path: Mapped[str] = mapped_column(String(1024))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RepoLike(Base):
    """A user's like of a repo; ``Repo.likes`` counts them."""

    __tablename__ = "repo_likes"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    repo_id: Mapped[str] = mapped_column(
        ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
