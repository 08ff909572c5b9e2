"""Social signals: likes of apps, follows of users and workspaces, and the trending score.

Trending (the same formula for repos and apps)::

    trending = Σ_{d=0}^{29} 0.5^(d/3) · (3·likes_d + runs_d + downloads_d)

where ``d`` is days ago (UTC; 0 is today), so an event's weight halves every three days and
nothing older than 30 days counts. Likes weigh three times a run or a download: they cost the
user a decision. Runs are runs of an app's published versions (drafts do not count);
downloads are a repo's downloads of each day, read from daily snapshots of the hub's download
counter (:meth:`Social.snapshot_downloads`, which the server runs every few minutes).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from danlu.builder.tables import AppRun
from danlu.community.tables import Activity, AppLike, DownloadDay, Follow
from danlu.community.targets import (
    Target,
    app_target,
    find_app,
    repo_visible_clause,
    require_personal,
    target_of_repo,
)
from danlu.core.db import Database
from danlu.core.errors import Conflict, InvalidRequest, NotFound
from danlu.core.keys import Principal
from danlu.core.tables import User, Workspace
from danlu.hub.tables import Repo, RepoLike, RepoType

WINDOW_DAYS = 30
HALF_LIFE_DAYS = 3.0
LIKE_WEIGHT = 3.0
FOLLOW_KINDS = ("user", "workspace")


def decay(days_ago: int) -> float:
    return math.pow(0.5, days_ago / HALF_LIFE_DAYS)


def _day(value: Any) -> date:
    """A SQL ``date()`` result: a string on SQLite, a date on PostgreSQL."""
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _today() -> date:
    return datetime.now(UTC).date()


def _per_day(
    session: Session, id_column: Any, when_column: Any, ids: list[str], since: datetime, *extra: Any
) -> dict[str, dict[date, int]]:
    """Counts per target and UTC day since ``since``, grouped in SQL."""
    day = func.date(when_column)
    rows = session.execute(
        select(id_column, day, func.count())
        .where(id_column.in_(ids), when_column >= since, *extra)
        .group_by(id_column, day)
    ).all()
    counts: dict[str, dict[date, int]] = defaultdict(dict)
    for target_id, when, count in rows:
        counts[target_id][_day(when)] = int(count)
    return counts


def score(events: dict[date, float], today: date) -> float:
    return sum(weight * decay((today - day).days) for day, weight in events.items())


@dataclass(frozen=True)
class Counts:
    likes: int
    runs: int
    trending: float


def app_counts(session: Session, app_ids: list[str]) -> dict[str, Counts]:
    """Likes, runs (published versions) and the trending score of each app."""
    if not app_ids:
        return {}
    likes = dict(
        session.execute(
            select(AppLike.app_id, func.count())
            .where(AppLike.app_id.in_(app_ids))
            .group_by(AppLike.app_id)
        ).all()
    )
    runs = dict(
        session.execute(
            select(AppRun.app_id, func.count())
            .where(AppRun.app_id.in_(app_ids), AppRun.version.is_not(None))
            .group_by(AppRun.app_id)
        ).all()
    )
    today = _today()
    since = datetime.combine(today - timedelta(days=WINDOW_DAYS - 1), datetime.min.time(), UTC)
    recent_likes = _per_day(session, AppLike.app_id, AppLike.created_at, app_ids, since)
    recent_runs = _per_day(
        session, AppRun.app_id, AppRun.created_at, app_ids, since, AppRun.version.is_not(None)
    )
    result = {}
    for app_id in app_ids:
        events: dict[date, float] = defaultdict(float)
        for day, n in recent_likes.get(app_id, {}).items():
            events[day] += LIKE_WEIGHT * n
        for day, n in recent_runs.get(app_id, {}).items():
            events[day] += n
        result[app_id] = Counts(
            int(likes.get(app_id, 0)), int(runs.get(app_id, 0)), round(score(events, today), 4)
        )
    return result


def repo_trending(session: Session, repo_ids: list[str]) -> dict[str, float]:
    """The trending score of each repo: decayed likes and daily downloads."""
    if not repo_ids:
        return {}
    today = _today()
    since = datetime.combine(today - timedelta(days=WINDOW_DAYS - 1), datetime.min.time(), UTC)
    likes = _per_day(session, RepoLike.repo_id, RepoLike.created_at, repo_ids, since)
    first = (today - timedelta(days=WINDOW_DAYS)).isoformat()
    snapshots: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for row in session.scalars(
        select(DownloadDay)
        .where(DownloadDay.repo_id.in_(repo_ids), DownloadDay.day >= first)
        .order_by(DownloadDay.repo_id, DownloadDay.day)
    ):
        snapshots[row.repo_id].append((row.day, row.total))
    result = {}
    for repo_id in repo_ids:
        events: dict[date, float] = defaultdict(float)
        for day, n in likes.get(repo_id, {}).items():
            events[day] += LIKE_WEIGHT * n
        days = snapshots.get(repo_id, [])
        for (_, before), (day_text, total) in pairwise(days):
            events[date.fromisoformat(day_text)] += max(total - before, 0)
        result[repo_id] = round(score(events, today), 4)
    return result


@dataclass(frozen=True)
class FollowView:
    kind: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class TrendingItem:
    target: Target
    likes: int
    downloads: int
    runs: int
    trending: float


class Social:
    def __init__(self, db: Database, *, anonymous_read: bool = True):
        self.db = db
        self.anonymous_read = anonymous_read

    # --- likes of apps -----------------------------------------------------------------

    def like_app(self, principal: Principal, app_ref: str, liked: bool) -> int:
        """Like or unlike (idempotent); returns the app's like count."""
        require_personal(principal)
        with self.db.write() as session:
            target = app_target(session, principal, app_ref)
            existing = session.get(AppLike, (principal.user_id, target.id))
            if liked and existing is None:
                session.add(AppLike(user_id=principal.user_id, app_id=target.id))
                session.add(
                    Activity(
                        actor_id=principal.user_id,
                        workspace_id=target.workspace_id,
                        verb="app.liked",
                        app_id=target.id,
                        data={"target": target.as_dict()},
                    )
                )
            elif not liked and existing is not None:
                session.delete(existing)
            session.flush()
            count = session.scalar(
                select(func.count()).select_from(AppLike).where(AppLike.app_id == target.id)
            )
            return int(count or 0)

    def app_likers(self, principal: Principal | None, app_ref: str) -> list[User]:
        with self.db.read() as session:
            app = find_app(session, principal, app_ref)
            return list(
                session.scalars(
                    select(User)
                    .join(AppLike, AppLike.user_id == User.id)
                    .where(AppLike.app_id == app.id)
                    .order_by(AppLike.created_at)
                )
            )

    # --- follows -----------------------------------------------------------------------

    def _resolve(self, session: Session, kind: str, name: str) -> tuple[str, str]:
        if kind == "user":
            user = session.scalar(select(User).where(func.lower(User.username) == name.lower()))
            if user is None:
                raise NotFound(f"no user named {name!r}", param="user")
            return user.id, user.username
        if kind == "workspace":
            workspace = session.scalar(
                select(Workspace).where(func.lower(Workspace.slug) == name.lower())
            )
            if workspace is None:
                raise NotFound(f"no workspace named {name!r}", param="workspace")
            return workspace.id, workspace.slug
        raise InvalidRequest("follow a 'user' or a 'workspace'", param="kind")

    def follow(self, principal: Principal, kind: str, name: str) -> FollowView:
        require_personal(principal)
        with self.db.write() as session:
            target_id, shown = self._resolve(session, kind, name)
            if kind == "user" and target_id == principal.user_id:
                raise Conflict("you cannot follow yourself", param="user")
            existing = session.get(Follow, (principal.user_id, kind, target_id))
            if existing is None:
                existing = Follow(follower_id=principal.user_id, kind=kind, target_id=target_id)
                session.add(existing)
                session.add(
                    Activity(
                        actor_id=principal.user_id,
                        workspace_id=target_id if kind == "workspace" else None,
                        verb=f"{kind}.followed",
                        data={"target": {"kind": kind, "name": shown}},
                    )
                )
                session.flush()
            return FollowView(kind, shown, existing.created_at)

    def unfollow(self, principal: Principal, kind: str, name: str) -> None:
        require_personal(principal)
        with self.db.write() as session:
            target_id, _ = self._resolve(session, kind, name)
            existing = session.get(Follow, (principal.user_id, kind, target_id))
            if existing is None:
                raise NotFound(f"you do not follow {kind} {name!r}", param=kind)
            session.delete(existing)

    def following(self, user_id: str) -> list[FollowView]:
        with self.db.read() as session:
            rows = list(
                session.scalars(
                    select(Follow)
                    .where(Follow.follower_id == user_id)
                    .order_by(Follow.created_at.desc())
                )
            )
            users = _names(
                session, User, User.username, [f.target_id for f in rows if f.kind == "user"]
            )
            spaces = _names(
                session,
                Workspace,
                Workspace.slug,
                [f.target_id for f in rows if f.kind == "workspace"],
            )
        shown = {**users, **spaces}
        return [
            FollowView(f.kind, shown[f.target_id], f.created_at)
            for f in rows
            if f.target_id in shown
        ]

    def followers(self, kind: str, name: str) -> list[str]:
        """Usernames following a user or a workspace, earliest first."""
        with self.db.read() as session:
            target_id, _ = self._resolve(session, kind, name)
            return list(
                session.scalars(
                    select(User.username)
                    .join(Follow, Follow.follower_id == User.id)
                    .where(Follow.kind == kind, Follow.target_id == target_id)
                    .order_by(Follow.created_at)
                )
            )

    def profile(self, username: str) -> dict[str, Any]:
        """A user's public numbers: followers, following, likes given."""
        with self.db.read() as session:
            user_id, shown = self._resolve(session, "user", username)
            followers = session.scalar(
                select(func.count())
                .select_from(Follow)
                .where(Follow.kind == "user", Follow.target_id == user_id)
            )
            following = session.scalar(
                select(func.count()).select_from(Follow).where(Follow.follower_id == user_id)
            )
            liked_apps = session.scalar(
                select(func.count()).select_from(AppLike).where(AppLike.user_id == user_id)
            )
            liked_repos = session.scalar(
                select(func.count()).select_from(RepoLike).where(RepoLike.user_id == user_id)
            )
        return {
            "name": shown,
            "followers": int(followers or 0),
            "following": int(following or 0),
            "likes_given": int(liked_apps or 0) + int(liked_repos or 0),
        }

    # --- trending and download snapshots -----------------------------------------------

    def trending_repos(
        self, principal: Principal | None, repo_type: RepoType, limit: int = 20
    ) -> list[TrendingItem]:
        """The repos the caller may see, highest trending score first."""
        with self.db.read() as session:
            repos = list(
                session.scalars(
                    select(Repo).where(
                        Repo.type == repo_type, repo_visible_clause(principal, self.anonymous_read)
                    )
                )
            )
            scores = repo_trending(session, [r.id for r in repos])
        items = [
            TrendingItem(target_of_repo(r), r.likes, r.downloads, 0, scores.get(r.id, 0.0))
            for r in repos
        ]
        items.sort(key=lambda i: (-i.trending, -i.likes, i.target.name))
        return items[:limit]

    def snapshot_downloads(self) -> int:
        """Record today's download counter of every repo; returns how many rows changed."""
        today = _today().isoformat()
        with self.db.write() as session:
            totals = dict(session.execute(select(Repo.id, Repo.downloads)).all())
            seen = {
                row.repo_id: row
                for row in session.scalars(select(DownloadDay).where(DownloadDay.day == today))
            }
            changed = 0
            for repo_id, total in totals.items():
                row = seen.get(repo_id)
                if row is None:
                    session.add(DownloadDay(repo_id=repo_id, day=today, total=int(total or 0)))
                    changed += 1
                elif row.total != total:
                    row.total = int(total or 0)
                    changed += 1
            return changed


def _names(session: Session, table: Any, column: Any, ids: Iterable[str]) -> dict[str, str]:
    wanted = list(ids)
    if not wanted:
        return {}
    return dict(session.execute(select(table.id, column).where(table.id.in_(wanted))).all())
