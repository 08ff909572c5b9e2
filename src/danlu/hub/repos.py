"""Repositories: create, find (with access rules), list and search, revisions and trees.

Access: a public repo may be read by anyone (anonymous reads can be turned
off); a private one only by members of its namespace and site admins, and to
everyone else it does not exist (404, never 403). Writing needs a key with the
``hub:write`` scope whose user is at least a member of the namespace.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from danlu.core.db import Database
from danlu.core.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from danlu.core.ids import new_id
from danlu.core.keys import Principal, Scope
from danlu.core.tables import Membership, Role, User, Workspace, utcnow
from danlu.hub.errors import EntryNotFound, RepoExists, RepoNotFound, RevisionNotFound
from danlu.hub.names import split_repo_id, validate_ref_name
from danlu.hub.objects import DEFAULT_BRANCH, CommitInfo, FileEntry, initial_commit
from danlu.hub.tables import Commit, CommitFile, Ref, RefKind, Repo, RepoLike, RepoType

_COMMIT_ID = re.compile(r"^[0-9a-f]{7,40}$")
SortKey = Literal["downloads", "likes", "updated", "created", "name"]


class Repos:
    """Finding repos and reading their history. Writing commits is in ``commits.py``."""

    def __init__(self, db: Database, *, anonymous_read: bool = True):
        self.db = db
        self.anonymous_read = anonymous_read

    # --- access ----------------------------------------------------------

    def _role(self, session: Session, principal: Principal, workspace_id: str) -> Role | None:
        membership = session.get(Membership, (workspace_id, principal.user_id))
        return Role(membership.role) if membership else None

    def _can_read(self, session: Session, principal: Principal | None, repo: Repo) -> bool:
        if principal is None:
            return self.anonymous_read and not repo.private
        if Scope.HUB_READ not in principal.scopes and Scope.HUB_WRITE not in principal.scopes:
            return False
        if not repo.private or principal.is_admin:
            return True
        return self._role(session, principal, repo.workspace_id) is not None

    def _check_write(
        self, session: Session, principal: Principal, workspace_id: str, what: str
    ) -> None:
        principal.require(Scope.HUB_WRITE)
        if principal.is_admin:
            return
        role = self._role(session, principal, workspace_id)
        if role is None or not role.at_least(Role.MEMBER):
            raise PermissionDenied(
                f"you need to be a member (not a viewer) of this namespace to {what}"
            )

    def find(
        self,
        principal: Principal | None,
        repo_type: RepoType,
        repo_id: str,
        *,
        write: bool = False,
    ) -> Repo:
        """The repo if the caller may see it (and write to it, if asked); else RepoNotFound."""
        namespace, name = repo_id.split("/", 1) if "/" in repo_id else ("", repo_id)
        with self.db.read() as session:
            repo = session.scalar(
                select(Repo).where(
                    Repo.type == repo_type,
                    func.lower(Repo.namespace) == namespace.lower(),
                    Repo.name_key == name.lower(),
                )
            )
            if repo is None or not self._can_read(session, principal, repo):
                raise RepoNotFound(repo_id)
            if write:
                if principal is None:
                    raise PermissionDenied("writing needs an API key with the hub:write scope")
                self._check_write(session, principal, repo.workspace_id, f"write to {repo_id}")
            return repo

    # --- create and settings ----------------------------------------------

    def create(
        self, principal: Principal, repo_type: RepoType, repo_id: str, *, private: bool, url: str
    ) -> Repo:
        """A new repo with an initial commit (``.gitattributes``) on ``main``."""
        namespace, name = split_repo_id(repo_id)
        with self.db.write() as session:
            workspace = session.scalar(
                select(Workspace).where(func.lower(Workspace.slug) == namespace.lower())
            )
            if workspace is None:
                raise NotFound(
                    f"namespace {namespace!r} does not exist; use your user name or a workspace "
                    "you belong to",
                    param="organization",
                )
            self._check_write(session, principal, workspace.id, f"create repos in {namespace!r}")
            exists = session.scalar(
                select(Repo.id).where(
                    Repo.type == repo_type,
                    Repo.workspace_id == workspace.id,
                    Repo.name_key == name.lower(),
                )
            )
            if exists:
                raise RepoExists(f"{workspace.slug}/{name}", url)
            now = utcnow()
            repo = Repo(
                id=new_id("repo"),
                type=repo_type,
                workspace_id=workspace.id,
                namespace=workspace.slug,
                name=name,
                name_key=name.lower(),
                private=private,
                card={},
                created_at=now,
                updated_at=now,
            )
            session.add(repo)
            session.flush()
            initial_commit(session, repo, principal.username, now)
            return repo

    def set_private(self, principal: Principal, repo: Repo, private: bool) -> None:
        with self.db.write() as session:
            stored = session.get(Repo, repo.id)
            assert stored is not None
            self._check_write(session, principal, stored.workspace_id, "change its visibility")
            stored.private = private

    def delete(self, principal: Principal, repo: Repo) -> None:
        with self.db.write() as session:
            stored = session.get(Repo, repo.id)
            if stored is None:
                raise RepoNotFound(repo.repo_id)
            self._check_write(session, principal, stored.workspace_id, "delete it")
            commit_ids = select(Commit.id).where(Commit.repo_id == stored.id)
            session.query(CommitFile).filter(CommitFile.commit_id.in_(commit_ids)).delete(
                synchronize_session=False
            )
            session.query(Commit).filter(Commit.repo_id == stored.id).delete()
            session.query(Ref).filter(Ref.repo_id == stored.id).delete()
            session.delete(stored)

    def set_like(self, principal: Principal, repo: Repo, liked: bool) -> int:
        """Like or unlike (idempotent); returns the repo's like count."""
        with self.db.write() as session:
            existing = session.get(RepoLike, (principal.user_id, repo.id))
            if liked and existing is None:
                session.add(RepoLike(user_id=principal.user_id, repo_id=repo.id))
                session.query(Repo).filter(Repo.id == repo.id).update({Repo.likes: Repo.likes + 1})
            elif not liked and existing is not None:
                session.delete(existing)
                session.query(Repo).filter(Repo.id == repo.id).update({Repo.likes: Repo.likes - 1})
            session.flush()
            count = session.scalar(select(Repo.likes).where(Repo.id == repo.id))
            return int(count or 0)

    def likes_of(self, principal: Principal | None, username: str) -> list[tuple[Repo, datetime]]:
        """Repos a user liked that the caller may see, newest like first."""
        with self.db.read() as session:
            rows = session.execute(
                select(Repo, RepoLike.created_at)
                .join(RepoLike, RepoLike.repo_id == Repo.id)
                .join(User, User.id == RepoLike.user_id)
                .where(func.lower(User.username) == username.lower())
                .order_by(RepoLike.created_at.desc())
            ).all()
            return [(repo, when) for repo, when in rows if self._can_read(session, principal, repo)]

    def likers(self, repo: Repo) -> list[User]:
        with self.db.read() as session:
            return list(
                session.scalars(
                    select(User)
                    .join(RepoLike, RepoLike.user_id == User.id)
                    .where(RepoLike.repo_id == repo.id)
                    .order_by(RepoLike.created_at)
                )
            )

    def count_download(self, repo: Repo) -> None:
        with self.db.write() as session:
            session.query(Repo).filter(Repo.id == repo.id).update(
                {Repo.downloads: Repo.downloads + 1}
            )

    # --- revisions, trees, history ----------------------------------------

    def resolve(self, repo: Repo, revision: str | None) -> str:
        """A branch, tag or (short) commit id → the full commit id."""
        revision = revision or DEFAULT_BRANCH
        with self.db.read() as session:
            for kind in (RefKind.BRANCH, RefKind.TAG):
                ref = session.get(Ref, (repo.id, kind, revision))
                if ref is not None:
                    return ref.commit_id
            if _COMMIT_ID.match(revision):
                matches = list(
                    session.scalars(
                        select(Commit.id)
                        .where(Commit.repo_id == repo.id, Commit.id.startswith(revision))
                        .limit(2)
                    )
                )
                if len(matches) == 1:
                    return matches[0]
        raise RevisionNotFound(revision, repo.repo_id)

    def files(self, commit_id: str, folder: str = "", *, recursive: bool = True) -> list[FileEntry]:
        """Files of a commit under ``folder``, sorted by path."""
        query = (
            select(CommitFile).where(CommitFile.commit_id == commit_id).order_by(CommitFile.path)
        )
        if folder:
            query = query.where(
                CommitFile.path.startswith(folder.rstrip("/") + "/", autoescape=True)
            )
        with self.db.read() as session:
            rows = list(session.scalars(query))
        entries = [FileEntry(r.path, r.size, r.sha256, r.git_sha1, r.lfs) for r in rows]
        if recursive:
            return entries
        depth = folder.count("/") + (1 if folder else 0)
        return [e for e in entries if e.path.count("/") == depth]

    def file(self, repo: Repo, commit_id: str, path: str, revision: str) -> FileEntry:
        with self.db.read() as session:
            row = session.get(CommitFile, (commit_id, path))
        if row is None:
            raise EntryNotFound(path, revision, repo.repo_id)
        return FileEntry(row.path, row.size, row.sha256, row.git_sha1, row.lfs)

    def commit_info(self, commit_id: str) -> CommitInfo:
        with self.db.read() as session:
            commit = session.get(Commit, commit_id)
        if commit is None:
            raise NotFound(f"no commit {commit_id}")
        return _info(commit)

    def history(
        self, repo: Repo, revision: str, *, path: str | None = None, limit: int = 1000
    ) -> list[CommitInfo]:
        """Commits reachable from ``revision``, newest first; with ``path``, those touching it."""
        head = self.resolve(repo, revision)
        with self.db.read() as session:
            commits = {
                c.id: c for c in session.scalars(select(Commit).where(Commit.repo_id == repo.id))
            }
            chain: list[Commit] = []
            cursor: str | None = head
            while cursor is not None and cursor in commits and len(chain) < 100_000:
                chain.append(commits[cursor])
                cursor = commits[cursor].parent_id
            if path is None:
                return [_info(c) for c in chain[:limit]]
            versions = {
                row.commit_id: row.git_sha1
                for row in session.scalars(
                    select(CommitFile).where(
                        CommitFile.path == path, CommitFile.commit_id.in_([c.id for c in chain])
                    )
                )
            }
        touched = [
            c
            for c in chain
            if versions.get(c.id) != (versions.get(c.parent_id) if c.parent_id else None)
        ]
        return [_info(c) for c in touched[:limit]]

    def refs(self, repo: Repo) -> tuple[list[Ref], list[Ref]]:
        with self.db.read() as session:
            refs = list(
                session.scalars(select(Ref).where(Ref.repo_id == repo.id).order_by(Ref.name))
            )
        return [r for r in refs if r.kind == RefKind.BRANCH], [
            r for r in refs if r.kind == RefKind.TAG
        ]

    def create_ref(
        self,
        principal: Principal,
        repo: Repo,
        kind: RefKind,
        name: str,
        revision: str | None,
        *,
        exist_ok: bool = False,
    ) -> None:
        validate_ref_name(name)
        target = self.resolve(repo, revision)
        with self.db.write() as session:
            self._check_write(session, principal, repo.workspace_id, f"create a {kind}")
            clash = session.get(Ref, (repo.id, RefKind.BRANCH, name)) or session.get(
                Ref, (repo.id, RefKind.TAG, name)
            )
            if clash is not None:
                if exist_ok:
                    return
                raise Conflict(f"a branch or tag named {name!r} already exists", param="revision")
            session.add(Ref(repo_id=repo.id, kind=kind, name=name, commit_id=target))

    def delete_ref(self, principal: Principal, repo: Repo, kind: RefKind, name: str) -> None:
        if kind == RefKind.BRANCH and name == DEFAULT_BRANCH:
            raise InvalidRequest("the main branch cannot be deleted", param="branch")
        with self.db.write() as session:
            self._check_write(session, principal, repo.workspace_id, f"delete a {kind}")
            ref = session.get(Ref, (repo.id, kind, name))
            if ref is None:
                raise RevisionNotFound(name, repo.repo_id)
            session.delete(ref)

    # --- listing and search ------------------------------------------------

    def search(
        self,
        principal: Principal | None,
        repo_type: RepoType,
        *,
        search: str | None = None,
        author: str | None = None,
        tags: list[str] | None = None,
        sort: SortKey = "updated",
        descending: bool = True,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Repo]:
        """Repos the caller may see, filtered, sorted and paged in SQL."""
        if principal is None and not self.anonymous_read:
            return []
        query = select(Repo).where(Repo.type == repo_type)
        if principal is None:
            query = query.where(Repo.private.is_(False))
        elif not principal.is_admin:
            member_of = select(Membership.workspace_id).where(
                Membership.user_id == principal.user_id
            )
            query = query.where(or_(Repo.private.is_(False), Repo.workspace_id.in_(member_of)))
        if search:
            needle = f"%{search.lower()}%"
            query = query.where(func.lower(Repo.namespace + "/" + Repo.name).like(needle))
        if author:
            query = query.where(func.lower(Repo.namespace) == author.lower())
        for tag in tags or []:
            query = query.where(Repo.tags.like(f"%,{tag},%"))
        column = {
            "downloads": Repo.downloads,
            "likes": Repo.likes,
            "updated": Repo.updated_at,
            "created": Repo.created_at,
            "name": Repo.name_key,
        }[sort]
        query = query.order_by(column.desc() if descending else column.asc(), Repo.id)
        with self.db.read() as session:
            return list(session.scalars(query.offset(offset).limit(limit)))


def _info(commit: Commit) -> CommitInfo:
    return CommitInfo(
        commit.id, commit.parent_id, commit.author, commit.title, commit.message, commit.created_at
    )
