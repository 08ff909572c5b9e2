"""ModelScope hub protocol, part 2: file listings, downloads and uploads.

Listings carry each file's exact ``Size`` and lowercase ``Sha256``: the client
checks every snapshot download against both. Downloads stream from the blob
store and honour ``Range`` (the client resumes with ``bytes=N-``). Uploads go
LFS batch → ``PUT`` of the bytes to a signed link → one JSON commit whose small
files travel inline as base64; nothing becomes visible before the commit.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select

from danlu.api.hub_common import Signer, base_url
from danlu.api.hub_transfer import file_response, receive_signed_upload
from danlu.api.routes.modelscope import (
    MsCaller,
    MsWriter,
    Svc,
    branch_of,
    find_repo,
    ok,
    repo_type_of,
    request_id,
    resolve,
)
from danlu.api.state import Services
from danlu.core.blobs import check_sha256
from danlu.core.errors import InvalidRequest, NotFound, PayloadTooLarge
from danlu.core.keys import Principal
from danlu.hub.commits import DeleteFile, Operation
from danlu.hub.names import validate_folder, validate_path
from danlu.hub.objects import FileEntry
from danlu.hub.tables import Repo, RepoType

router = APIRouter(tags=["Hub (ModelScope protocol)"])
_TRUE = {"true", "1", "yes"}


# --- listings -------------------------------------------------------------------------


def _file_item(entry: FileEntry, commit: str) -> dict[str, Any]:
    return {
        "Name": entry.path.rsplit("/", 1)[-1],
        "Path": entry.path,
        "Type": "blob",
        "Size": entry.size,
        "Sha256": entry.sha256,
        "IsLFS": entry.lfs,
        "BlobId": entry.git_sha1,
        "Revision": commit,
    }


def _folder_item(path: str, commit: str) -> dict[str, Any]:
    # MsDataset indexes Type, Path, Size and Sha256 on every entry, folders included.
    return {
        "Name": path.rsplit("/", 1)[-1],
        "Path": path,
        "Type": "tree",
        "Size": 0,
        "Sha256": "",
        "IsLFS": False,
        "BlobId": "",
        "Revision": commit,
    }


def _listing(
    services: Services, repo: Repo, revision: str | None, root: str, recursive: bool
) -> list[dict[str, Any]]:
    """Files and the folders they imply under ``root``, sorted by path."""
    commit = resolve(services, repo, revision)
    entries = services.repos.files(commit, root, recursive=True)
    prefix = f"{root}/" if root else ""
    items: dict[str, dict[str, Any]] = {}
    for entry in entries:
        parts = entry.path[len(prefix) :].split("/")
        for depth in range(1, len(parts) if recursive else min(2, len(parts))):
            folder = prefix + "/".join(parts[:depth])
            items.setdefault(folder, _folder_item(folder, commit))
        if recursive or len(parts) == 1:
            items[entry.path] = _file_item(entry, commit)
    return [items[path] for path in sorted(items)]


def _flag(value: str | None, default: bool) -> bool:
    return default if value is None else value.strip().lower() in _TRUE


def _root(value: str | None) -> str:
    return validate_folder(value or "")


def _page(request: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One page when PageNumber is given (1-based), every item otherwise.

    The client pages until a page is shorter than PageSize, so the page size asked for is
    always honoured whatever its size: capping it would silently truncate the listing.
    """
    number = request.query_params.get("PageNumber")
    if number is None:
        return items
    try:
        page, size = int(number), int(request.query_params.get("PageSize") or 100)
    except ValueError:
        raise InvalidRequest("PageNumber and PageSize must be integers", param="PageSize") from None
    if page < 1 or size < 1:
        raise InvalidRequest("PageNumber and PageSize start at 1", param="PageSize")
    return items[(page - 1) * size : page * size]


@router.get("/api/v1/datasets/{dataset_id}/repo/tree", summary="Dataset files by id (ModelScope)")
async def dataset_tree_by_id(
    request: Request, dataset_id: str, principal: MsCaller, services: Svc
) -> JSONResponse:
    # get_dataset_files and MsDataset look the dataset's Id up first, then list by it.
    query = request.query_params

    def build() -> list[dict[str, Any]]:
        with services.db.read() as session:
            found = session.scalar(
                select(Repo).where(Repo.id == dataset_id, Repo.type == RepoType.DATASET)
            )
        if found is None:
            raise NotFound(f"no dataset with id {dataset_id!r}", code="RepoNotFound")
        repo = find_repo(services, principal, RepoType.DATASET, found.repo_id)
        items = _listing(
            services,
            repo,
            query.get("Revision"),
            _root(query.get("Root")),
            _flag(query.get("Recursive"), False),
        )
        return _page(request, items)

    return ok(request, {"Files": await run_in_threadpool(build)})


