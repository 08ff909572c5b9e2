"""The studio (创空间): a gallery of published apps that people can find, use and copy.

An app shows in the studio once it is published with its site open (``site_access``
``public`` or ``signed_in``; members of its workspace also see their own apps whatever the
setting) and its profile is not unlisted. Its profile — cover, description, tags — lives in
``community_app_profiles``; likes, runs (of published versions) and the trending score come
from :mod:`danlu.community.social`.

"Duplicate" copies the published version (never the draft, never secrets: the DSL export
drops them) into a workspace of the caller's as a new draft.

Links: what an app uses. ``llm``-like nodes name models (linked to the hub repo that serves
them when there is one: ``namespace/name``, a repo served under that name, or the embedded
``danlu/{name}``), ``knowledge_retrieval`` nodes name knowledge bases; datasets are linked by
hand. Links are derived from the published version when it changes, so the repo or knowledge
base can list the apps that use it ("used by").
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from danlu.builder.apps import Apps
from danlu.builder.dsl import parse_app
from danlu.builder.tables import App, AppVersion
from danlu.community.social import app_counts
from danlu.community.tables import Activity, AppLike, AppLink, AppProfile
from danlu.community.targets import (
    app_visible_clause,
    find_app,
    is_maintainer,
    require_personal,
    target_of_app,
)
from danlu.core.db import Database
from danlu.core.errors import InvalidRequest, NotFound, PermissionDenied
from danlu.core.keys import Principal, Scope
from danlu.core.tables import Membership, Role, Workspace, utcnow
from danlu.hub.repos import Repos
from danlu.hub.tables import Repo, RepoType, ServedModel
from danlu.knowledge.tables import KnowledgeBase

Sort = Literal["trending", "likes", "runs", "new"]
SORTS: tuple[str, ...] = ("trending", "likes", "runs", "new")
LINK_KINDS = ("model", "dataset", "knowledge_base")
MAX_TAGS = 10
_TAG = re.compile(r"^[^,\s][^,]{0,31}$")


@dataclass(frozen=True)
class LinkView:
    kind: str
    ref: str | None  # None: a knowledge base the caller may not see
    source: str  # dsl, manual
    repo: str | None = None  # the hub repo it resolves to, when the caller may see it
    knowledge_base: str | None = None  # the knowledge base's name, for its members


@dataclass(frozen=True)
class StudioApp:
    id: str
    slug: str
    name: str
    mode: str
    description: str
    cover_url: str
    tags: list[str]
    workspace: str
    published_version: int | None
    site_access: str
    created_by: str
    likes: int
    runs: int
    trending: float
    liked: bool
    duplicated_from: str | None
    created_at: datetime
    updated_at: datetime
    listed: bool = True
    links: list[LinkView] = field(default_factory=list)


def _tags(raw: list[str]) -> str:
    tags: list[str] = []
    for tag in raw:
        tag = str(tag).strip().lower()
        if not _TAG.match(tag):
            raise InvalidRequest(
                f"tag {tag!r}: tags are 1-32 characters without commas", param="tags"
            )
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise InvalidRequest(f"at most {MAX_TAGS} tags", param="tags")
    return "," + ",".join(tags) + "," if tags else ""


def _cover(url: str) -> str:
    url = url.strip()
    if not url:
        return ""
    parts = urllib.parse.urlsplit(url)
    relative = url.startswith("/") and not url.startswith("//") and not parts.scheme
    if len(url) > 1024 or not (relative or (parts.scheme in ("http", "https") and parts.netloc)):
        raise InvalidRequest(
            "cover_url is an http(s) URL or a path on this server", param="cover_url"
        )
    return url


def model_refs(spec: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(models, knowledge bases) a DSL document names, nested graphs included, in order."""
    models: list[str] = []
    bases: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            config = value.get("config")
            if isinstance(value.get("type"), str) and isinstance(config, dict):
                model = config.get("model")
                if isinstance(model, str) and model and model not in models:
                    models.append(model)
                for kb in config.get("knowledge_bases") or []:
                    if isinstance(kb, str) and kb not in bases:
                        bases.append(kb)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(spec.get("graph", {}))
    return models, bases


