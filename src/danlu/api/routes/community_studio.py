"""The studio (创空间) over HTTP: the gallery of published apps, their profiles, duplicating
them, and the links between apps and the models, datasets and knowledge bases they use.

Using an app is its own page's business (the builder's ``/s/{slug}`` and ``/v1/sites/{slug}``);
each card says where that is.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from danlu.api.auth import require
from danlu.api.hub_common import Caller
from danlu.api.routes.apps import app_json
from danlu.api.routes.discussions import CommunityDep
from danlu.community.studio import LINK_KINDS, StudioApp
from danlu.core.errors import InvalidRequest
from danlu.core.keys import Principal

router = APIRouter(prefix="/v1/studio", tags=["Community (studio)"])
AnyKey = Annotated[Principal, Depends(require(None))]


def _iso(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


def card_json(app: StudioApp, *, with_links: bool = False) -> dict[str, Any]:
    card: dict[str, Any] = {
        "id": app.id,
        "slug": app.slug,
        "name": app.name,
        "mode": app.mode,
        "description": app.description,
        "cover_url": app.cover_url,
        "tags": app.tags,
        "workspace": app.workspace,
        "published_version": app.published_version,
        "site_access": app.site_access,
        "created_by": app.created_by,
        # Where to use it: the app's own page and its API (the builder's sites).
        "page": f"/s/{app.slug}" if app.site_access != "off" else None,
        "site_api": f"/v1/sites/{app.slug}" if app.site_access != "off" else None,
        "likes": app.likes,
        "runs": app.runs,
        "trending": app.trending,
        "liked": app.liked,
        "duplicated_from": app.duplicated_from,
        "listed": app.listed,
        "discussions": f"/v1/apps/{app.slug}/discussions",
        "created_at": _iso(app.created_at),
        "updated_at": _iso(app.updated_at),
    }
    if with_links:
        card["links"] = [
            {
                "kind": link.kind,
                "ref": link.ref,
                "source": link.source,
                "repo": link.repo,
                "knowledge_base": link.knowledge_base,
            }
            for link in app.links
        ]
    return card


@router.get("/apps", summary="Published apps you can open: search, tags, sort")
async def gallery(
    principal: Caller,
    community: CommunityDep,
    search: str | None = None,
    tag: str | None = None,
    mode: str | None = None,
    author: str | None = Query(None, description="apps made by this user"),
    sort: str = Query("trending", description="trending, likes, runs or new"),
    limit: int = Query(30, ge=1, le=100),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    items, total = await run_in_threadpool(
        lambda: community.studio.listing(
            principal,
            search=search,
            tag=tag,
            mode=mode,
            author=author,
            sort=sort,
            limit=limit,
            offset=offset,
        )
    )
    return {"object": "list", "total": total, "data": [card_json(a) for a in items]}


@router.get("/tags", summary="Tags of the gallery's apps, most used first")
async def tags(principal: Caller, community: CommunityDep) -> dict[str, Any]:
    found = await run_in_threadpool(community.studio.tags, principal)
    return {"object": "list", "data": [{"tag": t, "apps": n} for t, n in found]}


@router.get("/used-by", summary="Apps that use a model, dataset or knowledge base")
async def used_by(
    principal: Caller,
    community: CommunityDep,
    model: str | None = None,
    dataset: str | None = None,
    knowledge_base: str | None = None,
) -> dict[str, Any]:
    given = [(k, v) for k, v in zip(LINK_KINDS, (model, dataset, knowledge_base), strict=True) if v]
    if len(given) != 1:
        raise InvalidRequest("name exactly one of model, dataset or knowledge_base", param="model")
    kind, ref = given[0]
    apps = await run_in_threadpool(community.studio.used_by, principal, kind, ref)
    return {"object": "list", "data": [card_json(a) for a in apps]}


@router.get("/apps/{app_ref}", summary="One app's card, with what it uses")
async def card(app_ref: str, principal: Caller, community: CommunityDep) -> dict[str, Any]:
    return card_json(
        await run_in_threadpool(community.studio.detail, principal, app_ref), with_links=True
    )


class ProfileBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cover_url: str | None = Field(default=None, max_length=1024)
    description: str | None = Field(default=None, max_length=5000)
    tags: list[str] | None = None
    listed: bool | None = Field(default=None, description="false hides it from the gallery")


@router.put("/apps/{app_ref}/profile", summary="Cover, description, tags (maintainers)")
async def set_profile(
    app_ref: str, body: ProfileBody, principal: AnyKey, community: CommunityDep
) -> dict[str, Any]:
    app = await run_in_threadpool(
        lambda: community.studio.set_profile(
            principal,
            app_ref,
            cover_url=body.cover_url,
            description=body.description,
            tags=body.tags,
            listed=body.listed,
        )
    )
    return card_json(app, with_links=True)


class DuplicateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    workspace: str | None = Field(default=None, description="default: your key's workspace")
    name: str | None = Field(default=None, max_length=128)


@router.post("/apps/{app_ref}/duplicate", status_code=201, summary="Copy it into your workspace")
async def duplicate(
    app_ref: str,
    principal: AnyKey,
    community: CommunityDep,
    body: DuplicateBody | None = None,
) -> dict[str, Any]:
    wanted = body or DuplicateBody()
    copy = await run_in_threadpool(
        lambda: community.studio.duplicate(
            principal, app_ref, workspace=wanted.workspace, name=wanted.name
        )
    )
    return {**app_json(copy), "duplicated_from": app_ref}


class LinkBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(description="model, dataset or knowledge_base")
    ref: str = Field(min_length=1, max_length=200)


@router.post("/apps/{app_ref}/links", summary="Link a model, dataset or knowledge base")
async def add_link(
    app_ref: str, body: LinkBody, principal: AnyKey, community: CommunityDep
) -> dict[str, Any]:
    app = await run_in_threadpool(
        community.studio.add_link, principal, app_ref, body.kind, body.ref
    )
    return card_json(app, with_links=True)


@router.delete("/apps/{app_ref}/links/{kind}/{ref:path}", summary="Remove a link")
async def remove_link(
    app_ref: str, kind: str, ref: str, principal: AnyKey, community: CommunityDep
) -> dict[str, Any]:
    await run_in_threadpool(community.studio.remove_link, principal, app_ref, kind, ref)
    return {"removed": {"kind": kind, "ref": ref}}
