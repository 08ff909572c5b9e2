"""Published apps for people without a key: the public page's API and its settings.

The page at /s/{slug}, the iframe embed and the chat bubble (/widget.js) all call these
routes. A visitor is known by an id their browser keeps; their conversations are theirs
alone. Posting is limited per address so an open page cannot be flooded.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from danlu.api.auth import require
from danlu.api.routes.apps import AppsDep, app_json, primed, sse_events
from danlu.api.state import Services, get_services
from danlu.builder.apps import RunOptions, answer_text, execute
from danlu.builder.sites import Site, Sites
from danlu.core.errors import AuthenticationFailed, InvalidRequest
from danlu.core.keys import Principal, Scope
from danlu.gateway.limits import count_event

router = APIRouter(tags=["Builder (app pages)"])
AnyKey = Annotated[Principal, Depends(require(None))]
Svc = Annotated[Services, Depends(get_services)]

# Sixty messages a minute per address and app is generous for a person and stops a script;
# counted by the gateway's limiter, so it holds across servers with Redis.
MESSAGES_PER_MINUTE = 60


def _sites(request: Request) -> Sites:
    sites: Sites = request.app.state.sites
    return sites


SitesDep = Annotated[Sites, Depends(_sites)]


async def _visitor_principal(request: Request, services: Services) -> Principal | None:
    """The signed-in visitor, or None. Unlike the API's other optional callers (the hub's
    ``optional_principal``), a stale or bad key is ignored rather than a 401: a public page
    must keep working for a browser that still holds an expired console session."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    token = token.strip()
    known = services.keys.recently_authenticated(token)
    if known is not None:
        return known
    try:
        return await run_in_threadpool(services.keys.authenticate, token)
    except AuthenticationFailed:
        return None


async def _open(request: Request, slug: str, sites: Sites, services: Services) -> tuple[Site, str]:
    """The site and who is visiting it (``site:{visitor id}`` or a user name)."""
    principal = await _visitor_principal(request, services)
    site = await run_in_threadpool(sites.find, slug, signed_in=principal is not None)
    return site, principal.username if principal is not None else ""


class SiteTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    visitor: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$", description="the browser's visitor id")
    inputs: dict[str, Any] = Field(default_factory=dict)
    query: str | None = Field(default=None, max_length=20_000)
    conversation_id: str | None = Field(default=None, max_length=64)
    stream: bool = True


@router.get("/v1/sites/{slug}", summary="A published app's page: name, mode and input form")
async def site_info(slug: str, request: Request, sites: SitesDep, services: Svc) -> dict[str, Any]:
    site, _ = await _open(request, slug, sites, services)
    return site.describe()


@router.post(
    "/v1/sites/{slug}/messages",
    summary="Chat with (or run) a published app as a visitor",
    response_model=None,
)
async def site_message(
    slug: str, body: SiteTurn, request: Request, sites: SitesDep, apps: AppsDep, services: Svc
) -> JSONResponse | StreamingResponse:
    site, username = await _open(request, slug, sites, services)
    client = request.client.host if request.client else "?"
    await count_event(
        request.app.state.meter.limiter,
        f"site:{slug}:{client}",
        MESSAGES_PER_MINUTE,
        f"too many messages to this app from your address (at most {MESSAGES_PER_MINUTE} a minute)",
        code="rate_limited",
    )
    app = site.app
    end_user = username or f"site:{body.visitor}"
    chatty = app.mode in ("chat", "agent")
    if chatty and not (body.query or "").strip():
        raise InvalidRequest("type a message first", param="query")
    if body.conversation_id:
        await run_in_threadpool(sites.check_conversation, app, body.conversation_id, end_user)
    options = RunOptions(end_user=end_user, conversation_id=body.conversation_id)
    events = await primed(
        execute(
            apps,
            app,
            body.inputs,
            options,
            f"site:{slug}:{end_user}",
            query=body.query if chatty else None,
        )
    )
    if body.stream:
        return sse_events(events)
    done = [event async for event in events]
    last = done[-1]
    return JSONResponse(
        {
            "run_id": last.data["run_id"],
            "conversation_id": done[0].data.get("conversation_id"),
            "status": "succeeded" if last.event == "run_finished" else "failed",
            "answer": answer_text(done) if chatty and last.event == "run_finished" else None,
            "outputs": last.data.get("outputs", {}),
            "error": last.data.get("error"),
        }
    )


class SiteSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    access: str = Field(description="public, signed_in or off")


@router.put("/v1/apps/{app_ref}/site", summary="Who may use the app's page, link and widget")
async def set_site(
    app_ref: str, body: SiteSettings, principal: AnyKey, apps: AppsDep, sites: SitesDep
) -> dict[str, Any]:
    app = await run_in_threadpool(apps.get, principal, app_ref, write=True)
    principal.require(Scope.INFERENCE)
    updated = await run_in_threadpool(sites.set_access, app, body.access)
    return {**app_json(updated), "site_access": updated.site_access}
