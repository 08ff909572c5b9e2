"""Hugging Face Hub protocol, part 3: uploads — preupload, LFS batch, commits.

Large files go through Git LFS: the client asks the batch endpoint where to
put each object, PUTs the bytes to the signed link we return (streamed to the
blob store and verified against their sha256 on the way), then commits. Small
files travel base64-encoded inside the NDJSON commit. Nothing becomes visible
until the commit transaction succeeds.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from danlu.api.hub_common import Signer, Writer, base_url, repo_type_from_plural, repo_url
from danlu.api.hub_transfer import receive_signed_upload
from danlu.api.state import Services, get_services
from danlu.core.blobs import check_sha256
from danlu.core.errors import InvalidRequest, PayloadTooLarge, Unsupported
from danlu.hub.commits import CopyFile, DeleteFile, DeleteFolder, Operation
from danlu.hub.names import validate_path
from danlu.hub.tables import RepoType

router = APIRouter(tags=["Hub (Hugging Face protocol)"])
Svc = Annotated[Services, Depends(get_services)]
LFS_MEDIA_TYPE = "application/vnd.git-lfs+json"


@router.post(
    "/api/{plural}/{namespace}/{name}/preupload/{revision}", summary="Which files go via LFS"
)
async def preupload(
    plural: str,
    namespace: str,
    name: str,
    revision: str,
    principal: Writer,
    services: Svc,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    repo_type = repo_type_from_plural(plural)
    files = body.get("files")
    if not isinstance(files, list):
        raise InvalidRequest("'files' must be a list of {path, size, sample}", param="files")

    inline_limit = services.settings.hub_inline_upload_bytes

    def decide() -> dict[str, Any]:
        repo = services.repos.find(principal, repo_type, f"{namespace}/{name}", write=True)
        head = services.repos.resolve(repo, urllib.parse.unquote(revision))
        current = {e.path: e for e in services.repos.files(head)}
        answers = []
        for item in files:
            path = validate_path(str(item.get("path", "")))
            size = int(item.get("size", 0))
            # Current huggingface_hub clients send every "lfs" file through Xet storage,
            # which danlu does not speak, unless HF_HUB_DISABLE_XET is set; files that fit
            # inline travel inside the commit instead, so unconfigured clients still work.
            lfs = size > inline_limit
            answer: dict[str, Any] = {
                "path": path,
                "uploadMode": "lfs" if lfs else "regular",
                "shouldIgnore": False,
            }
            if path in current:
                existing = current[path]
                answer["oid"] = existing.sha256 if existing.lfs else existing.git_sha1
            answers.append(answer)
        return {"files": answers, "commitOid": head}

    return await run_in_threadpool(decide)


# --- Git LFS ----------------------------------------------------------------------


def _lfs_response(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status, media_type=LFS_MEDIA_TYPE)


async def _batch(
    request: Request, repo_type: RepoType, namespace: str, name: str, principal: Writer
) -> JSONResponse:
    services: Services = request.app.state.services
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise InvalidRequest("the LFS batch request is not JSON") from None
    if not isinstance(body, dict) or body.get("operation") not in {"upload", "download"}:
        raise InvalidRequest("LFS batch needs operation 'upload' or 'download'", param="operation")
    objects = body.get("objects")
    if not isinstance(objects, list):
        raise InvalidRequest("LFS batch needs a list of objects", param="objects")
    repo_id = f"{namespace}/{name.removesuffix('.git')}"
    writing = body["operation"] == "upload"
    repo = await run_in_threadpool(
        services.repos.find, principal, repo_type, repo_id, write=writing
    )
    signer: Signer = request.app.state.signer
    root = base_url(request)
    answers = []
    for item in objects:
        oid, size = str(item.get("oid", "")), item.get("size")
        try:
            check_sha256(oid)
            if not isinstance(size, int) or size < 0:
                raise InvalidRequest("size must be a non-negative integer")
            if size > services.settings.hub_max_file_bytes:
                raise PayloadTooLarge(
                    f"the file is larger than the hub's limit of "
                    f"{services.settings.hub_max_file_bytes} bytes"
                )
        except (InvalidRequest, PayloadTooLarge) as exc:
            answers.append(
                {"oid": oid, "size": size, "error": {"code": 422, "message": exc.message}}
            )
            continue
        answer: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
        present = services.blobs.exists(oid) and services.blobs.size(oid) == size
        if writing and not present:
            token = signer.sign({"repo": repo.id, "oid": oid, "size": size})
            answer["actions"] = {
                "upload": {
                    "href": f"{root}/api/lfs/objects/{oid}?token={token}",
                    "header": {},
                    "expires_in": 3600,
                },
                "verify": {
                    "href": f"{root}/api/lfs/verify?token={token}",
                    "header": {},
                    "expires_in": 3600,
                },
            }
        elif not writing:
            # Downloads go through /resolve/, which checks access per file and revision.
            answer["error"] = {"code": 422, "message": "download files through /resolve/"}
        answers.append(answer)
    return _lfs_response({"transfer": "basic", "objects": answers, "hash_algo": "sha256"})


def _batch_route(repo_type: RepoType, prefix: str) -> None:
    async def batch(request: Request, namespace: str, name: str, principal: Writer) -> JSONResponse:
        return await _batch(request, repo_type, namespace, name, principal)

    batch.__name__ = f"lfs_batch_{repo_type.value}"
    router.add_api_route(
        f"{prefix}/{{namespace}}/{{name}}/info/lfs/objects/batch",
        batch,
        methods=["POST"],
        summary=f"Git LFS batch ({repo_type.value})",
    )


_batch_route(RepoType.DATASET, "/datasets")
_batch_route(RepoType.SPACE, "/spaces")
_batch_route(RepoType.MODEL, "")


@router.put("/api/lfs/objects/{oid}", summary="Upload one LFS object (signed link)")
async def lfs_upload(oid: str, token: str, request: Request, services: Svc) -> JSONResponse:
    await receive_signed_upload(request, services, oid, token)
    return JSONResponse({})


@router.post("/api/lfs/verify", summary="Confirm an LFS upload")
async def lfs_verify(token: str, request: Request, services: Svc) -> JSONResponse:
    claim = request.app.state.signer.verify(token)
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise InvalidRequest("the verify request is not JSON") from None
    oid = str(body.get("oid", claim.get("oid")) if isinstance(body, dict) else claim.get("oid"))
    if oid != claim.get("oid") or not services.blobs.exists(oid):
        raise InvalidRequest(f"object {oid} was not uploaded", param="oid", code="LfsObjectMissing")
    if services.blobs.size(oid) != claim.get("size"):
        raise InvalidRequest(f"object {oid} has the wrong size", param="size")
    return _lfs_response({})


@router.get(
    "/api/{plural}/{namespace}/{name}/xet-write-token/{revision:path}",
    summary="Xet storage is not offered",
    status_code=501,
)
@router.get(
    "/api/{plural}/{namespace}/{name}/xet-read-token/{revision:path}",
    summary="Xet storage is not offered",
    status_code=501,
)
async def xet_token(plural: str, namespace: str, name: str, revision: str) -> JSONResponse:
    message = (
        "danlu stores files with Git LFS, not Xet: set HF_HUB_DISABLE_XET=1 in the "
        "client's environment and upload again"
    )
    return JSONResponse({"error": message}, 501, headers={"X-Error-Message": message})


# --- commits ------------------------------------------------------------------------


def _operation(services: Services, number: int, line: dict[str, Any]) -> Operation | dict[str, Any]:
    """One NDJSON line: an operation, or the header (returned as a dict)."""
    key, value = line.get("key"), line.get("value")
    if not isinstance(value, dict):
        raise InvalidRequest(f"line {number}: 'value' must be an object", param="commit")
    if key == "header":
        return value
    if key == "file":
        path = validate_path(str(value.get("path", "")))
        if value.get("encoding", "base64") != "base64":
            raise InvalidRequest(f"{path}: only base64 encoding is supported", param="encoding")
        try:
            data = base64.b64decode(value.get("content", ""), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest(f"{path}: content is not valid base64", param="content") from None
        return services.committer.store_regular(path, data)
    if key == "lfsFile":
        if value.get("algo", "sha256") != "sha256":
            raise InvalidRequest("only sha256 LFS objects are supported", param="algo")
        oid = str(value.get("oid", ""))
        # Copies arrive as lfsFile lines without a size: take it from the stored object.
        size = value.get("size")
        if size is None and services.blobs.exists(oid):
            size = services.blobs.size(oid)
        return services.committer.lfs_file(str(value.get("path", "")), oid, int(size or -1))
    if key == "deletedFile":
        return DeleteFile(validate_path(str(value.get("path", ""))))
    if key == "deletedFolder":
        return DeleteFolder(str(value.get("path", "")))
    if key in {"copyFile", "copy"}:
        source = str(value.get("srcPath", value.get("src_path", "")))
        return CopyFile(
            validate_path(source),
            value.get("srcRevision"),
            validate_path(str(value.get("path", ""))),
        )
    raise InvalidRequest(f"line {number}: unknown operation {key!r}", param="commit")


async def _ndjson_lines(
    request: Request, max_line: int
) -> AsyncIterator[tuple[int, dict[str, Any]]]:
    """Parse the commit body line by line as it arrives: one file in memory at a time."""
    pending = bytearray()
    number = 0

    def parse(raw: bytes) -> dict[str, Any]:
        try:
            line = json.loads(raw)
        except ValueError:
            raise InvalidRequest(
                f"line {number} of the commit is not JSON", param="commit"
            ) from None
        if not isinstance(line, dict):
            raise InvalidRequest(f"line {number} of the commit is not an object", param="commit")
        return line

    async for chunk in request.stream():
        pending += chunk
        while (cut := pending.find(b"\n")) >= 0:
            raw = bytes(pending[:cut])
            del pending[: cut + 1]
            if raw.strip():
                number += 1
                yield number, parse(raw)
        if len(pending) > max_line:
            raise PayloadTooLarge(
                f"a commit line is longer than {max_line} bytes; upload big files through LFS"
            )
    if bytes(pending).strip():
        number += 1
        yield number, parse(bytes(pending))


@router.post("/api/{plural}/{namespace}/{name}/commit/{revision}", summary="Commit files (NDJSON)")
async def commit(
    request: Request,
    plural: str,
    namespace: str,
    name: str,
    revision: str,
    principal: Writer,
    services: Svc,
) -> dict[str, Any]:
    repo_type = repo_type_from_plural(plural)
    if request.query_params.get("create_pr") in {"1", "true", "True"}:
        raise Unsupported(
            "pull requests are not supported yet; commit to a branch instead", param="create_pr"
        )
    header: dict[str, Any] | None = None
    operations: list[Operation] = []
    # Inline files are stored as their lines arrive; only a successful commit makes them visible.
    max_line = services.settings.hub_inline_upload_bytes * 4 // 3 + 1024 * 1024
    # Check the right to write before storing a single byte.
    await run_in_threadpool(
        services.repos.find, principal, repo_type, f"{namespace}/{name}", write=True
    )
    async for number, line in _ndjson_lines(request, max_line):
        parsed = await run_in_threadpool(_operation, services, number, line)
        if isinstance(parsed, dict):
            header = parsed
        else:
            operations.append(parsed)
    if header is None:
        raise InvalidRequest("the commit has no header line", param="commit")
    branch = urllib.parse.unquote(revision)

    def apply() -> dict[str, Any]:
        assert header is not None
        repo = services.repos.find(principal, repo_type, f"{namespace}/{name}", write=True)
        done = services.committer.commit(
            principal,
            repo,
            operations,
            title=str(header.get("summary") or ""),
            message=str(header.get("description") or ""),
            branch=branch,
            parent_commit=header.get("parentCommit"),
        )
        return {
            "commitUrl": f"{repo_url(request, repo_type, repo.repo_id)}/commit/{done.id}",
            "commitOid": done.id,
            "commitMessage": done.title,
            "pullRequestUrl": None,
            "success": True,
        }

    return await run_in_threadpool(apply)
