"""ModelScope hub protocol, part 1: login, identity, repos, revisions, tags.

What the stock ``modelscope`` client (1.38+, i.e. ``modelscope-hub``) sends when
a user sets ``MODELSCOPE_ENDPOINT=http://danlu:8000``. It speaks two surfaces:

* ``/api/v1/...`` answers in the legacy envelope
  ``{"Code": 200, "Data": ..., "Message": "success", "RequestId": ..., "Success": true}``;
* ``/openapi/v1/...`` answers ``{"success": true, "request_id": ..., "data": ...}``.

The client tells success from failure by the HTTP status alone (a 200 with
``"Success": false`` reads as success), so every failure here is a real 4xx or
5xx, rendered in the matching envelope by ``danlu.api.errors.render``.

Tokens are danlu API keys, accepted from ``Authorization: Bearer`` and from the
``m_session_id`` cookie (the client sends both, and some of its code paths only
the cookie). Access rules are the hub's own: private repos are 404 to others,
writes need a key with ``hub:write``. Files, listings and uploads are in
``modelscope_files.py``.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from danlu.api.auth import bearer_token
from danlu.api.hub_common import repo_url
from danlu.api.state import Services, get_services
from danlu.core.errors import AuthenticationFailed, InvalidRequest, NotFound
from danlu.core.keys import Principal
from danlu.hub.errors import RepoNotFound, RevisionNotFound
from danlu.hub.objects import DEFAULT_BRANCH
from danlu.hub.tables import RefKind, Repo, RepoType

router = APIRouter(tags=["Hub (ModelScope protocol)"])
Svc = Annotated[Services, Depends(get_services)]

# ModelScope's default branch is called "master": its clients send Revision=master unless told
# otherwise (and commit to /commit/master), and never say "main". danlu repos start on "main",
# as on Hugging Face, so that both protocols share one repo. "master" is therefore read as the
# default branch — unless the repo really has a branch named master, which then wins.
MASTER = "master"
SESSION_COOKIE = "m_session_id"
SESSION_SECONDS = 30 * 24 * 3600
# ModelScope's visibility numbers: 1 private, 3 internal (logged-in users), 5 public.
PUBLIC = 5
PRIVATE = 1
# "General" datasets: MsDataset.load reads files through its Hugging Face datasets path.
GENERAL_DATASET = 4
_KINDS = {"models": RepoType.MODEL, "datasets": RepoType.DATASET}


# --- envelopes ----------------------------------------------------------------------


def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


def ok(request: Request, data: Any) -> JSONResponse:
    """A success in the legacy /api/v1 envelope."""
    return JSONResponse(
        {
            "Code": 200,
            "Data": data,
            "Message": "success",
            "RequestId": request_id(request),
            "Success": True,
        }
    )


def openapi_ok(request: Request, data: Any) -> JSONResponse:
    """A success in the /openapi/v1 envelope."""
    return JSONResponse({"success": True, "request_id": request_id(request), "data": data})


# --- callers ------------------------------------------------------------------------


def ms_principal(request: Request, services: Svc) -> Principal | None:
    """The caller from ``Authorization: Bearer`` or the ``m_session_id`` cookie; None if neither.

    A key that is sent but wrong is a 401, never silently anonymous.
    """
    if request.headers.get("authorization"):
        token = bearer_token(request)
    else:
        token = request.cookies.get(SESSION_COOKIE, "").strip()
        if not token:
            return None
    principal = services.keys.authenticate(token)
    request.state.principal = principal
    return principal


def ms_writer(principal: Annotated[Principal | None, Depends(ms_principal)]) -> Principal:
    if principal is None:
        raise AuthenticationFailed(
            "this needs a danlu API key (sk-danlu-…): call HubApi().login(key) or set "
            "MODELSCOPE_API_TOKEN; writing needs a key with the hub:write scope",
            code="missing_api_key",
        )
    return principal


MsCaller = Annotated[Principal | None, Depends(ms_principal)]
MsWriter = Annotated[Principal, Depends(ms_writer)]


def repo_type_of(kind: str) -> RepoType:
    try:
        return _KINDS[kind]
    except KeyError:
        raise NotFound(f"no route for {kind!r}; use models or datasets") from None


def find_repo(
    services: Services,
    principal: Principal | None,
    repo_type: RepoType,
    repo_id: str,
    *,
    write: bool = False,
) -> Repo:
    """The repo by the hub's access rules, with a not-found message for ModelScope users."""
    try:
        return services.repos.find(principal, repo_type, repo_id, write=write)
    except RepoNotFound:
        raise NotFound(
            f"repository {repo_id!r} not found, or you do not have access to it; check the name "
            "and that your key (HubApi().login or MODELSCOPE_API_TOKEN) belongs to a member of "
            "its namespace",
            param="repo_id",
            code="RepoNotFound",
        ) from None


# --- revisions: "master" is the default branch ------------------------------------


def _has_master(services: Services, repo: Repo) -> bool:
    branches, _ = services.repos.refs(repo)
    return any(b.name == MASTER for b in branches)


