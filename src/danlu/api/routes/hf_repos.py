"""Hugging Face Hub protocol, part 1: repos, info, trees, refs, commits, search, whoami.

Paths and JSON follow what the ``huggingface_hub`` client sends and reads, so
``HF_ENDPOINT=http://danlu:8000`` is all a user changes.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from danlu.api.hub_common import (
    Caller,
    Writer,
    repo_type_from_name,
    repo_type_from_plural,
    repo_url,
)
from danlu.api.state import Services, get_services
from danlu.core.errors import InvalidRequest
from danlu.core.keys import Principal, Scope
from danlu.hub.cards import parse_card
from danlu.hub.names import validate_path
from danlu.hub.objects import FileEntry
from danlu.hub.repos import SortKey
from danlu.hub.tables import RefKind, Repo, RepoType

T = TypeVar("T")
router = APIRouter(tags=["Hub (Hugging Face protocol)"])
Svc = Annotated[Services, Depends(get_services)]
PAGE = 1000


def _iso(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


def repo_summary(repo: Repo) -> dict[str, Any]:
    """A repo as listings show it."""
    card = repo.card or {}
    summary: dict[str, Any] = {
        "_id": repo.id,
        "id": repo.repo_id,
        "author": repo.namespace,
        "private": repo.private,
        "gated": False,
        "disabled": False,
        "downloads": repo.downloads,
        "likes": repo.likes,
        "tags": [t for t in repo.tags.strip(",").split(",") if t],
        "createdAt": _iso(repo.created_at),
        "lastModified": _iso(repo.updated_at),
        "cardData": card,
    }
    if repo.type == RepoType.MODEL:
        summary["modelId"] = repo.repo_id
        summary["pipeline_tag"] = repo.pipeline_tag
        summary["library_name"] = repo.library_name
    return summary


def sibling(entry: FileEntry, with_blobs: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"rfilename": entry.path}
    if with_blobs:
        item["size"] = entry.size
        item["blobId"] = entry.git_sha1
        if entry.lfs:
            item["lfs"] = {"sha256": entry.sha256, "size": entry.size, "pointerSize": 134}
    return item


def tree_entry(entry: FileEntry) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": "file",
        "oid": entry.git_sha1,
        "size": entry.size,
        "path": entry.path,
    }
    if entry.lfs:
        item["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": 134}
    return item


def folders_of(entries: list[FileEntry], folder: str, recursive: bool) -> list[dict[str, Any]]:
    """Directory entries implied by the file paths (git stores no empty folders)."""
    prefix = f"{folder}/" if folder else ""
    seen: set[str] = set()
    for entry in entries:
        parts = entry.path[len(prefix) :].split("/")[:-1]
        for depth in range(1, len(parts) + 1 if recursive else min(2, len(parts) + 1)):
            seen.add(prefix + "/".join(parts[:depth]))
    return [{"type": "directory", "oid": "", "size": 0, "path": p} for p in sorted(seen)]


async def on_repo(
    services: Services,
    principal: Principal | None,
    plural: str,
    repo_id: str,
    action: Callable[[Repo], T],
    *,
    write: bool = False,
) -> T:
    """Find the repo (with the caller's rights) and run ``action`` on it, off the event loop."""
    repo_type = repo_type_from_plural(plural)

    def run() -> T:
        return action(services.repos.find(principal, repo_type, repo_id, write=write))

    return await run_in_threadpool(run)


# --- create, delete, settings ---------------------------------------------------


@router.post("/api/repos/create", summary="Create a repo")
async def create_repo(
    request: Request, principal: Writer, services: Svc, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest("'name' is required", param="name")
    namespace = body.get("organization") or principal.username
    repo_type = repo_type_from_name(body.get("type"))
    private = bool(body.get("private")) or body.get("visibility") == "private"
    repo_id = f"{namespace}/{name}"
    url = repo_url(request, repo_type, repo_id)
    repo = await run_in_threadpool(
        services.repos.create, principal, repo_type, repo_id, private=private, url=url
    )
    return {"url": repo_url(request, repo_type, repo.repo_id), "name": repo.repo_id, "id": repo.id}


@router.delete("/api/repos/delete", summary="Delete a repo")
async def delete_repo(
    principal: Writer, services: Svc, body: Annotated[dict[str, Any], Body()]
) -> Response:
    repo_type = repo_type_from_name(body.get("type"))
    repo_id = f"{body.get('organization') or principal.username}/{body.get('name')}"

    def delete() -> None:
        repo = services.repos.find(principal, repo_type, repo_id, write=True)
        services.repos.delete(principal, repo)

    await run_in_threadpool(delete)
    return Response(status_code=200)


@router.put("/api/{plural}/{namespace}/{name}/settings", summary="Change visibility")
async def repo_settings(
    plural: str,
    namespace: str,
    name: str,
    principal: Writer,
    services: Svc,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    repo_type = repo_type_from_plural(plural)

    def apply() -> dict[str, Any]:
        repo = services.repos.find(principal, repo_type, f"{namespace}/{name}", write=True)
        if "private" in body or "visibility" in body:
            private = bool(body.get("private")) or body.get("visibility") == "private"
            services.repos.set_private(principal, repo, private)
        return {"private": services.repos.find(principal, repo_type, f"{namespace}/{name}").private}

    return await run_in_threadpool(apply)


# --- likes (before the repo-info routes, whose path pattern would swallow /api/users/...) --


@router.get("/api/users/{username}/likes", summary="Repos a user liked")
async def user_likes(username: str, principal: Caller, services: Svc) -> list[dict[str, Any]]:
    rows = await run_in_threadpool(services.repos.likes_of, principal, username)
    return [
        {"createdAt": _iso(when), "repo": {"name": repo.repo_id, "type": repo.type}}
        for repo, when in rows
    ]


@router.post("/api/{plural}/{namespace}/{name}/like", summary="Like a repo")
@router.delete("/api/{plural}/{namespace}/{name}/like", summary="Unlike a repo")
async def like(
    request: Request, plural: str, namespace: str, name: str, principal: Writer, services: Svc
) -> dict[str, Any]:
    repo_type = repo_type_from_plural(plural)

    def apply() -> int:
        repo = services.repos.find(principal, repo_type, f"{namespace}/{name}")
        return services.repos.set_like(principal, repo, request.method == "POST")

    return {"likes": await run_in_threadpool(apply)}


@router.get("/api/{plural}/{namespace}/{name}/likers", summary="Who liked a repo")
async def likers(
    plural: str, namespace: str, name: str, principal: Caller, services: Svc
) -> list[dict[str, Any]]:
    repo_type = repo_type_from_plural(plural)

    def build() -> list[dict[str, Any]]:
        repo = services.repos.find(principal, repo_type, f"{namespace}/{name}")
        return [
            {"user": u.username, "fullname": u.display_name, "avatarUrl": ""}
            for u in services.repos.likers(repo)
        ]

    return await run_in_threadpool(build)


# --- info and trees --------------------------------------------------------------


async def _info(
    services: Services,
    principal: Caller,
    plural: str,
    repo_id: str,
    revision: str | None,
    blobs: bool,
) -> dict[str, Any]:
    repo_type = repo_type_from_plural(plural)

    def build() -> dict[str, Any]:
        repo = services.repos.find(principal, repo_type, repo_id)
        sha = services.repos.resolve(repo, revision)
        files = services.repos.files(sha)
        info = repo_summary(repo)
        commit = services.repos.commit_info(sha)
        info.update(
            sha=sha,
            lastModified=_iso(commit.created_at),
            siblings=[sibling(f, blobs) for f in files],
            usedStorage=sum(f.size for f in files),
        )
        if blobs:
            info["usedStorage"] = sum(f.size for f in files)
        return info

    return await run_in_threadpool(build)


@router.get("/api/{plural}/{namespace}/{name}", summary="Repo info at the default branch")
async def repo_info(
    plural: str, namespace: str, name: str, principal: Caller, services: Svc, blobs: bool = False
) -> dict[str, Any]:
    return await _info(services, principal, plural, f"{namespace}/{name}", None, blobs)


@router.get(
    "/api/{plural}/{namespace}/{name}/revision/{revision:path}", summary="Repo info at a revision"
)
async def repo_info_at(
    plural: str,
    namespace: str,
    name: str,
    revision: str,
    principal: Caller,
    services: Svc,
    blobs: bool = False,
) -> dict[str, Any]:
    return await _info(services, principal, plural, f"{namespace}/{name}", revision, blobs)


def _page_response(request: Request, items: list[Any], cursor: int, page: int) -> JSONResponse:
    """One page; a Link header points at the next, as the client expects."""
    chunk = items[cursor : cursor + page]
    headers = {}
    if cursor + page < len(items):
        query = dict(request.query_params)
        query["cursor"] = str(cursor + page)
        url = f"{request.url.replace(query=urllib.parse.urlencode(query))}"
        headers["Link"] = f'<{url}>; rel="next"'
    return JSONResponse(chunk, headers=headers)


@router.get("/api/{plural}/{namespace}/{name}/tree/{revision}", summary="List files (root)")
@router.get("/api/{plural}/{namespace}/{name}/tree/{revision}/{path:path}", summary="List files")
async def repo_tree(
    request: Request,
    plural: str,
    namespace: str,
    name: str,
    revision: str,
    principal: Caller,
    services: Svc,
    path: str = "",
    recursive: bool = False,
    expand: bool = False,
    cursor: int = 0,
    limit: int = Query(PAGE, ge=1, le=PAGE),
) -> JSONResponse:
    repo_type = repo_type_from_plural(plural)
    folder = path.strip("/")

    def build() -> list[dict[str, Any]]:
        repo = services.repos.find(principal, repo_type, f"{namespace}/{name}")
        sha = services.repos.resolve(repo, urllib.parse.unquote(revision))
        entries = services.repos.files(sha, folder, recursive=True)
        if folder and not entries:
            services.repos.file(repo, sha, folder, revision)  # raises EntryNotFound
        shown = (
            entries
            if recursive
            else [
                e for e in entries if e.path.count("/") == (folder.count("/") + 1 if folder else 0)
            ]
        )
        items = folders_of(entries, folder, recursive) + [tree_entry(e) for e in shown]
        return sorted(items, key=lambda item: item["path"])

    items = await run_in_threadpool(build)
    return _page_response(request, items, cursor, limit)


@router.post("/api/{plural}/{namespace}/{name}/paths-info/{revision}", summary="Info on some paths")
async def paths_info(
    request: Request,
    plural: str,
    namespace: str,
    name: str,
    revision: str,
    principal: Caller,
    services: Svc,
) -> list[dict[str, Any]]:
    repo_type = repo_type_from_plural(plural)
    content_type = request.headers.get("content-type", "")
    raw = await request.body()
    try:
        if content_type.startswith("application/json"):
            data = json.loads(raw)
            paths = data.get("paths", []) if isinstance(data, dict) else []
        else:  # the client sends a urlencoded form: paths=a&paths=b&expand=false
            paths = urllib.parse.parse_qs(raw.decode("utf-8")).get("paths", [])
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest(
            "send 'paths' as JSON or as a urlencoded form", param="paths"
        ) from None
    if not isinstance(paths, list):
        raise InvalidRequest("'paths' must be a list", param="paths")

    def build() -> list[dict[str, Any]]:
        repo = services.repos.find(principal, repo_type, f"{namespace}/{name}")
        sha = services.repos.resolve(repo, urllib.parse.unquote(revision))
        entries = {e.path: e for e in services.repos.files(sha)}
        found: list[dict[str, Any]] = []
        for wanted in paths:
            wanted = str(wanted).strip("/")
            if wanted in entries:
                found.append(tree_entry(entries[wanted]))
            elif any(p.startswith(wanted + "/") for p in entries) or wanted == "":
                found.append({"type": "directory", "oid": "", "size": 0, "path": wanted})
        return found

    return await run_in_threadpool(build)


# --- refs and history ------------------------------------------------------------


@router.get("/api/{plural}/{namespace}/{name}/refs", summary="Branches and tags")
async def list_refs(
    plural: str, namespace: str, name: str, principal: Caller, services: Svc
) -> dict[str, Any]:
    repo_type = repo_type_from_plural(plural)

    def build() -> dict[str, Any]:
        repo = services.repos.find(principal, repo_type, f"{namespace}/{name}")
        branches, tags = services.repos.refs(repo)
        return {
            "branches": [
                {"name": b.name, "ref": f"refs/heads/{b.name}", "targetCommit": b.commit_id}
                for b in branches
            ],
            "tags": [
                {"name": t.name, "ref": f"refs/tags/{t.name}", "targetCommit": t.commit_id}
                for t in tags
            ],
            "converts": [],
        }

    return await run_in_threadpool(build)


@router.get("/api/{plural}/{namespace}/{name}/commits/{revision:path}", summary="Commit history")
async def list_commits(
    request: Request,
    plural: str,
    namespace: str,
    name: str,
    revision: str,
    principal: Caller,
    services: Svc,
    cursor: int = 0,
    limit: int = Query(50, ge=1, le=PAGE),
    path: str | None = Query(None, description="Only commits that changed this file."),
) -> JSONResponse:
    repo_type = repo_type_from_plural(plural)
    if path is not None:
        validate_path(path)

    def build() -> list[dict[str, Any]]:
        repo = services.repos.find(principal, repo_type, f"{namespace}/{name}")
        return [
            {
                "id": c.id,
                "title": c.title,
                "message": c.message,
                "authors": [{"user": c.author}],
                "date": _iso(c.created_at),
            }
            for c in services.repos.history(repo, revision, path=path)
        ]

    return _page_response(request, await run_in_threadpool(build), cursor, limit)


@router.post("/api/{plural}/{namespace}/{name}/branch/{branch:path}", summary="Create a branch")
async def create_branch(
    plural: str,
    namespace: str,
    name: str,
    branch: str,
    principal: Writer,
    services: Svc,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> dict[str, Any]:
    start = (body or {}).get("startingPoint")
    exist_ok = bool((body or {}).get("existOk") or (body or {}).get("exist_ok"))
    await on_repo(
        services,
        principal,
        plural,
        f"{namespace}/{name}",
        lambda repo: services.repos.create_ref(
            principal, repo, RefKind.BRANCH, branch, start, exist_ok=exist_ok
        ),
        write=True,
    )
    return {}


@router.delete("/api/{plural}/{namespace}/{name}/branch/{branch:path}", summary="Delete a branch")
async def delete_branch(
    plural: str, namespace: str, name: str, branch: str, principal: Writer, services: Svc
) -> dict[str, Any]:
    await on_repo(
        services,
        principal,
        plural,
        f"{namespace}/{name}",
        lambda repo: services.repos.delete_ref(principal, repo, RefKind.BRANCH, branch),
        write=True,
    )
    return {}


@router.post("/api/{plural}/{namespace}/{name}/tag/{revision:path}", summary="Create a tag")
async def create_tag(
    plural: str,
    namespace: str,
    name: str,
    revision: str,
    principal: Writer,
    services: Svc,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    tag = body.get("tag")
    if not isinstance(tag, str):
        raise InvalidRequest("'tag' is required", param="tag")
    target = urllib.parse.unquote(revision)
    await on_repo(
        services,
        principal,
        plural,
        f"{namespace}/{name}",
        lambda repo: services.repos.create_ref(principal, repo, RefKind.TAG, tag, target),
        write=True,
    )
    return {}


@router.delete("/api/{plural}/{namespace}/{name}/tag/{tag:path}", summary="Delete a tag")
async def delete_tag(
    plural: str, namespace: str, name: str, tag: str, principal: Writer, services: Svc
) -> dict[str, Any]:
    await on_repo(
        services,
        principal,
        plural,
        f"{namespace}/{name}",
        lambda repo: services.repos.delete_ref(principal, repo, RefKind.TAG, tag),
        write=True,
    )
    return {}


# --- search and identity -----------------------------------------------------------

_SORTS: dict[str, SortKey] = {
    "downloads": "downloads",
    "likes": "likes",
    "lastModified": "updated",
    "last_modified": "updated",
    "updated": "updated",
    "createdAt": "created",
    "created_at": "created",
    "created": "created",
    "id": "name",
    "name": "name",
    "trending_score": "likes",
    "trendingScore": "likes",
}


@router.get("/api/whoami-v2", summary="Who the key belongs to")
async def whoami(principal: Writer, services: Svc) -> dict[str, Any]:
    def build() -> dict[str, Any]:
        user = services.accounts.user(principal.username)
        orgs = [
            {"type": "org", "name": slug, "fullname": slug, "roleInOrg": role.value}
            for slug, role in services.accounts.workspaces_of(user)
            if slug != user.username
        ]
        return {
            "type": "user",
            "id": user.id,
            "name": user.username,
            "fullname": user.display_name,
            "email": user.email,
            "emailVerified": False,
            "isPro": False,
            "orgs": orgs,
            "auth": {
                "type": "access_token",
                "accessToken": {
                    "displayName": principal.key_id,
                    "role": "write" if Scope.HUB_WRITE in principal.scopes else "read",
                },
            },
        }

    return await run_in_threadpool(build)


@router.post("/api/validate-yaml", summary="Check a README's YAML metadata", response_model=None)
async def validate_yaml(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any] | JSONResponse:
    content = body.get("content")
    if not isinstance(content, str):
        raise InvalidRequest("'content' (the README text) is required", param="content")
    try:
        parse_card(content.encode("utf-8"))
    except InvalidRequest as exc:
        problem = {"message": exc.message}
        return JSONResponse(
            {"error": exc.message, "errors": [problem], "warnings": []},
            400,
            headers={"X-Error-Message": exc.message.encode("latin-1", "replace").decode("latin-1")},
        )
    return {"errors": [], "warnings": []}


@router.get("/api/{plural}", summary="List and search repos")
async def list_repos(
    request: Request,
    plural: str,
    principal: Caller,
    services: Svc,
    search: str | None = None,
    author: str | None = None,
    sort: str = "lastModified",
    direction: int = -1,
    limit: int | None = Query(None, ge=1),
    cursor: int = 0,
) -> JSONResponse:
    repo_type = repo_type_from_plural(plural)
    sort_key = _SORTS.get(sort)
    if sort_key is None:
        raise InvalidRequest(f"cannot sort by {sort!r}; use one of {sorted(_SORTS)}", param="sort")
    tags = [t for t in request.query_params.getlist("filter") if t]
    prefixes = {"language": "language:", "license": "license:"}
    for field in ("language", "library", "pipeline_tag", "license", "task"):
        tags += [prefixes.get(field, "") + value for value in request.query_params.getlist(field)]
    page = min(limit or PAGE, PAGE)

    def build() -> list[dict[str, Any]]:
        repos = services.repos.search(
            principal,
            repo_type,
            search=search,
            author=author,
            tags=tags,
            sort=sort_key,
            descending=direction < 0,
            limit=page + 1,
            offset=cursor,
        )
        return [repo_summary(r) for r in repos]

    items = await run_in_threadpool(build)
    headers = {}
    if len(items) > page and limit is None:
        query = dict(request.query_params)
        query["cursor"] = str(cursor + page)
        headers["Link"] = (
            f'<{request.url.replace(query=urllib.parse.urlencode(query))}>; rel="next"'
        )
    return JSONResponse(items[:page], headers=headers)
