"""Hugging Face Hub protocol, part 2: downloading files (``/resolve/``).

HEAD gives the client what it caches by: ``X-Repo-Commit`` (the commit the
revision resolved to), ``ETag`` (git blob id, or the sha256 for LFS files, as
the public hub sends), ``X-Linked-Etag``/``X-Linked-Size`` for LFS files and
``Content-Length``. GET streams the bytes from the blob store and honours
``Range`` (206), so interrupted downloads resume.
"""

from __future__ import annotations

import urllib.parse

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from danlu.api.hub_common import Caller
from danlu.api.hub_transfer import file_response
from danlu.api.state import Services
from danlu.hub.names import validate_path
from danlu.hub.objects import FileEntry
from danlu.hub.tables import RepoType

router = APIRouter(tags=["Hub (Hugging Face protocol)"])


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
    return file_response(request, services, entry, _headers(entry, commit))


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
