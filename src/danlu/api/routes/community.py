"""The community over HTTP: likes of apps, follows, the feed, trending, notifications,
workspace webhooks and the moderation audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from danlu.api.auth import require
from danlu.api.hub_common import Caller
from danlu.api.routes.discussions import CommunityDep
from danlu.builder.ssrf import parse_allowlist
from danlu.community.feed import FeedItem
from danlu.community.markdown import MAX_COMMENT_CHARS, render
from danlu.community.targets import require_personal
from danlu.community.webhooks import EVENTS, WebhookView, check_target
from danlu.core.errors import InvalidRequest
from danlu.core.keys import Principal
from danlu.hub.tables import RepoType

router = APIRouter(prefix="/v1", tags=["Community"])
AnyKey = Annotated[Principal, Depends(require(None))]


def _iso(value: Any) -> str | None:
    return str(value.isoformat().replace("+00:00", "Z")) if value else None


def _personal(principal: Principal) -> Principal:
    require_personal(principal)
    return principal


# --- likes of apps ------------------------------------------------------------------------


@router.post("/apps/{app_ref}/like", summary="Like an app")
@router.delete("/apps/{app_ref}/like", summary="Unlike an app")
async def like_app(
    request: Request, app_ref: str, principal: AnyKey, community: CommunityDep
) -> dict[str, Any]:
    liked = request.method == "POST"
    return {"likes": await run_in_threadpool(community.social.like_app, principal, app_ref, liked)}


@router.get("/apps/{app_ref}/likers", summary="Who liked an app")
async def app_likers(app_ref: str, principal: Caller, community: CommunityDep) -> dict[str, Any]:
    users = await run_in_threadpool(community.social.app_likers, principal, app_ref)
    return {
        "object": "list",
        "data": [{"user": u.username, "fullname": u.display_name} for u in users],
    }


# --- follows --------------------------------------------------------------------------------


class FollowBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str | None = None
    workspace: str | None = None


def _follow_target(body: FollowBody) -> tuple[str, str]:
    if (body.user is None) == (body.workspace is None):
        raise InvalidRequest("send either 'user' or 'workspace'", param="user")
    return ("user", body.user) if body.user is not None else ("workspace", body.workspace or "")


@router.get("/community/following", summary="Users and workspaces you follow")
async def following(principal: AnyKey, community: CommunityDep) -> dict[str, Any]:
    found = await run_in_threadpool(community.social.following, principal.user_id)
    return {
        "object": "list",
        "data": [{"kind": f.kind, "name": f.name, "since": _iso(f.created_at)} for f in found],
    }


@router.post("/community/following", status_code=201, summary="Follow a user or a workspace")
async def follow(body: FollowBody, principal: AnyKey, community: CommunityDep) -> dict[str, Any]:
    kind, name = _follow_target(body)
    view = await run_in_threadpool(community.social.follow, principal, kind, name)
    return {"kind": view.kind, "name": view.name, "since": _iso(view.created_at)}


@router.delete("/community/following/{kind}/{name}", summary="Stop following")
async def unfollow(
    kind: str, name: str, principal: AnyKey, community: CommunityDep
) -> dict[str, Any]:
    await run_in_threadpool(community.social.unfollow, principal, kind, name)
    return {"kind": kind, "name": name, "following": False}


@router.get("/community/users/{username}", summary="A user's followers, following and likes")
async def user_profile(username: str, _: Caller, community: CommunityDep) -> dict[str, Any]:
    return await run_in_threadpool(community.social.profile, username)


@router.get("/community/users/{name}/followers", summary="Who follows a user")
async def user_followers(name: str, _: Caller, community: CommunityDep) -> dict[str, Any]:
    names = await run_in_threadpool(community.social.followers, "user", name)
    return {"object": "list", "data": [{"user": n} for n in names]}


@router.get("/community/workspaces/{name}/followers", summary="Who follows a workspace")
async def workspace_followers(name: str, _: Caller, community: CommunityDep) -> dict[str, Any]:
    names = await run_in_threadpool(community.social.followers, "workspace", name)
    return {"object": "list", "data": [{"user": n} for n in names]}


# --- feed and trending ----------------------------------------------------------------------


def feed_json(item: FeedItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "type": item.verb,
        "actor": item.actor,
        "workspace": item.workspace,
        "target": item.target,
        "data": item.data,
        "created_at": _iso(item.created_at),
    }


@router.get("/community/feed", summary="What the users and workspaces you follow did")
async def feed(
    principal: AnyKey,
    community: CommunityDep,
    before: Annotated[
        datetime | None, Query(description="an item's created_at: the next page")
    ] = None,
    limit: int = Query(30, ge=1, le=100),
) -> dict[str, Any]:
    require_personal(principal)
    if before is not None and before.tzinfo is None:
        raise InvalidRequest("'before' needs a time zone (…Z)", param="before")
    items = await run_in_threadpool(
        lambda: community.feed.items(principal, before=before, limit=limit)
    )
    return {
        "object": "list",
        "data": [feed_json(i) for i in items],
        "next_before": _iso(items[-1].created_at) if len(items) == limit else None,
    }


@router.get("/community/trending", summary="Trending repos or apps (the formula: docs)")
async def trending(
    principal: Caller,
    community: CommunityDep,
    type: str = Query("model", description="model, dataset, space or app"),
    limit: int = Query(20, ge=1, le=100),
) -> dict[str, Any]:
    if type == "app":
        apps, _ = await run_in_threadpool(
            lambda: community.studio.listing(principal, sort="trending", limit=limit)
        )
        data = [
            {
                "kind": "app",
                "name": a.slug,
                "workspace": a.workspace,
                "likes": a.likes,
                "runs": a.runs,
                "downloads": 0,
                "trending": a.trending,
            }
            for a in apps
        ]
        return {"object": "list", "data": data}
    try:
        repo_type = RepoType(type)
    except ValueError:
        raise InvalidRequest("type is model, dataset, space or app", param="type") from None
    items = await run_in_threadpool(community.social.trending_repos, principal, repo_type, limit)
    return {
        "object": "list",
        "data": [
            {
                **i.target.as_dict(),
                "likes": i.likes,
                "runs": i.runs,
                "downloads": i.downloads,
                "trending": i.trending,
            }
            for i in items
        ],
    }


# --- Markdown preview -----------------------------------------------------------------------


class PreviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=MAX_COMMENT_CHARS)


@router.post("/community/markdown", summary="Render a comment's Markdown as it would be shown")
async def preview_markdown(body: PreviewBody, _: AnyKey) -> dict[str, Any]:
    """The same renderer and sanitizer as comments: what a preview shows is what is posted."""
    rendered = await run_in_threadpool(render, body.text)
    return {"html": rendered.html, "mentions": rendered.mentions}


# --- notifications --------------------------------------------------------------------------


@router.get("/notifications", summary="Your notifications, newest first")
async def notifications(
    principal: AnyKey,
    community: CommunityDep,
    unread: bool = False,
    before: int | None = Query(None, description="a notification id: the next page"),
    limit: int = Query(50, ge=1, le=200),
) -> dict[str, Any]:
    require_personal(principal)
    items, unread_count = await run_in_threadpool(
        lambda: community.notifications.listing(
            principal, unread_only=unread, before=before, limit=limit
        )
    )
    return {
        "object": "list",
        "unread": unread_count,
        "data": [
            {
                "id": n.id,
                "kind": n.kind,
                "actor": n.actor,
                "title": n.title,
                "data": n.data,
                "read": n.read,
                "created_at": _iso(n.created_at),
            }
            for n in items
        ],
    }


class ReadBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[int] | None = Field(default=None, description="omit to mark all read")


@router.post("/notifications/read", summary="Mark notifications read")
async def mark_read(body: ReadBody, principal: AnyKey, community: CommunityDep) -> dict[str, Any]:
    require_personal(principal)
    marked = await run_in_threadpool(community.notifications.mark_read, principal, body.ids)
    return {"marked": marked}


# --- workspace webhooks ---------------------------------------------------------------------


def webhook_json(view: WebhookView | None, secret: str | None = None) -> dict[str, Any]:
    if view is None:
        return {"webhook": None, "events": list(EVENTS)}
    shown: dict[str, Any] = {
        "workspace": view.workspace,
        "url": view.url,
        "events": view.events or list(EVENTS),
        "active": view.active,
        "created_by": view.created_by,
        "updated_at": _iso(view.updated_at),
    }
    if secret is not None:
        shown["secret"] = secret  # shown once: sign-checking needs it
    return {"webhook": shown, "events": list(EVENTS)}


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=8, max_length=2000)
    events: list[str] | None = Field(default=None, description="omit for every event")
    active: bool = True
    rotate_secret: bool = False


@router.get("/workspaces/{slug}/webhook", summary="The workspace's webhook (owners, admins)")
async def get_webhook(slug: str, principal: AnyKey, community: CommunityDep) -> dict[str, Any]:
    _personal(principal)
    return webhook_json(await run_in_threadpool(community.webhooks.get, principal, slug))


@router.put("/workspaces/{slug}/webhook", summary="Set the workspace's webhook")
async def set_webhook(
    request: Request, slug: str, body: WebhookBody, principal: AnyKey, community: CommunityDep
) -> dict[str, Any]:
    _personal(principal)
    allow = parse_allowlist(request.app.state.services.settings.builder_http_allow)
    await check_target(body.url, allow)
    view, secret = await run_in_threadpool(
        lambda: community.webhooks.set(
            principal,
            slug,
            url=body.url,
            events=body.events,
            active=body.active,
            rotate_secret=body.rotate_secret,
        )
    )
    return webhook_json(view, secret)


@router.delete("/workspaces/{slug}/webhook", summary="Remove the workspace's webhook")
async def delete_webhook(slug: str, principal: AnyKey, community: CommunityDep) -> dict[str, Any]:
    _personal(principal)
    await run_in_threadpool(community.webhooks.delete, principal, slug)
    return {"webhook": None}


@router.post("/workspaces/{slug}/webhook/ping", status_code=202, summary="Send a test event")
async def ping_webhook(slug: str, principal: AnyKey, community: CommunityDep) -> dict[str, Any]:
    _personal(principal)
    return {"delivery": await run_in_threadpool(community.webhooks.ping, principal, slug)}


@router.get("/workspaces/{slug}/webhook/deliveries", summary="Recent deliveries and outcomes")
async def webhook_deliveries(
    slug: str, principal: AnyKey, community: CommunityDep, limit: int = Query(50, ge=1, le=200)
) -> dict[str, Any]:
    _personal(principal)
    found = await run_in_threadpool(community.webhooks.deliveries, principal, slug, limit)
    return {
        "object": "list",
        "data": [
            {
                "id": d.id,
                "event": d.event,
                "status": d.status,
                "attempts": d.attempts,
                "response_status": d.response_status,
                "error": d.last_error,
                "created_at": _iso(d.created_at),
                "delivered_at": _iso(d.delivered_at),
            }
            for d in found
        ],
    }


# --- audit ------------------------------------------------------------------------------------


@router.get("/community/audit", summary="Moderation audit log (site admins; workspace owners)")
async def audit_log(
    principal: AnyKey,
    community: CommunityDep,
    workspace: str | None = None,
    before: int | None = None,
    limit: int = Query(50, ge=1, le=200),
) -> dict[str, Any]:
    _personal(principal)
    entries = await run_in_threadpool(
        lambda: community.audit.listing(principal, workspace=workspace, before=before, limit=limit)
    )
    return {
        "object": "list",
        "data": [
            {
                "id": e.id,
                "actor": e.actor,
                "action": e.action,
                "workspace": e.workspace,
                "target": e.target,
                "data": e.data,
                "created_at": _iso(e.created_at),
            }
            for e in entries
        ],
    }
