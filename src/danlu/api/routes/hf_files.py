"""Hugging Face Hub protocol, part 2: downloading files (``/resolve/``).

HEAD gives the client what it caches by: ``X-Repo-Commit`` (the commit the
revision resolved to), ``ETag`` (git blob id, or the sha256 for LFS files, as
the public hub sends), ``X-Linked-Etag``/``X-Linked-Size`` for LFS files and
``Content-Length``. GET streams the bytes from the blob store and honours
``Range`` (206), so interrupted downloads resume.
"""

from __future__ import annotations

import re
import urllib.parse

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from danlu.api.hub_common import Caller
from danlu.api.state import Services
from danlu.core.errors import RangeNotSatisfiable
from danlu.hub.names import validate_path
from danlu.hub.objects import FileEntry
from danlu.hub.tables import RepoType

router = APIRouter(tags=["Hub (Hugging Face protocol)"])
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _headers(entry: FileEntry, commit: str) -> dict[str, str]:
    etag = entry.sha256 if entry.lfs else entry.git_sha1
    filename = entry.path.rsplit("/", 1)[-1]
    headers = {
        "X-Repo-Commit": commit,
        "ETag": f'"{etag}"',
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
        "Content-Disposition": f"inline; filename*=UTF-8''{urllib.parse.quote(filename)}",
    }
    if entry.lfs:
        headers["X-Linked-Etag"] = f'"{entry.sha256}"'
        headers["X-Linked-Size"] = str(entry.size)
    return headers


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) for a single-range header, None for the whole file."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None  # unsupported forms (multi-range): send the whole file, as allowed
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = min(int(last) + 1, size) if last else size
    else:
        start, end = max(0, size - int(last)), size
    if start >= size or start >= end:
        raise RangeNotSatisfiable(
            f"range {header} is outside the file of {size} bytes", code="RangeNotSatisfiable"
        )
    return start, end


async def _resolve(
    request: Request,
    repo_type: RepoType,
    namespace: str,
    name: str,
    revision: str,
    path: str,
    principal: Caller,
) -> Response:
    services: Services = request.app.state.services
    revision = urllib.parse.unquote(revision)
    validate_path(path)

    def find() -> tuple[FileEntry, str]:
        repo = services.repos.find(principal, repo_type, f"{namespace}/{name}")
        commit = services.repos.resolve(repo, revision)
        entry = services.repos.file(repo, commit, path, revision)
        if request.method == "GET" and not request.headers.get("range"):
            services.repos.count_download(repo)
        return entry, commit

    entry, commit = await run_in_threadpool(find)
    headers = _headers(entry, commit)
    span = _byte_range(request.headers.get("range"), entry.size)
    if request.method == "HEAD":
        headers["Content-Length"] = str(entry.size)
        return Response(status_code=200, headers=headers)
    start, end = span or (0, entry.size)
    headers["Content-Length"] = str(end - start)
    status = 200
    if span is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{entry.size}"
    chunks = services.blobs.read_ahead(entry.sha256, start, end)
    return StreamingResponse(chunks, status_code=status, headers=headers)


def _route(repo_type: RepoType, prefix: str) -> None:
    async def resolve(
        request: Request, namespace: str, name: str, revision: str, path: str, principal: Caller
    ) -> Response:
        return await _resolve(request, repo_type, namespace, name, revision, path, principal)

    resolve.__name__ = f"resolve_{repo_type.value}"
    router.add_api_route(
        f"{prefix}/{{namespace}}/{{name}}/resolve/{{revision}}/{{path:path}}",
        resolve,
        methods=["GET", "HEAD"],
        summary=f"Download a file of a {repo_type.value}",
        response_model=None,
    )


_route(RepoType.DATASET, "/datasets")
_route(RepoType.SPACE, "/spaces")
_route(RepoType.MODEL, "")
