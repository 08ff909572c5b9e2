"""The builder's HTTP API: templates, apps (import/export/publish/versions/keys), runs and chat."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from danlu.api.auth import require
from danlu.api.sse import unless_disconnected
from danlu.builder.apps import Apps, RunOptions, answer_text, execute
from danlu.builder.dsl import parse_app
from danlu.builder.inspect import inspect_app, problem_json
from danlu.builder.runtime import RunEvent
from danlu.builder.tables import App
from danlu.builder.templates import TEMPLATES
from danlu.core.errors import InvalidRequest, NotFound
from danlu.core.keys import Principal, Scope

router = APIRouter(prefix="/v1", tags=["Builder (apps)"])
AnyKey = Annotated[Principal, Depends(require(None))]


def _apps(request: Request) -> Apps:
    apps: Apps = request.app.state.apps
    return apps


AppsDep = Annotated[Apps, Depends(_apps)]


def _iso(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


def app_json(app: App) -> dict[str, Any]:
    return {
        "id": app.id,
        "slug": app.slug,
        "name": app.name,
        "mode": app.mode,
        "description": app.description,
        "published_version": app.published_version,
        "site_access": app.site_access,
        "model": f"app:{app.slug}" if app.mode in ("chat", "agent") else None,
        "created_at": _iso(app.created_at),
        "updated_at": _iso(app.updated_at),
    }


@router.get("/app-templates", summary="Templates to start an app from")
async def templates(_: AnyKey) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {
                "id": key,
                "name": spec["app"]["name"],
                "mode": spec["app"]["mode"],
                "description": spec["app"]["description"],
            }
            for key, spec in TEMPLATES.items()
        ],
    }


class CreateApp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: str = Field(min_length=1)
    name: str | None = None


@router.post("/apps", status_code=201, summary="Create a draft app from a template")
async def create_app(body: CreateApp, principal: AnyKey, apps: AppsDep) -> dict[str, Any]:
    principal.require(Scope.INFERENCE)
    spec_data = TEMPLATES.get(body.template)
    if spec_data is None:
        raise NotFound(
            f"no template {body.template!r}; see GET /v1/app-templates", param="template"
        )
    spec = parse_app(json.loads(json.dumps(spec_data)))
    if body.name:
        spec.app.name = body.name
    return app_json(await run_in_threadpool(apps.create, principal, spec))


async def _dsl_body(request: Request) -> str:
    raw = await request.body()
    if not raw.strip():
        raise InvalidRequest("send the app's DSL (YAML or JSON) as the body")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("the DSL must be UTF-8 text") from None


@router.post("/apps/import", status_code=201, summary="Create a draft app from DSL (YAML or JSON)")
async def import_app(request: Request, principal: AnyKey, apps: AppsDep) -> dict[str, Any]:
    principal.require(Scope.INFERENCE)
    spec = parse_app(await _dsl_body(request))
    return app_json(await run_in_threadpool(apps.create, principal, spec))


@router.get("/apps", summary="Apps you can see")
async def list_apps(principal: AnyKey, apps: AppsDep) -> dict[str, Any]:
    principal.require(Scope.INFERENCE)
    return {
        "object": "list",
        "data": [app_json(a) for a in await run_in_threadpool(apps.listing, principal)],
    }


@router.get("/apps/{app_ref}", summary="An app, with its draft")
async def get_app(app_ref: str, principal: AnyKey, apps: AppsDep) -> dict[str, Any]:
    app = await run_in_threadpool(apps.get, principal, app_ref)
    principal.require(Scope.INFERENCE)
    return {**app_json(app), "draft": parse_app(app.draft).to_dict()}


@router.put(
    "/apps/{app_ref}",
    summary="Replace the draft with DSL (YAML or JSON); it may be incomplete until published",
)
async def update_app(
    request: Request, app_ref: str, principal: AnyKey, apps: AppsDep
) -> dict[str, Any]:
    app = await run_in_threadpool(apps.get, principal, app_ref, write=True)
    principal.require(Scope.INFERENCE)
    spec = parse_app(await _dsl_body(request))
    updated = await run_in_threadpool(apps.update_draft, principal, app, spec)
    # Saved either way; what would stop it compiling is named, as the canvas shows it.
    inspection = await run_in_threadpool(inspect_app, spec)
    return {**app_json(updated), "problems": [problem_json(p) for p in inspection.problems]}


@router.delete("/apps/{app_ref}", status_code=204, summary="Delete an app (its analytics stay)")
async def delete_app(app_ref: str, principal: AnyKey, apps: AppsDep) -> Response:
    app = await run_in_threadpool(apps.get, principal, app_ref, write=True)
    await run_in_threadpool(apps.delete, principal, app)
    return Response(status_code=204)


@router.get(
    "/apps/{app_ref}/export", summary="The app's DSL (secrets removed)", response_model=None
)
async def export_app(
    app_ref: str, principal: AnyKey, apps: AppsDep, format: str = "yaml", version: int | None = None
) -> Response:
    app = await run_in_threadpool(apps.get, principal, app_ref)
    principal.require(Scope.INFERENCE)
    data = app.draft
    if version is not None:
        found = [v for v in await run_in_threadpool(apps.versions, app) if v.version == version]
        if not found:
            raise NotFound(f"app {app.slug} has no version {version}", param="version")
        data = found[0].spec
    spec = parse_app(data)
    if format == "json":
        return JSONResponse(spec.to_dict())
    if format != "yaml":
        raise InvalidRequest("format is yaml or json", param="format")
    return Response(spec.to_yaml(), media_type="application/yaml")


@router.post("/apps/{app_ref}/publish", summary="Compile the draft and make it the live version")
async def publish(
    app_ref: str,
    principal: AnyKey,
    apps: AppsDep,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> dict[str, Any]:
    app = await run_in_threadpool(apps.get, principal, app_ref, write=True)
    principal.require(Scope.INFERENCE)
    version = await run_in_threadpool(
        apps.publish, principal, app, str((body or {}).get("note", ""))
    )
    return {**app_json(await run_in_threadpool(apps.get, principal, app.id)), "version": version}


@router.get("/apps/{app_ref}/versions", summary="Published versions, newest first")
async def versions(app_ref: str, principal: AnyKey, apps: AppsDep) -> dict[str, Any]:
    app = await run_in_threadpool(apps.get, principal, app_ref)
    principal.require(Scope.INFERENCE)
    found = await run_in_threadpool(apps.versions, app)
    return {
        "object": "list",
        "data": [
            {
                "version": v.version,
                "note": v.note,
                "created_by": v.created_by,
                "created_at": _iso(v.created_at),
                "live": v.version == app.published_version,
            }
            for v in found
        ],
    }


@router.post("/apps/{app_ref}/versions/{version}/restore", summary="Make a version the draft again")
async def restore(app_ref: str, version: int, principal: AnyKey, apps: AppsDep) -> dict[str, Any]:
    app = await run_in_threadpool(apps.get, principal, app_ref, write=True)
    principal.require(Scope.INFERENCE)
    return app_json(await run_in_threadpool(apps.restore, principal, app, version))


@router.post(
    "/apps/{app_ref}/keys", status_code=201, summary="An API key that can only run this app"
)
async def app_key(
    app_ref: str,
    principal: AnyKey,
    apps: AppsDep,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> dict[str, Any]:
    app = await run_in_threadpool(apps.get, principal, app_ref, write=True)
    principal.require(Scope.INFERENCE)
    name = str((body or {}).get("name") or f"{app.slug} key")
    view, secret = await run_in_threadpool(apps.create_key, principal, app, name)
    return {"id": view.id, "name": view.name, "app": app.slug, "key": secret}


@router.get("/apps/{app_ref}/runs", summary="Recent runs with timings, tokens and errors")
async def runs(app_ref: str, principal: AnyKey, apps: AppsDep, limit: int = 50) -> dict[str, Any]:
    app = await run_in_threadpool(apps.get, principal, app_ref)
    principal.require(Scope.INFERENCE)
    found = await run_in_threadpool(apps.runs, app, min(max(limit, 1), 500))
    return {
        "object": "list",
        "data": [
            {
                "id": r.id,
                "version": r.version,
                "status": r.status,
                "inputs": r.inputs,
                "outputs": r.outputs,
                "error": r.error,
                "nodes": r.nodes,
                "usage": r.usage,
                "elapsed_ms": r.elapsed_ms,
                "conversation_id": r.conversation_id,
                "user": r.end_user,
                "created_at": _iso(r.created_at),
            }
            for r in found
        ],
    }


# --- running ---------------------------------------------------------------------------


class RunBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: dict[str, Any] = Field(default_factory=dict)
    stream: bool = False
    draft: bool = False
    version: int | None = Field(default=None, ge=1)
    user: str | None = Field(default=None, max_length=128)


class ChatBody(RunBody):
    query: str = Field(min_length=1, max_length=100_000)
    conversation_id: str | None = None


def sse_events(events: AsyncIterator[RunEvent]) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        async for event in events:
            yield (
                b"data: "
                + json.dumps(event.as_dict(), ensure_ascii=False, default=str).encode()
                + b"\n\n"
            )
        yield b"data: [DONE]\n\n"

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def primed(events: AsyncIterator[RunEvent]) -> AsyncIterator[RunEvent]:
    """Start the run before the response: bad inputs then get a real 400, not a broken stream."""
    first = await anext(events)

    async def chained() -> AsyncIterator[RunEvent]:
        yield first
        async for event in events:
            yield event

    return chained()


async def _collect(events: AsyncIterator[RunEvent]) -> list[RunEvent]:
    return [event async for event in events]


@router.post(
    "/apps/{app_ref}/run", summary="Run a workflow app (blocking or streamed)", response_model=None
)
async def run(
    request: Request, app_ref: str, body: RunBody, principal: AnyKey, apps: AppsDep
) -> JSONResponse | StreamingResponse:
    app = await run_in_threadpool(apps.get, principal, app_ref)
    if app.mode != "workflow":
        raise InvalidRequest(
            f"{app.slug} is a {app.mode} app; use POST /v1/apps/{app.slug}/chat", param="app"
        )
    options = RunOptions(version=body.version, draft=body.draft, end_user=body.user)
    events = await primed(execute(apps, app, body.inputs, options, principal.key_id))
    if body.stream:
        return sse_events(events)
    done = await unless_disconnected(request, _collect(events))
    last = done[-1]
    return JSONResponse(
        {
            "run_id": last.data["run_id"],
            "status": "succeeded" if last.event == "run_finished" else "failed",
            "outputs": last.data.get("outputs", {}),
            "error": last.data.get("error"),
            "elapsed_ms": last.data.get("elapsed_ms"),
            "usage": last.data.get("usage", {}),
            "nodes": [e.data for e in done if e.event == "node_finished"],
        }
    )


@router.post("/apps/{app_ref}/chat", summary="Chat with a chat or agent app", response_model=None)
async def chat(
    request: Request, app_ref: str, body: ChatBody, principal: AnyKey, apps: AppsDep
) -> JSONResponse | StreamingResponse:
    app = await run_in_threadpool(apps.get, principal, app_ref)
    if app.mode == "workflow":
        raise InvalidRequest(
            f"{app.slug} is a workflow; use POST /v1/apps/{app.slug}/run", param="app"
        )
    options = RunOptions(
        version=body.version,
        draft=body.draft,
        end_user=body.user,
        conversation_id=body.conversation_id,
    )
    events = await primed(
        execute(apps, app, body.inputs, options, principal.key_id, query=body.query)
    )
    if body.stream:
        return sse_events(events)
    done = await unless_disconnected(request, _collect(events))
    last = done[-1]
    started = done[0].data
    return JSONResponse(
        {
            "run_id": last.data["run_id"],
            "conversation_id": started.get("conversation_id"),
            "status": "succeeded" if last.event == "run_finished" else "failed",
            "answer": answer_text(done) if last.event == "run_finished" else None,
            "error": last.data.get("error"),
            "elapsed_ms": last.data.get("elapsed_ms"),
        }
    )
