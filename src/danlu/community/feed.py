"""The activity feed: what the users and workspaces you follow did, newest first.

Most of it is read where it already lives — pushes and new repos from the hub's commits, app
publishes from the builder's versions, repo likes from the hub's likes — and the rest
(discussions, comments, app likes, duplicates, follows) from ``community_activities``. Each
source is one indexed query limited to a page; the pages are merged by time. An item about a
repo or app the reader may not see is never shown (the same rules as everywhere: private
repos and unpublished or closed apps stay inside their workspace).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from danlu.builder.tables import App, AppVersion
from danlu.community.tables import Activity, Follow
from danlu.community.targets import app_visible_clause, repo_visible_clause
from danlu.core.db import Database
from danlu.core.keys import Principal
from danlu.core.tables import User, Workspace
from danlu.hub.tables import Commit, Repo, RepoLike

MAX_PAGE = 100


@dataclass(frozen=True)
class FeedItem:
    id: str
    verb: str
    actor: str
    workspace: str | None
    target: dict[str, str] | None
    data: dict[str, Any]
    created_at: datetime


def _repo_ref(repo: Repo) -> dict[str, str]:
    return {"kind": repo.type, "name": repo.repo_id, "workspace": repo.namespace}


class Feed:
    def __init__(self, db: Database, *, anonymous_read: bool = True):
        self.db = db
        self.anonymous_read = anonymous_read

    def _followed(self, session: Session, principal: Principal) -> tuple[dict[str, str], list[str]]:
        """({user id: username} and [workspace ids]) the caller follows."""
        users = dict(
            session.execute(
                select(User.id, User.username)
                .join(Follow, and_(Follow.target_id == User.id, Follow.kind == "user"))
                .where(Follow.follower_id == principal.user_id)
            ).all()
        )
        workspaces = list(
            session.scalars(
                select(Follow.target_id).where(
                    Follow.follower_id == principal.user_id, Follow.kind == "workspace"
                )
            )
        )
        return users, workspaces

    def items(
        self, principal: Principal, *, before: datetime | None = None, limit: int = 30
    ) -> list[FeedItem]:
        limit = max(1, min(limit, MAX_PAGE))
        with self.db.read() as session:
            users, workspaces = self._followed(session, principal)
            if not users and not workspaces:
                return []
            names = list(users.values())
            sources = [
                self._activities(session, principal, users, workspaces, before, limit),
                self._commits(session, principal, names, workspaces, before, limit),
                self._publishes(session, principal, names, workspaces, before, limit),
                self._repo_likes(session, principal, users, before, limit),
            ]
        merged = heapq.merge(*sources, key=lambda item: item.created_at, reverse=True)
        return [item for _, item in zip(range(limit), merged, strict=False)]

    def _activities(
        self,
        session: Session,
        principal: Principal,
        users: dict[str, str],
        workspaces: list[str],
        before: datetime | None,
        limit: int,
    ) -> list[FeedItem]:
        query = (
            select(Activity, User.username, Workspace.slug, App.name)
            .join(User, User.id == Activity.actor_id)
            .outerjoin(Workspace, Workspace.id == Activity.workspace_id)
            .outerjoin(Repo, Repo.id == Activity.repo_id)
            .outerjoin(App, App.id == Activity.app_id)
            .where(
                or_(Activity.actor_id.in_(list(users)), Activity.workspace_id.in_(workspaces)),
                Activity.actor_id != principal.user_id,
                or_(
                    Activity.repo_id.is_(None),
                    repo_visible_clause(principal, self.anonymous_read),
                ),
                or_(Activity.app_id.is_(None), app_visible_clause(principal)),
            )
            .order_by(Activity.created_at.desc(), Activity.id.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(Activity.created_at < before)
        return [
            FeedItem(
                f"activity:{a.id}",
                a.verb,
                actor,
                slug,
                (a.data or {}).get("target"),
                {
                    **{k: v for k, v in (a.data or {}).items() if k != "target"},
                    **({"app_name": app_name} if app_name is not None else {}),
                },
                a.created_at,
            )
            for a, actor, slug, app_name in session.execute(query).all()
        ]

    def _commits(
        self,
        session: Session,
        principal: Principal,
        names: list[str],
        workspaces: list[str],
        before: datetime | None,
        limit: int,
    ) -> list[FeedItem]:
        query = (
            select(Commit, Repo)
            .join(Repo, Repo.id == Commit.repo_id)
            .where(
                or_(Commit.author.in_(names), Repo.workspace_id.in_(workspaces)),
                Commit.author != principal.username,
                repo_visible_clause(principal, self.anonymous_read),
            )
            .order_by(Commit.created_at.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(Commit.created_at < before)
        return [
            FeedItem(
                f"commit:{c.id}",
                "repo.created" if c.parent_id is None else "repo.updated",
                c.author,
                repo.namespace,
                _repo_ref(repo),
                {"commit": c.id, "title": c.title},
                c.created_at,
            )
            for c, repo in session.execute(query).all()
        ]

    def _publishes(
        self,
        session: Session,
        principal: Principal,
        names: list[str],
        workspaces: list[str],
        before: datetime | None,
        limit: int,
    ) -> list[FeedItem]:
        query = (
            select(AppVersion, App, Workspace.slug)
            .join(App, App.id == AppVersion.app_id)
            .join(Workspace, Workspace.id == App.workspace_id)
            .where(
                or_(AppVersion.created_by.in_(names), App.workspace_id.in_(workspaces)),
                AppVersion.created_by != principal.username,
                app_visible_clause(principal),
            )
            .order_by(AppVersion.created_at.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(AppVersion.created_at < before)
        return [
            FeedItem(
                f"publish:{app.id}:{v.version}",
                "app.published",
                v.created_by,
                slug,
                {"kind": "app", "name": app.slug, "workspace": slug},
                {"version": v.version, "app_name": app.name, "note": v.note},
                v.created_at,
            )
            for v, app, slug in session.execute(query).all()
        ]

    def _repo_likes(
        self,
        session: Session,
        principal: Principal,
        users: dict[str, str],
        before: datetime | None,
        limit: int,
    ) -> list[FeedItem]:
        if not users:
            return []
        query = (
            select(RepoLike, Repo)
            .join(Repo, Repo.id == RepoLike.repo_id)
            .where(
                RepoLike.user_id.in_(list(users)),
                repo_visible_clause(principal, self.anonymous_read),
            )
            .order_by(RepoLike.created_at.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(RepoLike.created_at < before)
        return [
            FeedItem(
                f"like:{like.user_id}:{repo.id}",
                "repo.liked",
                users[like.user_id],
                repo.namespace,
                _repo_ref(repo),
                {},
                like.created_at,
            )
            for like, repo in session.execute(query).all()
        ]