def _model_repo(session: Session, name: str) -> str | None:
    """The hub repo behind a model name, if any."""
    if "/" in name:
        namespace, _, repo_name = name.partition("/")
        found = session.scalar(
            select(Repo.id).where(
                Repo.type == RepoType.MODEL,
                func.lower(Repo.namespace) == namespace.lower(),
                Repo.name_key == repo_name.lower(),
            )
        )
        if found:
            return found
    served = session.get(ServedModel, name)
    if served is not None:
        return served.repo_id
    return session.scalar(
        select(Repo.id).where(
            Repo.type == RepoType.MODEL, Repo.namespace == "danlu", Repo.name_key == name.lower()
        )
    )


class Studio:
    def __init__(self, db: Database, repos: Repos, apps: Apps):
        self.db = db
        self.repos = repos
        self.apps = apps

    # --- the gallery -------------------------------------------------------------------

    def listing(
        self,
        principal: Principal | None,
        *,
        search: str | None = None,
        tag: str | None = None,
        mode: str | None = None,
        author: str | None = None,
        sort: str = "trending",
        limit: int = 30,
        offset: int = 0,
    ) -> tuple[list[StudioApp], int]:
        """Published apps the caller may open, sorted; and how many there are."""
        if sort not in SORTS:
            raise InvalidRequest(f"sort is one of {', '.join(SORTS)}", param="sort")
        query = (
            select(App, AppProfile, Workspace.slug)
            .join(Workspace, Workspace.id == App.workspace_id)
            .outerjoin(AppProfile, AppProfile.app_id == App.id)
            .where(
                App.published_version.is_not(None),
                app_visible_clause(principal),
                or_(AppProfile.listed.is_(None), AppProfile.listed.is_(True)),
            )
        )
        if search:
            needle = f"%{search.lower()}%"
            query = query.where(
                or_(
                    func.lower(App.name).like(needle),
                    func.lower(App.description).like(needle),
                    func.lower(func.coalesce(AppProfile.description, "")).like(needle),
                    func.lower(func.coalesce(AppProfile.tags, "")).like(needle),
                )
            )
        if tag:
            query = query.where(AppProfile.tags.like(f"%,{tag.strip().lower()},%"))
        if mode:
            query = query.where(App.mode == mode)
        if author:
            query = query.where(func.lower(App.created_by) == author.strip().lower())
        with self.db.read() as session:
            rows = session.execute(query).all()
            counts = app_counts(session, [app.id for app, _, _ in rows])
            liked = self._liked(session, principal, [app.id for app, _, _ in rows])
            sources = self._slugs(session, [p.duplicated_from for _, p, _ in rows if p])
        items = [
            _card(app, profile, slug, counts[app.id], app.id in liked, sources)
            for app, profile, slug in rows
        ]
        key = {
            "trending": lambda a: (-a.trending, -a.likes, a.slug),
            "likes": lambda a: (-a.likes, -a.trending, a.slug),
            "runs": lambda a: (-a.runs, -a.trending, a.slug),
            "new": lambda a: (-a.created_at.timestamp(), a.slug),
        }[sort]
        items.sort(key=key)
        return items[offset : offset + limit], len(items)

    def tags(self, principal: Principal | None) -> list[tuple[str, int]]:
        """Tags of the apps in the gallery, most used first."""
        items, _ = self.listing(principal, limit=100_000)
        counted: dict[str, int] = {}
        for item in items:
            for tag in item.tags:
                counted[tag] = counted.get(tag, 0) + 1
        return sorted(counted.items(), key=lambda pair: (-pair[1], pair[0]))

    def detail(self, principal: Principal | None, app_ref: str) -> StudioApp:
        """One app's card with its links."""
        with self.db.read() as session:
            app = find_app(session, principal, app_ref)
        self.sync_links([app.id])
        with self.db.read() as session:
            profile = session.get(AppProfile, app.id)
            slug = target_of_app(session, app).workspace
            counts = app_counts(session, [app.id])[app.id]
            liked = app.id in self._liked(session, principal, [app.id])
            sources = self._slugs(session, [profile.duplicated_from] if profile else [])
            links = self._links(session, principal, app.id)
        card = _card(app, profile, slug, counts, liked, sources)
        return dataclasses.replace(card, links=links)

    def set_profile(
        self,
        principal: Principal,
        app_ref: str,
        *,
        cover_url: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        listed: bool | None = None,
    ) -> StudioApp:
        """Change how an app shows in the studio: its maintainers (and site admins)."""
        require_personal(principal)
        with self.db.write() as session:
            app = find_app(session, principal, app_ref)
            self._check_maintainer(session, principal, app)
            profile = self._profile(session, app.id)
            if cover_url is not None:
                profile.cover_url = _cover(cover_url)
            if description is not None:
                if len(description) > 5000:
                    raise InvalidRequest(
                        "description is at most 5000 characters", param="description"
                    )
                profile.description = description
            if tags is not None:
                profile.tags = _tags(tags)
            if listed is not None:
                profile.listed = listed
            profile.updated_at = utcnow()
        return self.detail(principal, app.id)

    # --- duplicate ---------------------------------------------------------------------

    def duplicate(
        self,
        principal: Principal,
        app_ref: str,
        *,
        workspace: str | None = None,
        name: str | None = None,
    ) -> App:
        """Copy an app's published version into a workspace of the caller's, as a draft."""
        require_personal(principal)
        principal.require(Scope.INFERENCE)
        with self.db.read() as session:
            source = find_app(session, principal, app_ref)
            version = (
                session.get(AppVersion, (source.id, source.published_version))
                if source.published_version
                else None
            )
            if version is None:
                raise InvalidRequest(
                    f"{source.slug} is not published: only published apps can be duplicated",
                    param="app",
                )
            slug = workspace or principal.workspace_slug
            into = session.scalar(select(Workspace).where(Workspace.slug == slug))
            membership = session.get(Membership, (into.id, principal.user_id)) if into else None
            if into is None or membership is None:
                raise NotFound(f"no workspace {slug!r} of yours", param="workspace")
            if not Role(membership.role).at_least(Role.MEMBER):
                raise PermissionDenied(
                    f"viewers cannot create apps in {slug!r}; ask for the member role"
                )
            acting = dataclasses.replace(principal, workspace_id=into.id, workspace_slug=into.slug)
            source_profile = session.get(AppProfile, source.id)
        spec = parse_app(parse_app(version.spec).to_dict())  # secrets dropped
        spec.app.name = (name or f"{source.name} (copy)")[:128]
        copy = self.apps.create(acting, spec)
        with self.db.write() as session:
            session.add(
                AppProfile(
                    app_id=copy.id,
                    cover_url=source_profile.cover_url if source_profile else "",
                    description=source_profile.description if source_profile else "",
                    tags=source_profile.tags if source_profile else "",
                    duplicated_from=source.id,
                )
            )
            target_info = target_of_app(session, source)
            session.add(
                Activity(
                    actor_id=principal.user_id,
                    workspace_id=source.workspace_id,
                    verb="app.duplicated",
                    app_id=source.id,
                    data={"target": target_info.as_dict()},
                )
            )
        return copy

    # --- links -------------------------------------------------------------------------

    def sync_links(self, app_ids: list[str] | None = None) -> int:
        """Derive links from published versions that changed since last time; returns how many
        apps were refreshed."""
        query = (
            select(App.id, App.published_version, AppVersion.spec)
            .join(
                AppVersion,
                (AppVersion.app_id == App.id) & (AppVersion.version == App.published_version),
            )
            .outerjoin(AppProfile, AppProfile.app_id == App.id)
            .where(
                or_(
                    AppProfile.links_version.is_(None),
                    AppProfile.links_version != App.published_version,
                )
            )
        )
        if app_ids is not None:
            query = query.where(App.id.in_(app_ids))
        with self.db.read() as session:
            stale = session.execute(query).all()
        if not stale:
            return 0
        with self.db.write() as session:
            for app_id, version, spec in stale:
                session.execute(
                    delete(AppLink).where(AppLink.app_id == app_id, AppLink.source == "dsl")
                )
                manual = {
                    (link.kind, link.ref)
                    for link in session.scalars(select(AppLink).where(AppLink.app_id == app_id))
                }
                models, bases = model_refs(spec or {})
                for model in models:
                    if ("model", model) not in manual:
                        session.add(
                            AppLink(
                                app_id=app_id,
                                kind="model",
                                ref=model[:200],
                                repo_id=_model_repo(session, model),
                                source="dsl",
                            )
                        )
                for kb in bases:
                    if ("knowledge_base", kb) not in manual:
                        found = session.get(KnowledgeBase, kb)
                        session.add(
                            AppLink(
                                app_id=app_id,
                                kind="knowledge_base",
                                ref=kb[:200],
                                kb_id=found.id if found else None,
                                source="dsl",
                            )
                        )
                self._profile(session, app_id).links_version = version
        return len(stale)

    def add_link(self, principal: Principal, app_ref: str, kind: str, ref: str) -> StudioApp:
        """Link a model, dataset or knowledge base to an app by hand (maintainers)."""
        require_personal(principal)
        if kind not in LINK_KINDS:
            raise InvalidRequest(f"kind is one of {', '.join(LINK_KINDS)}", param="kind")
        ref = ref.strip()
        if not ref or len(ref) > 200:
            raise InvalidRequest("ref names the model, dataset or knowledge base", param="ref")
        repo_id: str | None = None
        kb_id: str | None = None
        if kind == "dataset":
            repo_id = self.repos.find(principal, RepoType.DATASET, ref).id
        elif kind == "model" and "/" in ref:
            repo_id = self.repos.find(principal, RepoType.MODEL, ref).id
        with self.db.write() as session:
            app = find_app(session, principal, app_ref)
            self._check_maintainer(session, principal, app)
            if kind == "knowledge_base":
                base = session.get(KnowledgeBase, ref)
                if base is None or (
                    session.get(Membership, (base.workspace_id, principal.user_id)) is None
                    and not principal.is_admin
                ):
                    raise NotFound(f"no knowledge base {ref!r} of yours", param="ref")
                kb_id = base.id
            elif kind == "model" and repo_id is None:
                repo_id = _model_repo(session, ref)
            existing = session.scalar(
                select(AppLink).where(
                    AppLink.app_id == app.id, AppLink.kind == kind, AppLink.ref == ref
                )
            )
            if existing is None:
                session.add(
                    AppLink(
                        app_id=app.id,
                        kind=kind,
                        ref=ref,
                        repo_id=repo_id,
                        kb_id=kb_id,
                        source="manual",
                    )
                )
            else:
                existing.source = "manual"
        return self.detail(principal, app.id)

    def remove_link(self, principal: Principal, app_ref: str, kind: str, ref: str) -> None:
        require_personal(principal)
        with self.db.write() as session:
            app = find_app(session, principal, app_ref)
            self._check_maintainer(session, principal, app)
            done = session.execute(
                delete(AppLink).where(
                    AppLink.app_id == app.id, AppLink.kind == kind, AppLink.ref == ref
                )
            )
            if not getattr(done, "rowcount", 0):
                raise NotFound(f"{app.slug} has no {kind} link {ref!r}", param="ref")

    def used_by(self, principal: Principal | None, kind: str, ref: str) -> list[StudioApp]:
        """The apps (that the caller may see) using a model, dataset or knowledge base."""
        if kind not in LINK_KINDS:
            raise InvalidRequest(f"kind is one of {', '.join(LINK_KINDS)}", param="kind")
        self.sync_links()
        if kind == "knowledge_base":
            match: Any = AppLink.kb_id == ref
        else:
            repo_type = RepoType.DATASET if kind == "dataset" else RepoType.MODEL
            repo_id = None
            if "/" in ref:
                repo_id = self.repos.find(principal, repo_type, ref).id
            match = AppLink.ref == ref
            if repo_id is not None:
                match = or_(match, AppLink.repo_id == repo_id)
        with self.db.read() as session:
            rows = session.execute(
                select(App, AppProfile, Workspace.slug)
                .join(Workspace, Workspace.id == App.workspace_id)
                .outerjoin(AppProfile, AppProfile.app_id == App.id)
                .where(
                    App.id.in_(select(AppLink.app_id).where(AppLink.kind == kind, match)),
                    App.published_version.is_not(None),
                    app_visible_clause(principal),
                )
                .order_by(App.name)
            ).all()
            counts = app_counts(session, [app.id for app, _, _ in rows])
            liked = self._liked(session, principal, [app.id for app, _, _ in rows])
            sources = self._slugs(session, [p.duplicated_from for _, p, _ in rows if p])
        return [
            _card(app, profile, slug, counts[app.id], app.id in liked, sources)
            for app, profile, slug in rows
        ]

    # --- helpers -----------------------------------------------------------------------

    def _check_maintainer(self, session: Session, principal: Principal, app: App) -> None:
        if principal.is_admin or is_maintainer(
            session, principal.user_id, target_of_app(session, app)
        ):
            return
        raise PermissionDenied("only the app's maintainers (members of its workspace) can do that")

    @staticmethod
    def _profile(session: Session, app_id: str) -> AppProfile:
        profile = session.get(AppProfile, app_id)
        if profile is None:
            profile = AppProfile(app_id=app_id, cover_url="", description="", tags="", listed=True)
            session.add(profile)
            session.flush()
        return profile

    @staticmethod
    def _liked(session: Session, principal: Principal | None, app_ids: list[str]) -> set[str]:
        if principal is None or not app_ids:
            return set()
        return set(
            session.scalars(
                select(AppLike.app_id).where(
                    AppLike.user_id == principal.user_id, AppLike.app_id.in_(app_ids)
                )
            )
        )

    @staticmethod
    def _slugs(session: Session, app_ids: list[str | None]) -> dict[str, str]:
        wanted = [a for a in app_ids if a]
        if not wanted:
            return {}
        return dict(session.execute(select(App.id, App.slug).where(App.id.in_(wanted))).all())

    def _links(self, session: Session, principal: Principal | None, app_id: str) -> list[LinkView]:
        links = list(
            session.scalars(select(AppLink).where(AppLink.app_id == app_id).order_by(AppLink.id))
        )
        repo_ids = [link.repo_id for link in links if link.repo_id]
        visible: dict[str, str] = {}
        for repo in session.scalars(select(Repo).where(Repo.id.in_(repo_ids))) if repo_ids else []:
            try:
                self.repos.find(principal, RepoType(repo.type), repo.repo_id)
            except NotFound:
                continue
            visible[repo.id] = repo.repo_id
        views = []
        for link in links:
            if link.kind == "knowledge_base":
                base = session.get(KnowledgeBase, link.kb_id) if link.kb_id else None
                member = (
                    principal is not None
                    and base is not None
                    and (
                        principal.is_admin
                        or session.get(Membership, (base.workspace_id, principal.user_id))
                        is not None
                    )
                )
                views.append(
                    LinkView(
                        "knowledge_base",
                        link.ref if member else None,
                        link.source,
                        knowledge_base=base.name if member and base else None,
                    )
                )
                continue
            repo_name = visible.get(link.repo_id or "")
            if link.repo_id and repo_name is None:
                continue  # a private repo: not even its name
            views.append(LinkView(link.kind, link.ref, link.source, repo=repo_name))
        return views


def _card(
    app: App,
    profile: AppProfile | None,
    workspace: str,
    counts: Any,
    liked: bool,
    sources: dict[str, str],
) -> StudioApp:
    tags = [t for t in (profile.tags if profile else "").strip(",").split(",") if t]
    return StudioApp(
        id=app.id,
        slug=app.slug,
        name=app.name,
        mode=app.mode,
        description=(profile.description if profile and profile.description else app.description),
        cover_url=profile.cover_url if profile else "",
        tags=tags,
        workspace=workspace,
        published_version=app.published_version,
        site_access=app.site_access,
        created_by=app.created_by,
        likes=counts.likes,
        runs=counts.runs,
        trending=counts.trending,
        liked=liked,
        duplicated_from=sources.get(profile.duplicated_from or "") if profile else None,
        created_at=app.created_at,
        updated_at=app.updated_at,
        listed=profile.listed if profile and profile.listed is not None else True,
    )