async def _list(
    request: Request,
    kind: str,
    owner: str,
    name: str,
    principal: Principal | None,
    services: Services,
) -> JSONResponse:
    repo_type = repo_type_of(kind)
    query = request.query_params

    def build() -> list[dict[str, Any]]:
        repo = find_repo(services, principal, repo_type, f"{owner}/{name}")
        items = _listing(
            services,
            repo,
            query.get("Revision"),
            _root(query.get("Root")),
            _flag(query.get("Recursive"), False),
        )
        return _page(request, items)

    return ok(request, {"Files": await run_in_threadpool(build)})


@router.get("/api/v1/{kind}/{owner}/{name}/repo/files", summary="List files (ModelScope)")
async def repo_files(
    request: Request, kind: str, owner: str, name: str, principal: MsCaller, services: Svc
) -> JSONResponse:
    return await _list(request, kind, owner, name, principal, services)


@router.get("/api/v1/{kind}/{owner}/{name}/repo/tree", summary="List files, paged (ModelScope)")
async def repo_tree(
    request: Request, kind: str, owner: str, name: str, principal: MsCaller, services: Svc
) -> JSONResponse:
    return await _list(request, kind, owner, name, principal, services)


# --- downloads --------------------------------------------------------------------------


@router.api_route(
    "/api/v1/{kind}/{owner}/{name}/repo",
    methods=["GET", "HEAD"],
    summary="Download a file (ModelScope)",
    response_model=None,
)
async def download(
    request: Request, kind: str, owner: str, name: str, principal: MsCaller, services: Svc
) -> Response:
    repo_type = repo_type_of(kind)
    path = request.query_params.get("FilePath")
    if not path:
        raise InvalidRequest("'FilePath' is required", param="FilePath")
    validate_path(path)
    revision = request.query_params.get("Revision")

    def find() -> FileEntry:
        repo = find_repo(services, principal, repo_type, f"{owner}/{name}")
        commit = resolve(services, repo, revision)
        entry = services.repos.file(repo, commit, path, revision or "master")
        if request.method == "GET" and not request.headers.get("range"):
            services.repos.count_download(repo)
        return entry

    entry = await run_in_threadpool(find)
    filename = urllib.parse.quote(entry.path.rsplit("/", 1)[-1])
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
        "Content-Disposition": f"attachment; filename*=UTF-8''{filename}",
        # The client checks a 64-hex X-Linked-ETag as the content's sha256 when it has none.
        "X-Linked-ETag": entry.sha256,
        "X-Linked-Size": str(entry.size),
    }
    return file_response(request, services, entry, headers)


