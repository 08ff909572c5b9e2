"""The audit log of moderation: who hid, pinned, closed or renamed what, and webhook changes.

Entries are written in the same transaction as the action, so an action without its entry
cannot happen. Site admins read every entry; owners and admins of a workspace read the
entries about their workspace's repos and apps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from danlu.community.tables import AuditEntry
from danlu.core.db import Database
from danlu.core.errors import PermissionDenied
from danlu.core.keys import Principal
from danlu.core.tables import Membership, Role, Workspace


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    workspace_id: str | None,
    target: str,
    data: dict[str, Any] | None = None,
) -> None:
    """Add an entry inside the caller's transaction."""
    session.add(
        AuditEntry(
            actor=actor, action=action, workspace_id=workspace_id, target=target, data=data or {}
        )
    )


@dataclass(frozen=True)
class AuditView:
    id: int
    actor: str
    action: str
    workspace: str | None
    target: str
    data: dict[str, Any]
    created_at: datetime


class Audit:
    def __init__(self, db: Database):
        self.db = db

    def listing(
        self,
        principal: Principal,
        *,
        workspace: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[AuditView]:
        """Entries the caller may read, newest first."""
        query = (
            select(AuditEntry, Workspace.slug)
            .outerjoin(Workspace, Workspace.id == AuditEntry.workspace_id)
            .order_by(AuditEntry.id.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(AuditEntry.id < before)
        if workspace is not None:
            query = query.where(Workspace.slug == workspace)
        with self.db.read() as session:
            if not principal.is_admin:
                managed = select(Membership.workspace_id).where(
                    Membership.user_id == principal.user_id,
                    Membership.role.in_([Role.OWNER.value, Role.ADMIN.value]),
                )
                if workspace is not None:
                    allowed = session.scalar(
                        select(Workspace.id).where(
                            Workspace.slug == workspace, Workspace.id.in_(managed)
                        )
                    )
                    if allowed is None:
                        raise PermissionDenied(
                            "the audit log of a workspace is for its owners and admins "
                            "(and site admins)"
                        )
                query = query.where(AuditEntry.workspace_id.in_(managed))
            rows = session.execute(query).all()
        return [
            AuditView(e.id, e.actor, e.action, slug, e.target, dict(e.data or {}), e.created_at)
            for e, slug in rows
        ]
