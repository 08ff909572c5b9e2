"""What a discussion, a like or a link is about — a repo or an app — and who may see it.

Repos follow the hub's rules (:meth:`danlu.hub.repos.Repos.find`: a private repo is visible to
members of its namespace and site admins, and does not exist for anyone else). Apps: members
of the app's workspace and site admins always see it; everyone else only once it is published
with its site open — ``site_access`` ``public`` (anyone, even without a key) or ``signed_in``
(any user of this danlu). ``off`` keeps a published app to its workspace and its API keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from danlu.builder.tables import App
from danlu.core.accounts import my_workspaces
from danlu.core.errors import NotFound, PermissionDenied
from danlu.core.keys import Principal
from danlu.core.tables import Membership, Role, User, Workspace
from danlu.hub.repos import Repos
from danlu.hub.tables import Repo, RepoType

OPEN_SITES = ("public", "signed_in")


@dataclass(frozen=True)
class Target:
    """A repo or an app, as the community refers to it."""

    kind: str  # model, dataset, space, app
    id: str  # the repo's or the app's id
    name: str  # "namespace/name", or the app's slug
    workspace_id: str
    workspace: str  # the owning workspace's slug
    private: bool  # only its workspace (and site admins) may see it

    @property
    def repo_id(self) -> str | None:
        return None if self.kind == "app" else self.id

    @property
    def app_id(self) -> str | None:
        return self.id if self.kind == "app" else None

    @property
    def path(self) -> str:
        """Where it lives, as the API names it: ``models/alice/x`` or ``apps/slug``."""
        return f"{self.kind}s/{self.name}"

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "workspace": self.workspace}


def app_is_open(app: App) -> bool:
    """Published with its site open to users outside its workspace."""
    return app.published_version is not None and app.site_access in OPEN_SITES


def app_visible_clause(principal: Principal | None) -> ColumnElement[bool]:
    """SQL: the apps the caller may see in the community (for listings)."""
    published = App.published_version.is_not(None)
    if principal is None:
        return and_(published, App.site_access == "public")
    if principal.is_admin:
        return App.id.is_not(None)
    return or_(
        and_(published, App.site_access.in_(OPEN_SITES)),
        App.workspace_id.in_(my_workspaces(principal)),
    )


def repo_visible_clause(principal: Principal | None, anonymous_read: bool) -> ColumnElement[bool]:
    """SQL: the repos the caller may see (the hub's rules)."""
    if principal is None:
        return Repo.private.is_(False) if anonymous_read else Repo.id.is_(None)
    if principal.is_admin:
        return Repo.id.is_not(None)
    return or_(Repo.private.is_(False), Repo.workspace_id.in_(my_workspaces(principal)))


def require_personal(principal: Principal) -> None:
    """Community actions need a user's own key: an app key only runs its app."""
    if principal.app_id is not None:
        raise PermissionDenied(
            "this is an app key: it can only run its own app; use a personal key",
            code="app_key",
        )


def _is_member(session: Session, user_id: str, workspace_id: str) -> bool:
    return session.get(Membership, (workspace_id, user_id)) is not None


def app_visible(session: Session, principal: Principal | None, app: App) -> bool:
    if principal is not None and principal.app_id is not None:
        return principal.app_id == app.id and app_is_open(app)
    if principal is not None and (
        principal.is_admin or _is_member(session, principal.user_id, app.workspace_id)
    ):
        return True
    if principal is None:
        return app.published_version is not None and app.site_access == "public"
    return app_is_open(app)


def _slug(session: Session, workspace_id: str) -> str:
    workspace = session.get(Workspace, workspace_id)
    return workspace.slug if workspace else ""


def find_app(session: Session, principal: Principal | None, app_ref: str) -> App:
    """An app by id or slug, if the caller may see it; 404 otherwise."""
    app = session.scalar(select(App).where((App.id == app_ref) | (App.slug == app_ref)))
    if app is None or not app_visible(session, principal, app):
        raise NotFound(f"no app {app_ref!r}", param="app")
    return app


def app_target(session: Session, principal: Principal | None, app_ref: str) -> Target:
    app = find_app(session, principal, app_ref)
    return target_of_app(session, app)


def target_of_app(session: Session, app: App) -> Target:
    return Target(
        "app",
        app.id,
        app.slug,
        app.workspace_id,
        _slug(session, app.workspace_id),
        not app_is_open(app),
    )


def target_of_repo(repo: Repo) -> Target:
    return Target(repo.type, repo.id, repo.repo_id, repo.workspace_id, repo.namespace, repo.private)


def repo_target(
    repos: Repos, principal: Principal | None, repo_type: RepoType, repo_id: str
) -> Target:
    """A repo the caller may see (RepoNotFound otherwise, which the hub clients understand)."""
    return target_of_repo(repos.find(principal, repo_type, repo_id))


def user_may_see(session: Session, user: User, target: Target) -> bool:
    """Whether a user (not a key) may see the target: who may be told about it."""
    if not target.private or user.is_admin:
        return True
    return _is_member(session, user.id, target.workspace_id)


def is_maintainer(session: Session, user_id: str, target: Target) -> bool:
    """Members (not viewers) of the owning workspace maintain its repos and apps."""
    membership = session.get(Membership, (target.workspace_id, user_id))
    return membership is not None and Role(membership.role).at_least(Role.MEMBER)
