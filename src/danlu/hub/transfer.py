"""Getting models and datasets into the hub: from local files, or from another hub.

``import_path`` takes a folder or a single file (a GGUF, say) from disk, for
air-gapped machines. ``mirror`` copies a repo from a server that speaks the
Hugging Face Hub protocol (huggingface.co, another danlu, a corporate mirror) or
the ModelScope protocol (modelscope.cn, another danlu), file by file, streamed
straight into the blob store and checked against the upstream's sha256 (or git
blob id). Both end in one ordinary commit, so a failure
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


def added_file(blobs: BlobStore, path_in_repo: str, sha256: str, size: int) -> AddFile:
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
        operations.append(added_file(blobs, item.path_in_repo, info.sha256, info.size))
    return committer.commit(
        principal, repo, list(operations), title=message or f"Import {source.name}"
    )


@dataclass(frozen=True)
class RemoteFile:
    """A file on an upstream hub, with what we can check it against."""

    path: str
    url: str
    size: int
    sha256: str | None
    git_sha1: str | None


def _check(response: httpx.Response, what: str, endpoint: str) -> httpx.Response:
    if response.status_code in (401, 403, 404):
        raise NotFound(f"{what} was not found at {endpoint} (or needs a token: --token)")
    if response.status_code >= 400:
        raise UpstreamError(f"{endpoint} answered {response.status_code}: {response.text[:300]}")
    return response


def _list_huggingface(
    http: httpx.Client, endpoint: str, repo_type: RepoType, source: str, revision: str
) -> tuple[str, list[RemoteFile]]:
    quoted = urllib.parse.quote(revision, safe="")
    info_url = f"{endpoint}/api/{repo_type.plural}/{source}/revision/{quoted}"
    info = _check(
        http.get(info_url, params={"blobs": "true"}), f"{source}@{revision}", endpoint
    ).json()
    commit = info.get("sha") or revision
    prefix = "" if repo_type == RepoType.MODEL else f"{repo_type.plural}/"
    files = []
    for sibling in info.get("siblings") or []:
        path = validate_path(str(sibling["rfilename"]))
        url = f"{endpoint}/{prefix}{source}/resolve/{commit}/{urllib.parse.quote(path)}"
        files.append(
            RemoteFile(
                path,
                url,
                int(sibling.get("size") or 0),
                (sibling.get("lfs") or {}).get("sha256"),
                sibling.get("blobId"),
            )
        )
    return commit, files


def _list_modelscope(
    http: httpx.Client, endpoint: str, repo_type: RepoType, source: str, revision: str
) -> tuple[str, list[RemoteFile]]:
    """ModelScope lists files with their sha256 (paged for datasets) and serves them by path."""
    kind = "models" if repo_type == RepoType.MODEL else "datasets"
    base = f"{endpoint}/api/v1/{kind}/{source}/repo"
    items: list[dict[str, object]] = []
    page = 1
    while True:
        params = {
            "Revision": revision,
            "Recursive": "true",
            "Root": "",
            "PageNumber": str(page),
            "PageSize": "100",
        }
        listing = _check(http.get(f"{base}/tree", params=params), f"{source}@{revision}", endpoint)
        found = (listing.json().get("Data") or {}).get("Files") or []
        items += found
        if len(found) < 100:
            break
        page += 1
    files = []
    commit = revision
    for item in items:
        if item.get("Type") != "blob":
            continue
        path = validate_path(str(item["Path"]))
        commit = str(item.get("Revision") or commit)
        query = urllib.parse.urlencode({"Revision": revision, "FilePath": path})
        files.append(
            RemoteFile(
                path,
                f"{base}?{query}",
                int(str(item.get("Size") or 0)),
                str(item.get("Sha256") or "") or None,
                None,
            )
        )
    return commit, files


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
    revision: str | None = None,
    token: str | None = None,
    protocol: str = "huggingface",
    private: bool = False,
    progress: Progress | None = None,
    on_total: Callable[[int], None] | None = None,
    timeout: float = 60,
) -> CommitInfo:
    """Copy ``source_repo`` from an upstream hub (Hugging Face or ModelScope protocol)."""
    endpoint = endpoint.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    cookies = {"m_session_id": token} if token and protocol == "modelscope" else None
    with httpx.Client(
        headers=headers, cookies=cookies, timeout=timeout, follow_redirects=True
    ) as http:
        if protocol == "modelscope":
            revision = revision or "master"
            commit, files = _list_modelscope(http, endpoint, repo_type, source_repo, revision)
        else:
            revision = revision or "main"
            commit, files = _list_huggingface(http, endpoint, repo_type, source_repo, revision)
        if on_total:
            on_total(sum(f.size for f in files))
        repo = ensure_repo(repos, principal, repo_type, target_repo, private=private)
        operations = [_fetch(http, blobs, remote, progress) for remote in files]
    return committer.commit(
        principal,
        repo,
        list(operations),
        title=f"Mirror {source_repo}@{commit[:12]} from {endpoint}",
    )


def _fetch(
    http: httpx.Client, blobs: BlobStore, remote: RemoteFile, progress: Progress | None
) -> AddFile:
    """Stream one file into the blob store, checked against what the upstream said it is."""
    with http.stream("GET", remote.url) as download:
        if download.status_code >= 400:
            raise UpstreamError(f"downloading {remote.path} failed with {download.status_code}")

        def chunks() -> Iterator[bytes]:
            for chunk in download.iter_bytes(CHUNK):
                if progress:
                    progress(len(chunk))
                yield chunk

        stored = blobs.put(chunks(), expected_sha256=remote.sha256)
    if remote.git_sha1 and not remote.sha256:
        actual = git_blob_sha1(blobs.read_bytes(stored.sha256))
        if actual != remote.git_sha1:
            raise UpstreamError(
                f"{remote.path} arrived corrupted (git blob id {actual}, "
                f"expected {remote.git_sha1})"
            )
    return added_file(blobs, remote.path, stored.sha256, stored.size)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for chunk in _read_file(path, None):
        digest.update(chunk)
    return digest.hexdigest()