def branch_of(services: Services, repo: Repo, revision: str | None) -> str:
    """The danlu branch a ModelScope revision names (for commits)."""
    if not revision:
        return DEFAULT_BRANCH
    if revision == MASTER and not _has_master(services, repo):
        return DEFAULT_BRANCH
    return revision


def resolve(services: Services, repo: Repo, revision: str | None) -> str:
    """A ModelScope revision (branch, tag, commit id; "master" for the default) → commit id."""
    try:
        return services.repos.resolve(repo, revision or DEFAULT_BRANCH)
    except RevisionNotFound:
        if revision == MASTER:
            return services.repos.resolve(repo, DEFAULT_BRANCH)
        raise


def _epoch(value: datetime) -> int:
    return int(value.timestamp())


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


# --- login and identity -------------------------------------------------------------


@router.post("/api/v1/login", summary="Log in with a danlu API key (ModelScope)")
async def login(request: Request, services: Svc) -> JSONResponse:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise InvalidRequest("the login body is not JSON", param="AccessToken") from None
    token = str(body.get("AccessToken") or "").strip() if isinstance(body, dict) else ""
    if not token:
        raise AuthenticationFailed(
            "send {'AccessToken': 'sk-danlu-…'}: a danlu API key", code="missing_api_key"
        )

    def check() -> dict[str, Any]:
        principal = services.keys.authenticate(token)
        user = services.accounts.user(principal.username)
        # danlu has no git remote: the "git token" the client stores is the same key.
        return {"AccessToken": token, "Username": user.username, "Email": user.email or ""}

    response = ok(request, await run_in_threadpool(check))
    # The client persists this cookie jar as its login; later processes send the cookie's
    # value as their token, so it must be the key itself.
    response.set_cookie(
        SESSION_COOKIE, token, max_age=SESSION_SECONDS, path="/", httponly=True, samesite="lax"
    )
    return response


@router.get("/openapi/v1/users/me", summary="Who the key belongs to (ModelScope)")
async def users_me(request: Request, principal: MsWriter, services: Svc) -> JSONResponse:
    user = await run_in_threadpool(services.accounts.user, principal.username)
    data = {
        "id": user.id,
        "username": user.username,
        "name": user.username,
        "nickname": user.display_name or user.username,
        "email": user.email or "",
    }
    return openapi_ok(request, data)


# --- create ---------------------------------------------------------------------------


def _form_fields(content_type: str, raw: bytes) -> dict[str, str]:
    """The string fields of a multipart/form-data body (the dataset create call sends one)."""
    header = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + raw)
    if not message.is_multipart():
        raise InvalidRequest("expected a multipart/form-data body", param="body")
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode("utf-8", "replace")
    return fields


async def _create_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return dict(_form_fields(content_type, raw))
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise InvalidRequest("the body is neither JSON nor multipart/form-data") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


def _is_private(visibility: Any) -> bool:
    """1 (private) and 3 (internal: any logged-in user) are both private in danlu."""
    try:
        return int(visibility if visibility not in (None, "") else PUBLIC) != PUBLIC
    except (TypeError, ValueError):
        raise InvalidRequest(
            f"Visibility {visibility!r} must be 1 (private), 3 (internal) or 5 (public)",
            param="Visibility",
        ) from None


async def _create(
    request: Request, principal: Principal, services: Services, repo_type: RepoType
) -> JSONResponse:
    body = await _create_body(request)
    owner_key = "Path" if repo_type == RepoType.MODEL else "Owner"
    owner = str(body.get(owner_key) or body.get("Owner") or body.get("Path") or "")
    owner = owner or principal.username
    name = str(body.get("Name") or "")
    if not name:
        raise InvalidRequest("'Name' is required", param="Name")
    private = _is_private(body.get("Visibility"))
    repo_id = f"{owner}/{name}"
    url = repo_url(request, repo_type, repo_id)
    repo = await run_in_threadpool(
        services.repos.create, principal, repo_type, repo_id, private=private, url=url
    )
    data = {
        "Id": repo.id,
        "Path": repo.namespace,
        "Owner": repo.namespace,
        "Name": repo.name,
        "Visibility": PRIVATE if repo.private else PUBLIC,
    }
    return ok(request, data)


@router.post("/api/v1/models", summary="Create a model repo (ModelScope)")
async def create_model(request: Request, principal: MsWriter, services: Svc) -> JSONResponse:
    return await _create(request, principal, services, RepoType.MODEL)


@router.post("/api/v1/datasets", summary="Create a dataset repo (ModelScope)")
async def create_dataset(request: Request, principal: MsWriter, services: Svc) -> JSONResponse:
    return await _create(request, principal, services, RepoType.DATASET)


# --- repo info and existence ----------------------------------------------------------


def _legacy_info(repo: Repo) -> dict[str, Any]:
    data: dict[str, Any] = {
        "Id": repo.id,
        "Name": repo.name,
        "Path": repo.namespace,
        "Owner": repo.namespace,
        "Visibility": PRIVATE if repo.private else PUBLIC,
        "Private": repo.private,
        "License": repo.license or "",
        "Downloads": repo.downloads,
        "Likes": repo.likes,
        "CreatedAt": _epoch(repo.created_at),
        "LastModified": _epoch(repo.updated_at),
        "Tags": [t for t in repo.tags.strip(",").split(",") if t],
    }
    if repo.type == RepoType.DATASET:
        data["Type"] = GENERAL_DATASET
    return data


