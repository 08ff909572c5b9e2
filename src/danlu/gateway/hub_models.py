"""Serving hub repos through the gateway: a model repo becomes a chat model.

Two kinds of repo can be served:

- a GGUF file, run by llama.cpp (``llama_cpp``) straight from the blob store;
- transformers weights — ``config.json``, ``*.safetensors`` and tokenizer files at
  the repo's root, as ``save_pretrained`` (and the refinery) writes them — run by
  the ``transformers`` provider. transformers loads a *directory*, so the
  snapshot's root files are materialised under ``DANLU_HOME/served/<commit>``:
  hard links to the blobs (copies across file systems), assembled in a hidden
  staging directory and renamed into place, so a crash never leaves a partial
  model that a later start would trust.

Which kind a repo is follows from its files, or from an explicit ``format``.
A served repo is pinned to the commit it had when it was served, so a later
push cannot swap the weights under running clients; serve it again to move.
The choice is stored, so served repos come back after a restart.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import select

from danlu.core.blobs import LocalBlobStore
from danlu.core.db import Database
from danlu.core.errors import (
    Conflict,
    DanluError,
    InvalidRequest,
    ModelUnavailable,
    NotFound,
    PermissionDenied,
)
from danlu.core.keys import Principal, Scope
from danlu.core.settings import Settings
from danlu.gateway.provider import Model
from danlu.gateway.providers.llama_cpp import LlamaCppProvider
from danlu.gateway.providers.transformers_local import (
    INSTALL_HINT,
    TransformersProvider,
    missing_packages,
)
from danlu.gateway.registry import ModelRegistry, ProviderConfig
from danlu.hub.objects import FileEntry
from danlu.hub.repos import Repos
from danlu.hub.tables import CommitFile, Repo, RepoType, ServedModel

Format = Literal["gguf", "transformers"]

# What a transformers repo is recognised by (at its root, where from_pretrained looks).
CONFIG_FILE = "config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model")
# Pickled weights can run code when loaded; they are neither loaded nor materialised.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


@dataclass(frozen=True)
class ServedInfo:
    name: str
    repo: str
    commit: str
    # The GGUF file served, or config.json for a transformers repo (the format is
    # stored this way, in the path, so the table needs no migration).
    path: str

    @property
    def format(self) -> Format:
        return "gguf" if self.path.lower().endswith(".gguf") else "transformers"

    @property
    def file(self) -> str | None:
        """The GGUF file served; None for a transformers repo (its whole root is)."""
        return self.path if self.format == "gguf" else None


@dataclass(frozen=True)
class _Plan:
    repo: Repo
    info: ServedInfo
    files: list[FileEntry]  # the GGUF, or the root files a transformers model loads from


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
            "`danlu hub import model.gguf --repo ...`) or transformers weights",
            param="repo",
        )
    if len(ggufs) > 1:
        choices = ", ".join(e.path for e in ggufs)
        raise InvalidRequest(
            f"{repo_id} holds several GGUF files ({choices}); name one with 'file'", param="file"
        )
    return ggufs[0]


def transformers_files(entries: list[FileEntry]) -> list[FileEntry]:
    """The files a transformers model loads from: the root's, less GGUFs and pickles."""
    return [
        e
        for e in entries
        if "/" not in e.path
        and not e.path.lower().endswith(".gguf")
        and not e.path.lower().endswith(PICKLE_SUFFIXES)
    ]


def transformers_missing(entries: list[FileEntry]) -> list[str]:
    """What a repo lacks to be loaded by transformers (empty: nothing)."""
    root = {e.path for e in entries if "/" not in e.path}
    missing = []
    if CONFIG_FILE not in root:
        missing.append(CONFIG_FILE)
    if not any(p.endswith(".safetensors") for p in root):
        missing.append("*.safetensors weights")
    if not root.intersection(TOKENIZER_FILES):
        missing.append("tokenizer files (tokenizer.json, tokenizer.model, vocab.json or vocab.txt)")
    return missing


