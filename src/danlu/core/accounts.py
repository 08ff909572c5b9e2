"""Users, workspaces and roles.

Every user owns a personal workspace whose slug is the username, so users and
team workspaces share one namespace (``owner/name`` in the hub).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from danlu.core.db import Database
from danlu.core.errors import AuthenticationFailed, Conflict, InvalidRequest, NotFound
from danlu.core.ids import new_id
from danlu.core.passwords import hash_password, verify_password
from danlu.core.tables import Membership, Role, User, Workspace

if TYPE_CHECKING:
    from danlu.core.keys import Principal

_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}[A-Za-z0-9]$|^[A-Za-z0-9]$")
RESERVED_SLUGS = frozenset({"api", "v1", "new", "settings", "static", "healthz", "docs"})
ADMIN_USERNAME = "admin"


def validate_slug(slug: str, what: str = "name") -> str:
    """Check a user or workspace name; it becomes part of URLs and repo ids."""
    if not _SLUG.match(slug) or ".." in slug:
        raise InvalidRequest(
            f"{what} {slug!r} is not allowed: use 1-64 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit",
            param=what,
        )
    if slug.lower() in RESERVED_SLUGS:
        raise InvalidRequest(f"{what} {slug!r} is reserved; choose another", param=what)
    return slug


@dataclass(frozen=True)
class Bootstrap:
    """What the first start created; the password is shown once."""

    username: str
    password: str
    generated: bool


class Accounts:
    """User, workspace and membership operations."""

    def __init__(self, db: Database):
        self.db = db

    def bootstrap(self, admin_password: str = "") -> Bootstrap | None:
        """Create the first admin if there are no users yet; otherwise do nothing."""
        generated = not admin_password
        password = admin_password or secrets.token_urlsafe(12)
        try:
            with self.db.write() as session:
                if session.scalar(select(func.count()).select_from(User)):
                    return None
                self._create_user(session, ADMIN_USERNAME, password, is_admin=True)
        except (IntegrityError, Conflict):
            return None  # another process bootstrapped at the same moment
        return Bootstrap(ADMIN_USERNAME, password, generated)

    def create_user(
        self, username: str, password: str | None = None, *, is_admin: bool = False
    ) -> User:
        with self.db.write() as session:
            return self._create_user(session, username, password, is_admin=is_admin)

    def _create_user(
        self, session: Session, username: str, password: str | None, *, is_admin: bool
    ) -> User:
        validate_slug(username, "username")
        self._ensure_slug_free(session, username)
        user = User(
            id=new_id("usr"),
            username=username,
            display_name=username,
            password_hash=hash_password(password) if password else None,
            is_admin=is_admin,
        )
        workspace = Workspace(id=new_id("ws"), slug=username, name=username, personal=True)
        session.add_all([user, workspace])
        session.flush()
        session.add(Membership(workspace_id=workspace.id, user_id=user.id, role=Role.OWNER))
        return user

    def create_workspace(self, slug: str, name: str, owner: User) -> Workspace:
        validate_slug(slug, "workspace")
        with self.db.write() as session:
            self._ensure_slug_free(session, slug)
            workspace = Workspace(id=new_id("ws"), slug=slug, name=name or slug)
            session.add(workspace)
            session.flush()
            session.add(Membership(workspace_id=workspace.id, user_id=owner.id, role=Role.OWNER))
            return workspace

    def set_role(self, workspace: Workspace, user: User, role: Role) -> None:
        with self.db.write() as session:
            membership = session.get(Membership, (workspace.id, user.id))
            if membership is None:
                session.add(Membership(workspace_id=workspace.id, user_id=user.id, role=role))
            else:
                membership.role = role

    def workspaces_of(self, user: User) -> list[tuple[str, Role]]:
        """(workspace slug, role) for every workspace the user belongs to."""
        with self.db.read() as session:
            rows = session.execute(
                select(Workspace.slug, Membership.role)
                .join(Membership, Membership.workspace_id == Workspace.id)
                .where(Membership.user_id == user.id)
                .order_by(Workspace.slug)
            ).all()
        return [(slug, Role(role)) for slug, role in rows]

    def members(self, workspace: Workspace) -> list[tuple[str, Role]]:
        """(username, role) pairs, strongest role first."""
        with self.db.read() as session:
            rows = session.execute(
                select(User.username, Membership.role)
                .join(Membership, Membership.user_id == User.id)
                .where(Membership.workspace_id == workspace.id)
            ).all()
        return sorted(((name, Role(role)) for name, role in rows), key=lambda p: (p[1].rank, p[0]))

    def role_in(self, user_id: str, workspace_id: str) -> Role | None:
        with self.db.read() as session:
            membership = session.get(Membership, (workspace_id, user_id))
            return Role(membership.role) if membership else None

    def user(self, username: str) -> User:
        with self.db.read() as session:
            user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFound(f"no user named {username!r}", param="username")
        return user

    def users(self) -> list[User]:
        with self.db.read() as session:
            return list(session.scalars(select(User).order_by(User.username)))

    def workspace(self, slug: str) -> Workspace:
        with self.db.read() as session:
            workspace = session.scalar(select(Workspace).where(Workspace.slug == slug))
        if workspace is None:
            raise NotFound(f"no workspace named {slug!r}", param="workspace")
        return workspace

    def personal_workspace(self, user: User) -> Workspace:
        return self.workspace(user.username)

    def check_password(self, username: str, password: str) -> User:
        """The user, if the password is right; one error for every failure."""
        with self.db.read() as session:
            user = session.scalar(select(User).where(User.username == username))
        if (
            user is None
            or user.disabled
            or not user.password_hash
            or not verify_password(password, user.password_hash)
        ):
            raise AuthenticationFailed("wrong username or password")
        return user

    @staticmethod
    def _ensure_slug_free(session: Session, slug: str) -> None:
        taken = session.scalar(
            select(func.count())
            .select_from(Workspace)
            .where(func.lower(Workspace.slug) == slug.lower())
        )
        if taken:
            raise Conflict(f"the name {slug!r} is already taken; choose another", param="name")


def may_see_workspace(session: Session, principal: Principal, workspace_id: str) -> bool:
    """Whether the caller may see a workspace's private resources: admins and members."""
    return principal.is_admin or (
        session.get(Membership, (workspace_id, principal.user_id)) is not None
    )


def my_workspaces(principal: Principal) -> Select[str]:
    """The ids of the caller's workspaces, as a subquery for ``.in_()``."""
    return select(Membership.workspace_id).where(Membership.user_id == principal.user_id)
