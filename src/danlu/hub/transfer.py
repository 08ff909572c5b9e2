"""Getting models and datasets into the hub: from local files, or from another hub.

``import_path`` takes a folder or a single file (a GGUF, say) from disk, for
air-gapped machines. ``mirror`` copies a repo from any server that speaks the
Hugging Face Hub protocol — huggingface.co, another danlu, a corporate mirror —
file by file, streamed straight into the blob store and checked against the
upstream's sha256 for LFS files. Both end in one ordinary commit, so a failure
half-way leaves the target repo exactly as it was.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from danlu.core.blobs import CHUNK, BlobStore
from danlu.core.errors import InvalidRequest, NotFound, UpstreamError
from danlu.core.keys import Principal
from danlu.hub.commits import AddFile, Committer
from danlu.hub.errors import RepoNotFound
from danlu.hub.names import validate_path
from danlu.hub.objects import CommitInfo, git_blob_sha1, lfs_pointer, should_use_lfs
from danlu.hub.repos import Repos
from danlu.hub.tables import Repo, RepoType

Progress = Callable[[int], None]  # called with bytes done since the last call
_SKIP = {".git", "__pycache__", ".DS_Store"}


@dataclass(frozen=True)
class PlannedFile:
    path_in_repo: str
    size: int


def plan_import(source: Path) -> list[tuple[Path, PlannedFile]]:
    """The files an import would take, with their repo paths (validated)."""
    if source.is_file():
        return [(source, PlannedFile(validate_path(source.name), source.stat().st_size))]
    if not source.is_dir():
        raise NotFound(f"{source} does not exist")
    planned = []
    for root, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP)
        for name in sorted(files):
            if name in _SKIP:
                continue
            full = Path(root) / name
            if full.is_symlink() and not full.resolve().is_file():
                continue
            relative = full.relative_to(source).as_posix()
            planned.append((full, PlannedFile(validate_path(relative), full.stat().st_size)))
    if not planned:
        raise InvalidRequest(f"{source} holds no files to import")
    return planned


def ensure_repo(
    repos: Repos, principal: Principal, repo_type: RepoType, repo_id: str, *, private: bool
) -> Repo:
    try:
        return repos.find(principal, repo_type, repo_id, write=True)
    except RepoNotFound:
        return repos.create(principal, repo_type, repo_id, private=private, url="")


def _read_file(path: Path, progress: Progress | None) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            if progress:
                progress(len(chunk))
            yield chunk


def _added(blobs: BlobStore, path_in_repo: str, sha256: str, size: int) -> AddFile:
    """An AddFile for a stored blob, LFS or regular by the hub's usual rule."""
    sample = b"".join(blobs.read(sha256, 0, 512))
    if should_use_lfs(path_in_repo, size, sample):
        return AddFile(path_in_repo, sha256, size, True, git_blob_sha1(lfs_pointer(sha256, size)))
    return AddFile(path_in_repo, sha256, size, False, git_blob_sha1(blobs.read_bytes(sha256)))


def import_path(
    repos: Repos,
    committer: Committer,
    blobs: BlobStore,
    principal: Principal,
    source: Path,
    repo_id: str,
    *,
    repo_type: RepoType = RepoType.MODEL,
    private: bool = False,
    message: str | None = None,
    progress: Progress | None = None,
) -> CommitInfo:
    """Import a local folder or file as one commit on ``main``."""
    planned = plan_import(source)
    repo = ensure_repo(repos, principal, repo_type, repo_id, private=private)
    operations = []
    for full, item in planned:
        info = blobs.put(_read_file(full, progress))
        operations.append(_added(blobs, item.path_in_repo, info.sha256, info.size))
    return committer.commit(
        principal, repo, list(operations), title=message or f"Import {source.name}"
    )


def mirror(
    repos: Repos,
    committer: Committer,
    blobs: BlobStore,
    principal: Principal,
    endpoint: str,
    source_repo: str,
    target_repo: str,
    *,
    repo_type: RepoType = RepoType.MODEL,
    revision: str = "main",
    token: str | None = None,
    private: bool = False,
    progress: Progress | None = None,
    on_total: Callable[[int], None] | None = None,
    timeout: float = 60,
) -> CommitInfo:
    """Copy ``source_repo`` at ``revision`` from a Hugging Face protocol hub to ``target_repo``."""
    endpoint = endpoint.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    quoted = urllib.parse.quote(revision, safe="")
    prefix = "" if repo_type == RepoType.MODEL else f"{repo_type.plural}/"
    with httpx.Client(headers=headers, timeout=timeout, follow_redirects=True) as http:
        info_url = f"{endpoint}/api/{repo_type.plural}/{source_repo}/revision/{quoted}"
        response = http.get(info_url, params={"blobs": "true"})
        if response.status_code == 404:
            raise NotFound(f"{source_repo} (revision {revision}) was not found at {endpoint}")
        if response.status_code >= 400:
            raise UpstreamError(
                f"{endpoint} answered {response.status_code}: {response.text[:300]}"
            )
        info = response.json()
        commit = info.get("sha") or revision
        siblings = info.get("siblings") or []
        if on_total:
            on_total(sum(int(s.get("size") or 0) for s in siblings))
        repo = ensure_repo(repos, principal, repo_type, target_repo, private=private)
        operations = []
        for sibling in siblings:
            path = validate_path(str(sibling["rfilename"]))
            url = f"{endpoint}/{prefix}{source_repo}/resolve/{commit}/{urllib.parse.quote(path)}"
            expected = (sibling.get("lfs") or {}).get("sha256")
            with http.stream("GET", url) as download:
                if download.status_code >= 400:
                    raise UpstreamError(f"downloading {path} failed with {download.status_code}")

                def chunks() -> Iterator[bytes]:
                    for chunk in download.iter_bytes(CHUNK):
                        if progress:
                            progress(len(chunk))
                        yield chunk

                stored = blobs.put(chunks(), expected_sha256=expected)
            if sibling.get("blobId") and not expected:
                actual = git_blob_sha1(blobs.read_bytes(stored.sha256))
                if actual != sibling["blobId"]:
                    raise UpstreamError(
                        f"{path} arrived corrupted (git blob id {actual} != {sibling['blobId']})"
                    )
            operations.append(_added(blobs, path, stored.sha256, stored.size))
    return committer.commit(
        principal,
        repo,
        list(operations),
        title=f"Mirror {source_repo}@{commit[:12]} from {endpoint}",
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for chunk in _read_file(path, None):
        digest.update(chunk)
    return digest.hexdigest()