def _missing_advice(entries: list[FileEntry], missing: list[str]) -> str:
    """The missing parts, and what the repo holds instead when that explains them."""
    text = ", ".join(missing)
    root = {e.path for e in entries if "/" not in e.path}
    pickled = any(p.lower().endswith(PICKLE_SUFFIXES) for p in root)
    if pickled and "*.safetensors weights" in missing:
        text += " (pickled weights such as pytorch_model.bin are not loaded: save as safetensors)"
    if "adapter_config.json" in root and CONFIG_FILE in missing:
        text += " (adapter_config.json: an adapter alone; merge it into its base model first)"
    return text


def choose_format(
    entries: list[FileEntry], wanted: Format | None, file: str | None, repo_id: str
) -> tuple[Format, list[FileEntry]]:
    """Which way to serve a snapshot, and the files that takes; 4xx if it cannot be."""
    if wanted == "transformers":
        if file is not None:
            raise InvalidRequest(
                "'file' names a GGUF; a transformers model is served from the repo's root",
                param="file",
            )
        missing = transformers_missing(entries)
        if missing:
            raise InvalidRequest(
                f"{repo_id} is not a transformers model: it lacks "
                f"{_missing_advice(entries, missing)}",
                param="repo",
            )
        return "transformers", transformers_files(entries)
    if wanted == "gguf" or file is not None:
        return "gguf", [pick_gguf(entries, file, repo_id)]
    has_gguf = any(e.path.lower().endswith(".gguf") for e in entries)
    missing = transformers_missing(entries)
    if has_gguf and not missing:
        raise InvalidRequest(
            f"{repo_id} holds both GGUF and transformers weights; say which to serve with "
            '\'format\': "gguf" or "transformers"',
            param="format",
        )
    if has_gguf:
        return "gguf", [pick_gguf(entries, None, repo_id)]
    if not missing:
        return "transformers", transformers_files(entries)
    raise InvalidRequest(
        f"{repo_id} holds no .gguf file and no transformers model: it lacks "
        f"{_missing_advice(entries, missing)}; danlu serves a GGUF file, or config.json, "
        "*.safetensors and tokenizer files at the repo's root",
        param="repo",
    )


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
        # Materialised transformers snapshots, one directory per commit.
        self.root = settings.home / "served"
        # Serving and stopping one at a time: a snapshot directory is removed only when no
        # served model uses it, which must not race a serve that is about to.
        self._lock = asyncio.Lock()

    def _config(self, info: ServedInfo, files: list[FileEntry]) -> ProviderConfig:
        common = {
            "model_name": info.name,
            "n_ctx": self.settings.llama_context,
            "owned_by": info.repo.split("/")[0],  # the repo's namespace
        }
        if info.format == "gguf":
            return ProviderConfig(
                name=_provider_name(info.name),
                type=LlamaCppProvider.type,
                options={"model_path": str(self.blobs.path(files[0].sha256)), **common},
            )
        return ProviderConfig(
            name=_provider_name(info.name),
            type=TransformersProvider.type,
            options={"model_path": str(self.materialise(info.commit, files)), **common},
        )

    def plan(
        self,
        principal: Principal,
        repo_id: str,
        *,
        revision: str | None,
        file: str | None,
        name: str | None,
        format: Format | None = None,
    ) -> _Plan:
        """Check everything before anything loads."""
        if Scope.ADMIN not in principal.scopes or not principal.is_admin:
            raise PermissionDenied("serving a model takes server resources: use an admin key")
        repo = self.repos.find(principal, RepoType.MODEL, repo_id)
        commit = self.repos.resolve(repo, revision)
        chosen, files = choose_format(self.repos.files(commit), format, file, repo.repo_id)
        if chosen == "transformers" and (missing := missing_packages()):
            raise ModelUnavailable(
                f"serving transformers weights needs {' and '.join(missing)} ({INSTALL_HINT})"
            )
        served_name = name or repo.repo_id
        with self.db.read() as session:
            if session.get(ServedModel, served_name) is not None:
                raise Conflict(f"{served_name!r} is already served; stop it first", param="name")
        path = files[0].path if chosen == "gguf" else CONFIG_FILE
        return _Plan(repo, ServedInfo(served_name, repo.repo_id, commit, path), files)

    async def serve(
        self,
        principal: Principal,
        repo_id: str,
        *,
        revision: str | None = None,
        file: str | None = None,
        name: str | None = None,
        format: Format | None = None,
    ) -> tuple[ServedInfo, list[Model]]:
        plan = await asyncio.to_thread(
            self.plan,
            principal,
            repo_id,
            revision=revision,
            file=file,
            name=name,
            format=format,
        )
        info = plan.info
        async with self._lock:
            try:
                config = await asyncio.to_thread(self._config, info, plan.files)
                models = await self.registry.add(config)
            except DanluError:
                await asyncio.to_thread(self._release, info)
                raise
            except Exception as exc:
                await asyncio.to_thread(self._release, info)
                # What the repo holds would not load (a broken config, an unknown
                # architecture): the repo's problem, reported as such.
                raise InvalidRequest(f"{info.repo} could not be served: {exc}") from exc
            try:
                await asyncio.to_thread(self._record, plan.repo, info, principal.username)
            except BaseException:
                await self.registry.remove(_provider_name(info.name))
                await asyncio.to_thread(self._release, info)
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

        def forget() -> ServedInfo:
            with self.db.write() as session:
                row = session.get(ServedModel, name)
                if row is None:
                    raise NotFound(f"{name!r} is not served from the hub", param="name")
                session.delete(row)
                return ServedInfo(row.name, "", row.commit_id, row.path)

        async with self._lock:
            info = await asyncio.to_thread(forget)
            await self.registry.remove(_provider_name(name))
            await asyncio.to_thread(self._release, info)

    async def restore(self) -> list[str]:
        """Load every recorded served repo (at start-up); report the ones that failed."""
        failed = []
        await asyncio.to_thread(self._sweep_staging)
        for info in await asyncio.to_thread(self.listing):
            if info.format == "gguf":
                with self.db.read() as session:
                    entry = session.get(CommitFile, (info.commit, info.path))
                files = [] if entry is None else [_entry(entry)]
            else:
                files = transformers_files(await asyncio.to_thread(self.repos.files, info.commit))
            if not files or not all(self.blobs.exists(f.sha256) for f in files):
                failed.append(f"{info.name}: its files are gone")
                continue
            try:
                config = await asyncio.to_thread(self._config, info, files)
                await self.registry.add(config)
            except Exception as exc:
                failed.append(f"{info.name}: {exc}")
        return failed

    # --- transformers snapshots on disk ---------------------------------

    def materialise(self, commit: str, files: list[FileEntry]) -> Path:
        """The directory holding ``files`` of ``commit``, made if need be (atomically)."""
        final = self.root / commit
        if final.is_dir():  # only ever renamed into place complete
            return final
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            for entry in files:
                source = self.blobs.path(entry.sha256)
                if not source.is_file():
                    raise NotFound(f"the blob of {entry.path} is missing from the blob store")
                target = staging / entry.path
                try:
                    # A link costs no space; nothing writes to it (loaders only read).
                    os.link(source, target)
                except OSError:  # another file system, or links not allowed
                    shutil.copyfile(source, target)
            try:
                staging.rename(final)
            except OSError:
                if not final.is_dir():  # not a concurrent start that made it first
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return final

    def _release(self, info: ServedInfo) -> None:
        """Remove a snapshot directory that no served model uses any more."""
        if info.format != "transformers":
            return
        with self.db.read() as session:
            paths = session.scalars(
                select(ServedModel.path).where(ServedModel.commit_id == info.commit)
            ).all()
        if any(ServedInfo("", "", info.commit, path).format == "transformers" for path in paths):
            return  # another name serves the same snapshot
        shutil.rmtree(self.root / info.commit, ignore_errors=True)

    def _sweep_staging(self) -> None:
        """Staging directories left by a crash: never complete, never used."""
        if self.root.is_dir():
            for leftover in self.root.glob(".staging-*"):
                shutil.rmtree(leftover, ignore_errors=True)


def _entry(row: CommitFile) -> FileEntry:
    return FileEntry(row.path, row.size, row.sha256, row.git_sha1, row.lfs)