@router.get("/openapi/v1/{kind}/{owner}/{name}", summary="Repo info (ModelScope OpenAPI)")
async def openapi_repo(
    request: Request, kind: str, owner: str, name: str, principal: MsCaller, services: Svc
) -> JSONResponse:
    repo_type = repo_type_of(kind)
    repo = await run_in_threadpool(find_repo, services, principal, repo_type, f"{owner}/{name}")
    data = {
        "id": repo.repo_id,
        "owner": repo.namespace,
        "name": repo.name,
        "private": repo.private,
        "visibility": PRIVATE if repo.private else PUBLIC,
        "gated": False,
        "downloads": repo.downloads,
        "likes": repo.likes,
        "license": repo.license or "",
        "tags": [t for t in repo.tags.strip(",").split(",") if t],
        "created_at": _iso(repo.created_at),
        "last_modified": _iso(repo.updated_at),
    }
    return openapi_ok(request, data)


@router.get("/api/v1/{kind}/{owner}/{name}", summary="Repo info (ModelScope)")
async def legacy_repo(
    request: Request, kind: str, owner: str, name: str, principal: MsCaller, services: Svc
) -> JSONResponse:
    repo_type = repo_type_of(kind)
    repo = await run_in_threadpool(find_repo, services, principal, repo_type, f"{owner}/{name}")
    return ok(request, _legacy_info(repo))


# --- revisions and tags ------------------------------------------------------------------


@router.get("/api/v1/{kind}/{owner}/{name}/revisions", summary="Branches and tags (ModelScope)")
async def revisions(
    request: Request,
    kind: str,
    owner: str,
    name: str,
    principal: MsCaller,
    services: Svc,
    EndTime: int | None = None,  # the client's own spelling
) -> JSONResponse:
    repo_type = repo_type_of(kind)

    def build() -> dict[str, Any]:
        repo = find_repo(services, principal, repo_type, f"{owner}/{name}")
        branches, tags = services.repos.refs(repo)
        alias = not any(b.name == MASTER for b in branches)
        # A ref has no creation time of its own; the time of the commit it names stands in.
        # The client picks the newest tag created before its release for revision-less
        # single-file downloads, so tags go out oldest first.
        times = {r.commit_id: services.repos.commit_info(r.commit_id).created_at for r in tags}
        times.update(
            {r.commit_id: services.repos.commit_info(r.commit_id).created_at for r in branches}
        )

        def item(ref_name: str, commit_id: str) -> dict[str, Any]:
            return {
                "Revision": ref_name,
                "CreatedAt": _epoch(times[commit_id]),
                "CommitId": commit_id,
            }

        branch_items = [
            item(MASTER if alias and b.name == DEFAULT_BRANCH else b.name, b.commit_id)
            for b in branches
        ]
        tag_items = sorted(
            (item(t.name, t.commit_id) for t in tags), key=lambda t: (t["CreatedAt"], t["Revision"])
        )
        if EndTime is not None:
            tag_items = [t for t in tag_items if t["CreatedAt"] <= EndTime]
        return {"RevisionMap": {"Branches": branch_items, "Tags": tag_items}}

    return ok(request, await run_in_threadpool(build))


@router.post("/api/v1/{kind}/{owner}/{name}/repo/tag", summary="Create a tag (ModelScope)")
async def create_tag(
    request: Request, kind: str, owner: str, name: str, principal: MsWriter, services: Svc
) -> JSONResponse:
    repo_type = repo_type_of(kind)
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise InvalidRequest("the body is not JSON", param="TagName") from None
    tag = body.get("TagName") if isinstance(body, dict) else None
    if not isinstance(tag, str) or not tag:
        raise InvalidRequest("'TagName' is required", param="TagName")
    ref = str(body.get("Ref") or MASTER)

    def create() -> dict[str, Any]:
        repo = find_repo(services, principal, repo_type, f"{owner}/{name}", write=True)
        commit_id = resolve(services, repo, ref)
        services.repos.create_ref(principal, repo, RefKind.TAG, tag, commit_id)
        return {"TagName": tag, "Ref": ref, "CommitId": commit_id}

    return ok(request, await run_in_threadpool(create))


# --- probes the client makes and whose answers it ignores ----------------------------


@router.get("/api/v1/repos/internalAccelerationInfo", summary="No in-region acceleration")
async def acceleration_info(request: Request) -> JSONResponse:
    # The client gives this 0.2 s before every download batch; a fast 404 means "none".
    body = {
        "Code": 404,
        "Data": None,
        "Message": "danlu offers no acceleration endpoints",
        "RequestId": request_id(request),
        "Success": False,
    }
    return JSONResponse(body, 404)


@router.post(
    "/api/v1/datasets/{owner}/{name}/download/increase", summary="Download statistics (ignored)"
)
async def download_increase(request: Request, owner: str, name: str) -> JSONResponse:
    # Downloads are already counted when files are fetched.
    return ok(request, None)
