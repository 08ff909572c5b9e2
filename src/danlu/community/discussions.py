"""Discussions on repos and apps: threads, Markdown comments with replies and edit history,
close and reopen, rename, pin, and hiding for moderation.

Who may do what (``maintainers`` are members, not viewers, of the repo's or app's workspace):

==============================  ==========================================================
read, open, comment, reply       anyone who can see the repo or app (a key that can post:
                                 ``hub:write`` on repos, ``inference`` on apps)
edit a comment                   its author
hide a comment                   its author, maintainers, site admins (irreversible)
close, reopen, rename            the discussion's author, maintainers, site admins
pin, unpin                       maintainers, site admins
==============================  ==========================================================

Everything a maintainer or admin does to someone else's words is written to the audit log in
the same transaction. Replies, mentions and status changes notify the people concerned, but
only people who can see the repo or app: a private repo's discussion never reaches outsiders.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from danlu.community import audit
from danlu.community.markdown import MAX_COMMENT_CHARS, Rendered, render
from danlu.community.notifications import notify
from danlu.community.tables import Activity, CommentRevision, Discussion, DiscussionEvent
from danlu.community.targets import Target, is_maintainer, user_may_see
from danlu.community.webhooks import enqueue
from danlu.core.db import Database
from danlu.core.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from danlu.core.ids import new_id
from danlu.core.keys import Principal, Scope
from danlu.core.tables import Membership, Role, User, utcnow

PAGE_SIZE = 50  # what the Hub pages discussions by
STATUSES = ("open", "closed")


def event_id() -> str:
    """24 lowercase hex digits: milliseconds, then randomness (sortable, like the Hub's ids)."""
    return f"{int(time.time() * 1000):012x}{os.urandom(6).hex()}"


@dataclass(frozen=True)
class Person:
    name: str  # "deleted" once the user is gone
    fullname: str
    is_admin: bool
    # Relative to the discussion: "author" (opened it), "maintainer", "admin" (site admin).
    roles: tuple[str, ...] = ()


DELETED = Person("deleted", "deleted", False)


@dataclass(frozen=True)
class Revision:
    raw: str
    html: str
    author: str
    at: datetime


@dataclass(frozen=True)
class EventView:
    id: str
    type: str
    author: Person
    created_at: datetime
    updated_at: datetime
    parent_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    raw: str = ""
    html: str = ""
    edited: bool = False
    edited_by: Person | None = None
    hidden: bool = False
    hidden_by: str | None = None
    history: list[Revision] = field(default_factory=list)  # newest first, the first included


@dataclass(frozen=True)
class DiscussionView:
    num: int
    title: str
    status: str
    pinned: bool
    author: Person
    target: Target
    created_at: datetime
    updated_at: datetime
    num_comments: int
    events: list[EventView] = field(default_factory=list)


@dataclass(frozen=True)
class DiscussionPage:
    items: list[DiscussionView]
    total: int
    start: int
    closed: int


class Discussions:
    def __init__(self, db: Database):
        self.db = db

    # --- reading ---------------------------------------------------------------------

    def listing(
        self,
        target: Target,
        *,
        status: str | None = None,
        author: str | None = None,
        search: str | None = None,
        page: int = 0,
    ) -> DiscussionPage:
        """One page of the target's discussions: pinned first, then the newest."""
        where = [_of(target)]
        if status in STATUSES:
            where.append(Discussion.status == status)
        if author:
            where.append(
                Discussion.author_id.in_(
                    select(User.id).where(func.lower(User.username) == author.lower())
                )
            )
        if search:
            where.append(func.lower(Discussion.title).like(f"%{search.lower()}%"))
        start = max(page, 0) * PAGE_SIZE
        comments = (
            select(func.count())
            .where(
                DiscussionEvent.discussion_id == Discussion.id, DiscussionEvent.type == "comment"
            )
            .correlate(Discussion)
            .scalar_subquery()
        )
        with self.db.read() as session:
            total = session.scalar(select(func.count()).select_from(Discussion).where(*where)) or 0
            closed = session.scalar(
                select(func.count())
                .select_from(Discussion)
                .where(_of(target), Discussion.status == "closed")
            )
            rows = session.execute(
                select(Discussion, comments)
                .where(*where)
                .order_by(Discussion.pinned.desc(), Discussion.num.desc())
                .offset(start)
                .limit(PAGE_SIZE)
            ).all()
            people = _people(session, target, [d.author_id for d, _ in rows], None)
            items = [
                _view(d, target, _as_author(_person(people, d.author_id, None)), n or 0)
                for d, n in rows
            ]
        return DiscussionPage(items, int(total), start, int(closed or 0))

    def get(self, target: Target, num: int) -> DiscussionView:
        """A discussion with every event; hidden comments keep no text."""
        with self.db.read() as session:
            discussion = _find(session, target, num)
            return self._full(session, target, discussion)

    def _full(self, session: Session, target: Target, discussion: Discussion) -> DiscussionView:
        events = list(
            session.scalars(
                select(DiscussionEvent)
                .where(DiscussionEvent.discussion_id == discussion.id)
                .order_by(DiscussionEvent.created_at, DiscussionEvent.id)
            )
        )
        revisions = _revisions(session, [e.id for e in events if e.type == "comment"])
        people = _people(session, target, [e.author_id for e in events], discussion.author_id)
        people_by_name = {p.name.lower(): p for p in people.values()}
        views = [
            _event_view(
                e,
                _person(people, e.author_id, discussion.author_id),
                revisions.get(e.id, []),
                people_by_name,
            )
            for e in events
        ]
        comments = sum(1 for e in events if e.type == "comment")
        author = _person(people, discussion.author_id, discussion.author_id)
        return _view(discussion, target, author, comments, views)

    # --- writing ---------------------------------------------------------------------

    def create(
        self, principal: Principal, target: Target, title: str, description: str
    ) -> DiscussionView:
        """Open a discussion; the description is its first comment."""
        _require_post(principal, target)
        title = _title(title)
        rendered = render(_text(description)) if description.strip() else None
        for attempt in range(5):  # two openers racing for the same number: the loser retries
            try:
                with self.db.write() as session:
                    now = utcnow()
                    num = (
                        session.scalar(select(func.max(Discussion.num)).where(_of(target))) or 0
                    ) + 1
                    discussion = Discussion(
                        id=new_id("disc"),
                        repo_id=target.repo_id,
                        app_id=target.app_id,
                        workspace_id=target.workspace_id,
                        num=num,
                        title=title,
                        status="open",
                        pinned=False,
                        author_id=principal.user_id,
                        created_at=now,
                        updated_at=now,
                    )
                    session.add(discussion)
                    session.flush()
                    about = _about(target, num, title)
                    if rendered is not None:
                        event = self._add_comment(
                            session, principal, discussion, description, rendered, None
                        )
                        about["comment"] = event.id
                        self._tell_mentioned(
                            session, principal, target, rendered.mentions, about, set()
                        )
                    _activity(session, principal, target, "discussion.created", about)
                    enqueue(
                        session,
                        target.workspace_id,
                        "discussion.created",
                        {**about, "author": principal.username},
                    )
                    session.flush()
                    return self._full(session, target, discussion)
            except IntegrityError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def comment(
        self,
        principal: Principal,
        target: Target,
        num: int,
        raw: str,
        *,
        parent_id: str | None = None,
    ) -> EventView:
        """Add a comment (a reply when ``parent_id`` names another comment)."""
        _require_post(principal, target)
        rendered = render(_text(raw))
        with self.db.write() as session:
            discussion = _find(session, target, num)
            parent = None
            if parent_id is not None:
                parent = session.get(DiscussionEvent, parent_id.lower())
                if (
                    parent is None
                    or parent.discussion_id != discussion.id
                    or parent.type != "comment"
                ):
                    raise NotFound(
                        f"discussion #{num} has no comment {parent_id!r} to reply to",
                        param="parent",
                    )
            event = self._add_comment(session, principal, discussion, raw, rendered, parent)
            discussion.updated_at = utcnow()
            about = {**_about(target, num, discussion.title), "comment": event.id}
            told = self._tell_mentioned(session, principal, target, rendered.mentions, about, set())
            # A reply tells the author of the comment replied to, and the discussion's author.
            for user_id in (parent.author_id if parent else None, discussion.author_id):
                if user_id and user_id != principal.user_id and user_id not in told:
                    told.add(user_id)
                    notify(
                        session,
                        user_id=user_id,
                        kind="reply",
                        actor=principal.username,
                        title=f"{principal.username} replied in {target.name}#{num}: "
                        f"{discussion.title}",
                        data=about,
                        repo_id=target.repo_id,
                        app_id=target.app_id,
                    )
            _activity(session, principal, target, "discussion.comment", about)
            enqueue(
                session,
                target.workspace_id,
                "discussion.comment",
                {**about, "author": principal.username, "parent": parent.id if parent else None},
            )
            session.flush()
            return self._event_now(session, target, discussion, event)

    def edit_comment(
        self, principal: Principal, target: Target, num: int, comment_id: str, raw: str
    ) -> EventView:
        """Change one's own comment; every version stays in its history."""
        _require_post(principal, target)
        rendered = render(_text(raw))
        with self.db.write() as session:
            discussion = _find(session, target, num)
            event = _comment(session, discussion, comment_id, num)
            if event.author_id != principal.user_id:
                raise PermissionDenied("only its author can edit a comment")
            if event.hidden:
                raise Conflict("a hidden comment cannot be edited", param="comment_id")
            before = set(render(event.raw).mentions)
            now = utcnow()
            event.raw, event.html, event.edited = raw, rendered.html, True
            event.edited_by, event.updated_at = principal.username, now
            session.add(
                CommentRevision(
                    event_id=event.id,
                    raw=raw,
                    html=rendered.html,
                    author=principal.username,
                    created_at=now,
                )
            )
            about = {**_about(target, num, discussion.title), "comment": event.id}
            new = [m for m in rendered.mentions if m not in before]
            self._tell_mentioned(session, principal, target, new, about, set())
            session.flush()
            return self._event_now(session, target, discussion, event)

    def hide_comment(
        self,
        principal: Principal,
        target: Target,
        num: int,
        comment_id: str,
        reason: str | None = None,
    ) -> EventView:
        """Hide a comment for moderation (irreversible, as on the Hub): its text is no longer
        shown to anyone; the audit log keeps who hid it and why."""
        _require_post(principal, target)
        with self.db.write() as session:
            discussion = _find(session, target, num)
            event = _comment(session, discussion, comment_id, num)
            own = event.author_id == principal.user_id
            if not own and not _moderates(session, principal, target):
                raise PermissionDenied(
                    "only the comment's author, the maintainers and site admins can hide it"
                )
            if not event.hidden:
                event.hidden, event.hidden_by = True, principal.username
                event.updated_at = utcnow()
                if not own:
                    author = session.get(User, event.author_id) if event.author_id else None
                    audit.record(
                        session,
                        actor=principal.username,
                        action="comment.hide",
                        workspace_id=target.workspace_id,
                        target=f"{target.path}#{num}",
                        data={
                            "comment": event.id,
                            "author": author.username if author else "deleted",
                            "reason": (reason or "")[:500],
                        },
                    )
            session.flush()
            return self._event_now(session, target, discussion, event)

    def set_status(
        self,
        principal: Principal,
        target: Target,
        num: int,
        status: str,
        comment: str | None = None,
    ) -> EventView:
        """Close or reopen; an optional comment is posted with it."""
        if status not in STATUSES:
            raise InvalidRequest("status is 'open' or 'closed'", param="status")
        _require_post(principal, target)
        rendered = render(_text(comment)) if comment and comment.strip() else None
        with self.db.write() as session:
            discussion = _find(session, target, num)
            self._check_author_or_maintainer(
                session, principal, target, discussion, "close or reopen"
            )
            if discussion.status == status:
                raise Conflict(f"discussion #{num} is already {status}", param="status")
            discussion.status = status
            discussion.updated_at = utcnow()
            if rendered is not None and comment is not None:
                self._add_comment(session, principal, discussion, comment, rendered, None)
            event = self._add_event(
                session, principal, discussion, "status-change", {"status": status}
            )
            about = {**_about(target, num, discussion.title), "status": status}
            if discussion.author_id and discussion.author_id != principal.user_id:
                verb = "closed" if status == "closed" else "reopened"
                notify(
                    session,
                    user_id=discussion.author_id,
                    kind="status",
                    actor=principal.username,
                    title=f"{principal.username} {verb} your discussion {target.name}#{num}: "
                    f"{discussion.title}",
                    data=about,
                    repo_id=target.repo_id,
                    app_id=target.app_id,
                )
                audit.record(
                    session,
                    actor=principal.username,
                    action="discussion.close" if status == "closed" else "discussion.reopen",
                    workspace_id=target.workspace_id,
                    target=f"{target.path}#{num}",
                )
            enqueue(
                session,
                target.workspace_id,
                "discussion.status",
                {**about, "by": principal.username},
            )
            session.flush()
            return self._event_now(session, target, discussion, event)

    def rename(self, principal: Principal, target: Target, num: int, title: str) -> EventView:
        _require_post(principal, target)
        title = _title(title)
        with self.db.write() as session:
            discussion = _find(session, target, num)
            self._check_author_or_maintainer(session, principal, target, discussion, "rename")
            old = discussion.title
            discussion.title, discussion.updated_at = title, utcnow()
            event = self._add_event(
                session, principal, discussion, "title-change", {"from": old, "to": title}
            )
            if discussion.author_id != principal.user_id:
                audit.record(
                    session,
                    actor=principal.username,
                    action="discussion.rename",
                    workspace_id=target.workspace_id,
                    target=f"{target.path}#{num}",
                    data={"from": old, "to": title},
                )
            session.flush()
            return self._event_now(session, target, discussion, event)

    def pin(self, principal: Principal, target: Target, num: int, pinned: bool) -> DiscussionView:
        """Pin (or unpin) a discussion to the top of its list: maintainers and admins."""
        _require_post(principal, target)
        with self.db.write() as session:
            discussion = _find(session, target, num)
            if not _moderates(session, principal, target):
                raise PermissionDenied("only maintainers and site admins can pin discussions")
            if discussion.pinned != pinned:
                discussion.pinned = pinned
                self._add_event(session, principal, discussion, "pin", {"pinned": pinned})
                audit.record(
                    session,
                    actor=principal.username,
                    action="discussion.pin" if pinned else "discussion.unpin",
                    workspace_id=target.workspace_id,
                    target=f"{target.path}#{num}",
                )
            session.flush()
            return self._full(session, target, discussion)

    # --- helpers ---------------------------------------------------------------------

    def _check_author_or_maintainer(
        self,
        session: Session,
        principal: Principal,
        target: Target,
        discussion: Discussion,
        what: str,
    ) -> None:
        if discussion.author_id == principal.user_id or _moderates(session, principal, target):
            return
        raise PermissionDenied(
            f"only the discussion's author, the maintainers and site admins can {what} it"
        )

    def _add_event(
        self,
        session: Session,
        principal: Principal,
        discussion: Discussion,
        type_: str,
        data: dict[str, Any],
    ) -> DiscussionEvent:
        now = utcnow()
        event = DiscussionEvent(
            id=event_id(),
            discussion_id=discussion.id,
            type=type_,
            author_id=principal.user_id,
            data=data,
            created_at=now,
            updated_at=now,
        )
        session.add(event)
        session.flush()
        return event

    def _add_comment(
        self,
        session: Session,
        principal: Principal,
        discussion: Discussion,
        raw: str,
        rendered: Rendered,
        parent: DiscussionEvent | None,
    ) -> DiscussionEvent:
        event = self._add_event(session, principal, discussion, "comment", {})
        event.raw, event.html = raw, rendered.html
        event.parent_id = parent.id if parent else None
        session.add(
            CommentRevision(
                event_id=event.id,
                raw=raw,
                html=rendered.html,
                author=principal.username,
                created_at=event.created_at,
            )
        )
        session.flush()
        return event

    def _tell_mentioned(
        self,
        session: Session,
        principal: Principal,
        target: Target,
        names: Iterable[str],
        about: dict[str, Any],
        told: set[str],
    ) -> set[str]:
        """Notify the mentioned users who can see the target; returns who was told."""
        wanted = {n.lower() for n in names}
        if not wanted:
            return told
        users = session.scalars(select(User).where(func.lower(User.username).in_(wanted)))
        for user in users:
            if user.id == principal.user_id or user.id in told or user.disabled:
                continue
            if not user_may_see(session, user, target):
                continue  # a private repo's discussion never reaches outsiders
            told.add(user.id)
            notify(
                session,
                user_id=user.id,
                kind="mention",
                actor=principal.username,
                title=f"{principal.username} mentioned you in {target.name}#{about['num']}: "
                f"{about['title']}",
                data=about,
                repo_id=target.repo_id,
                app_id=target.app_id,
            )
        return told

    def _event_now(
        self, session: Session, target: Target, discussion: Discussion, event: DiscussionEvent
    ) -> EventView:
        people = _people(session, target, [event.author_id], discussion.author_id)
        revisions = _revisions(session, [event.id])
        people_by_name = {p.name.lower(): p for p in people.values()}
        return _event_view(
            event,
            _person(people, event.author_id, discussion.author_id),
            revisions.get(event.id, []),
            people_by_name,
        )


# --- module helpers ---------------------------------------------------------------------


def _of(target: Target) -> Any:
    if target.kind == "app":
        return Discussion.app_id == target.id
    return Discussion.repo_id == target.id


def _find(session: Session, target: Target, num: int) -> Discussion:
    discussion = session.scalar(select(Discussion).where(_of(target), Discussion.num == num))
    if discussion is None:
        raise NotFound(f"{target.name} has no discussion #{num}", param="num")
    return discussion


def _comment(
    session: Session, discussion: Discussion, comment_id: str, num: int
) -> DiscussionEvent:
    event = session.get(DiscussionEvent, comment_id.lower())
    if event is None or event.discussion_id != discussion.id or event.type != "comment":
        raise NotFound(f"discussion #{num} has no comment {comment_id!r}", param="comment_id")
    return event


def _require_post(principal: Principal, target: Target) -> None:
    """Posting needs a key that may write where the target lives (and not an app key)."""
    principal.require(Scope.INFERENCE if target.kind == "app" else Scope.HUB_WRITE)


def _moderates(session: Session, principal: Principal, target: Target) -> bool:
    return principal.is_admin or is_maintainer(session, principal.user_id, target)


def _title(title: str) -> str:
    title = (title or "").strip()
    if not 3 <= len(title) <= 200:
        raise InvalidRequest("a discussion's title is 3 to 200 characters long", param="title")
    return title


def _text(raw: str | None) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidRequest("the comment is empty; write something", param="comment")
    if len(raw) > MAX_COMMENT_CHARS:
        raise InvalidRequest(
            f"a comment is at most {MAX_COMMENT_CHARS} characters long", param="comment"
        )
    return raw


def _about(target: Target, num: int, title: str) -> dict[str, Any]:
    return {"target": target.as_dict(), "path": target.path, "num": num, "title": title}


def _activity(
    session: Session, principal: Principal, target: Target, verb: str, data: dict[str, Any]
) -> None:
    session.add(
        Activity(
            actor_id=principal.user_id,
            workspace_id=target.workspace_id,
            verb=verb,
            repo_id=target.repo_id,
            app_id=target.app_id,
            data=data,
        )
    )


def _people(
    session: Session, target: Target, user_ids: Iterable[str | None], author_id: str | None
) -> dict[str, Person]:
    """The users behind some events, with their roles in this discussion: one query each."""
    ids = {u for u in user_ids if u} | ({author_id} if author_id else set())
    if not ids:
        return {}
    users = list(session.scalars(select(User).where(User.id.in_(ids))))
    maintainers = set(
        session.scalars(
            select(Membership.user_id).where(
                Membership.workspace_id == target.workspace_id,
                Membership.user_id.in_(ids),
                Membership.role.in_([r.value for r in Role if r.at_least(Role.MEMBER)]),
            )
        )
    )
    people = {}
    for user in users:
        roles = [
            role
            for role, has in (
                ("author", user.id == author_id),
                ("maintainer", user.id in maintainers),
                ("admin", user.is_admin),
            )
            if has
        ]
        people[user.id] = Person(user.username, user.display_name, user.is_admin, tuple(roles))
    return people


def _person(people: dict[str, Person], user_id: str | None, author_id: str | None) -> Person:
    found = people.get(user_id) if user_id else None
    if found is None:
        return DELETED
    if user_id != author_id and "author" in found.roles:
        # The same user seen from another discussion's point of view is not its author.
        return Person(
            found.name,
            found.fullname,
            found.is_admin,
            tuple(r for r in found.roles if r != "author"),
        )
    return found


def _as_author(person: Person) -> Person:
    """The person who opened a discussion, seen from that discussion."""
    if person is DELETED or "author" in person.roles:
        return person
    return Person(person.name, person.fullname, person.is_admin, ("author", *person.roles))


def _revisions(session: Session, event_ids: list[str]) -> dict[str, list[Revision]]:
    if not event_ids:
        return {}
    found: dict[str, list[Revision]] = {}
    for rev in session.scalars(
        select(CommentRevision)
        .where(CommentRevision.event_id.in_(event_ids))
        .order_by(CommentRevision.id.desc())
    ):
        found.setdefault(rev.event_id, []).append(
            Revision(rev.raw, rev.html, rev.author, rev.created_at)
        )
    return found


def _event_view(
    event: DiscussionEvent,
    author: Person,
    history: list[Revision],
    people_by_name: dict[str, Person],
) -> EventView:
    hidden = event.hidden
    editor = people_by_name.get((event.edited_by or "").lower()) if event.edited_by else None
    if event.edited_by and editor is None:
        editor = Person(event.edited_by, event.edited_by, False)
    return EventView(
        id=event.id,
        type=event.type,
        author=author,
        created_at=event.created_at,
        updated_at=event.updated_at,
        parent_id=event.parent_id,
        data=dict(event.data or {}),
        raw="" if hidden else event.raw,
        html="" if hidden else event.html,
        edited=event.edited,
        edited_by=editor,
        hidden=hidden,
        hidden_by=event.hidden_by,
        history=[] if hidden else history,
    )


def _view(
    discussion: Discussion,
    target: Target,
    author: Person,
    comments: int,
    events: list[EventView] | None = None,
) -> DiscussionView:
    return DiscussionView(
        num=discussion.num,
        title=discussion.title,
        status=discussion.status,
        pinned=discussion.pinned,
        author=author,
        target=target,
        created_at=discussion.created_at,
        updated_at=discussion.updated_at,
        num_comments=comments,
        events=events or [],
    )