# --- uploads: LFS batch and the signed PUT ------------------------------------------------


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise InvalidRequest(f"the {what} body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest(f"the {what} body must be a JSON object")
    return body


@router.post(
    "/api/v1/repos/{kind}/{owner}/{name}/info/lfs/objects/batch",
    summary="Where to upload large files (ModelScope)",
)
async def lfs_batch(
    request: Request, kind: str, owner: str, name: str, principal: MsWriter, services: Svc
) -> JSONResponse:
    repo_type = repo_type_of(kind)
    body = _json_object(await request.body(), "LFS batch")
    if body.get("operation", "upload") != "upload":
        raise InvalidRequest("only the 'upload' operation is supported", param="operation")
    objects = body.get("objects")
    if not isinstance(objects, list):
        raise InvalidRequest("'objects' must be a list of {oid, size}", param="objects")
    limit = services.settings.hub_max_file_bytes
    wanted: list[tuple[str, int]] = []
    for item in objects:
        oid = str(item.get("oid", "")) if isinstance(item, dict) else ""
        size = item.get("size") if isinstance(item, dict) else None
        check_sha256(oid)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidRequest(f"object {oid}: size must be a non-negative integer", param="size")
        if size > limit:
            raise PayloadTooLarge(f"object {oid} is larger than the hub's limit of {limit} bytes")
        wanted.append((oid, size))
    repo = await run_in_threadpool(
        find_repo, services, principal, repo_type, f"{owner}/{name}", write=True
    )
    signer: Signer = request.app.state.signer
    root = base_url(request)
    answers: list[dict[str, Any]] = []
    for oid, size in wanted:
        answer: dict[str, Any] = {"oid": oid, "size": size}
        # An object listed without "actions" is one the server already has: no PUT follows.
        if not (services.blobs.exists(oid) and services.blobs.size(oid) == size):
            token = signer.sign({"repo": repo.id, "oid": oid, "size": size})
            answer["actions"] = {
                "upload": {
                    "href": f"{root}/api/v1/lfs/objects/{oid}?token={token}",
                    "header": {},
                    "expires_in": 3600,
                }
            }
        answers.append(answer)
    return ok(request, {"transfer": "basic", "objects": answers})


@router.put("/api/v1/lfs/objects/{oid}", summary="Upload one large file (signed link)")
async def lfs_put(oid: str, token: str, request: Request, services: Svc) -> JSONResponse:
    await receive_signed_upload(request, services, oid, token)
    # Old clients (<= 1.37) require Code 200 in this reply.
    return JSONResponse(
        {"Code": 200, "Message": "success", "RequestId": request_id(request), "Success": True}
    )


# --- commits ------------------------------------------------------------------------------


def _actions(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The commit's actions, every path checked before anything is stored."""
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions:
        raise InvalidRequest("'actions' must be a non-empty list", param="actions")
    checked: list[dict[str, Any]] = []
    for number, action in enumerate(actions, start=1):
        if not isinstance(action, dict):
            raise InvalidRequest(f"action {number} must be an object", param="actions")
        kind = action.get("action")
        if kind not in {"create", "update", "delete"}:
            raise InvalidRequest(
                f"action {number}: 'action' must be create, update or delete, not {kind!r}",
                param="action",
            )
        validate_path(str(action.get("path", "")))
        if kind != "delete" and action.get("type", "normal") not in {"normal", "lfs"}:
            raise InvalidRequest(f"action {number}: 'type' must be normal or lfs", param="type")
        checked.append(action)
    return checked


def _operation(services: Services, action: dict[str, Any]) -> Operation:
    path = str(action["path"])
    if action["action"] == "delete":
        return DeleteFile(path)
    if action.get("type", "normal") == "lfs":
        size = action.get("size")
        if not isinstance(size, int) or isinstance(size, bool):
            raise InvalidRequest(f"{path}: 'size' must be an integer", param="size")
        return services.committer.lfs_file(path, str(action.get("sha256", "")), size)
    if action.get("encoding") not in {"base64", "", None}:
        raise InvalidRequest(f"{path}: only base64 content is supported", param="encoding")
    try:
        data = base64.b64decode(str(action.get("content") or ""), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{path}: 'content' is not valid base64", param="content") from None
    return services.committer.store_regular(path, data)


@router.post(
    "/api/v1/repos/{kind}/{owner}/{name}/commit/{revision:path}",
    summary="Commit files (ModelScope)",
)
async def commit(
    request: Request,
    kind: str,
    owner: str,
    name: str,
    revision: str,
    principal: MsWriter,
    services: Svc,
) -> JSONResponse:
    repo_type = repo_type_of(kind)
    body = _json_object(await request.body(), "commit")
    actions = _actions(body)
    summary = str(body.get("commit_message") or "").strip() or "Upload files"
    title, _, description = summary.partition("\n")
    wanted = urllib.parse.unquote(revision)

    def apply() -> dict[str, Any]:
        repo = find_repo(services, principal, repo_type, f"{owner}/{name}", write=True)
        branch = branch_of(services, repo, wanted)
        operations = [_operation(services, action) for action in actions]
        done = services.committer.commit(
            principal,
            repo,
            operations,
            title=title.strip() or "Upload files",
            message=description.strip(),
            branch=branch,
        )
        return {
            "oid": done.id,
            "CommitId": done.id,
            "Branch": wanted,
            "CommitMessage": done.title,
            "ParentCommitId": done.parent_id,
        }

    return ok(request, await run_in_threadpool(apply))
