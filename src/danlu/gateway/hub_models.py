"""Serving hub repos through the gateway: a model repo with a GGUF becomes a chat model.

A served repo is pinned to the commit it had when it was served, so a later
push cannot swap the weights under running clients; serve it again to move.
The choice is stored, so served repos come back after a restart.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import select

from danlu.core.blobs import LocalBlobStore
from danlu.core.db import Database
from danlu.core.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from danlu.core.keys import Principal, Scope
from danlu.core.settings import Settings
from danlu.gateway.provider import Model
from danlu.gateway.providers.llama_cpp import LlamaCppProvider
from danlu.gateway.registry import ModelRegistry, ProviderConfig
from danlu.hub.objects import FileEntry
from danlu.hub.repos import Repos
from danlu.hub.tables import CommitFile, Repo, RepoType, ServedModel


@dataclass(frozen=True)
class ServedInfo:
    name: str
    repo: str
    commit: str
    path: str


def _provider_name(name: str) -> str:
    return "hub-" + name.replace("/", "--")


def pick_gguf(entries: list[FileEntry], wanted: str | None, repo_id: str) -> FileEntry:
    ggufs = [e for e in entries if e.path.lower().endswith(".gguf")]
    if wanted is not None:
        match = [e for e in ggufs if e.path == wanted]
        if not match:
            raise NotFound(f"{repo_id} has no GGUF file {wanted!r}", param="file")
        return match[0]
    if not ggufs:
        raise InvalidRequest(
            f"{repo_id} holds no .gguf file; danlu serves GGUF weights (import one with "
            "`danlu hub import model.gguf --repo ...`)",
            param="repo",
        )
    if len(ggufs) > 1:
        choices = ", ".join(e.path for e in ggufs)
        raise InvalidRequest(
            f"{repo_id} holds several GGUF files ({choices}); name one with 'file'", param="file"
        )
    return ggufs[0]


class HubServing:
    """Which hub repos the gateway serves."""

    def __init__(
        self,
        db: Database,
        repos: Repos,
        blobs: LocalBlobStore,
        registry: ModelRegistry,
        settings: Settings,
    ):
        self.db = db
        self.repos = repos
        self.blobs = blobs
        self.registry = registry
        self.settings = settings

    def _config(self, name: str, sha256: str) -> ProviderConfig:
        return ProviderConfig(
            name=_provider_name(name),
            type=LlamaCppProvider.type,
            options={
                "model_path": str(self.blobs.path(sha256)),
                "model_name": name,
                "n_ctx": self.settings.llama_context,
                "owned_by": name.split("/")[0],
            },
        )

    def plan(
        self,
        principal: Principal,
        repo_id: str,
        *,
        revision: str | None,
        file: str | None,
        name: str | None,
    ) -> tuple[Repo, ServedInfo, str]:
        """Check everything before anything loads: (repo, what to serve, blob sha256)."""
        if Scope.ADMIN not in principal.scopes or not principal.is_admin:
            raise PermissionDenied("serving a model takes server resources: use an admin key")
        repo = self.repos.find(principal, RepoType.MODEL, repo_id)
        commit = self.repos.resolve(repo, revision)
        entry = pick_gguf(self.repos.files(commit), file, repo.repo_id)
        served_name = name or repo.repo_id
        with self.db.read() as session:
            if session.get(ServedModel, served_name) is not None:
                raise Conflict(f"{served_name!r} is already served; stop it first", param="name")
        return repo, ServedInfo(served_name, repo.repo_id, commit, entry.path), entry.sha256

    async def serve(
        self,
        principal: Principal,
        repo_id: str,
        *,
        revision: str | None = None,
        file: str | None = None,
        name: str | None = None,
    ) -> tuple[ServedInfo, list[Model]]:
        repo, info, sha256 = await asyncio.to_thread(
            self.plan, principal, repo_id, revision=revision, file=file, name=name
        )
        models = await self.registry.add(self._config(info.name, sha256))
        try:
            await asyncio.to_thread(self._record, repo, info, principal.username)
        except BaseException:
            await self.registry.remove(_provider_name(info.name))
            raise
        return info, models

    def _record(self, repo: Repo, info: ServedInfo, username: str) -> None:
        with self.db.write() as session:
            session.add(
                ServedModel(
                    name=info.name,
                    repo_id=repo.id,
                    commit_id=info.commit,
                    path=info.path,
                    created_by=username,
                )
            )

    def listing(self) -> list[ServedInfo]:
        with self.db.read() as session:
            rows = session.execute(
                select(ServedModel, Repo)
                .join(Repo, Repo.id == ServedModel.repo_id)
                .order_by(ServedModel.name)
            ).all()
        return [ServedInfo(s.name, r.repo_id, s.commit_id, s.path) for s, r in rows]

    async def stop(self, principal: Principal, name: str) -> None:
        if Scope.ADMIN not in principal.scopes or not principal.is_admin:
            raise PermissionDenied("stopping a served model needs an admin key")

        def forget() -> None:
            with self.db.write() as session:
                row = session.get(ServedModel, name)
                if row is None:
                    raise NotFound(f"{name!r} is not served from the hub", param="name")
                session.delete(row)

        await asyncio.to_thread(forget)
        await self.registry.remove(_provider_name(name))

    async def restore(self) -> list[str]:
        """Load every recorded served repo (at start-up); report the ones that failed."""
        failed = []
        with self.db.read() as session:
            rows = list(session.scalars(select(ServedModel)))
        for row in rows:
            with self.db.read() as session:
                entry = session.get(CommitFile, (row.commit_id, row.path))
            if entry is None or not self.blobs.exists(entry.sha256):
                failed.append(f"{row.name}: its file is gone")
                continue
            try:
                await self.registry.add(self._config(row.name, entry.sha256))
            except Exception as exc:
                failed.append(f"{row.name}: {exc}")
        return failed
