"""Insight over HTTP: every app's and workspace's metrics (JSON with formulas, or CSV),
end users' feedback, conversation logs and run traces, and annotations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from danlu.api.auth import require
from danlu.api.state import Services, get_services
from danlu.builder.apps import Apps
from danlu.builder.tables import App
from danlu.core.accounts import may_see_workspace
from danlu.core.errors import NotFound, PermissionDenied
from danlu.core.keys import Principal, Scope
from danlu.core.tables import Membership, Role, Workspace
from danlu.insight import export, logs
from danlu.insight.annotations import Annotations, annotation_json
from danlu.insight.formulas import FORMULAS
from danlu.insight.service import Insight
from danlu.insight.window import Scope as MetricScope
from danlu.insight.window import Window

router = APIRouter(prefix="/v1", tags=["Insight"])
AnyKey = Annotated[Principal, Depends(require(None))]
Svc = Annotated[Services, Depends(get_services)]
Format = Annotated[Literal["json", "csv"], Query()]


@dataclass(frozen=True)
class Period:
    """The days asked for (``from``, ``to``) and the time zone they are counted in."""

    start: date | None
    end: date | None
    tz: str | None


From = Annotated[date | None, Query(alias="from", description="first local day (YYYY-MM-DD)")]
To = Annotated[date | None, Query(alias="to", description="last local day, included")]
Tz = Annotated[str | None, Query(description="IANA time zone; default: the workspace's")]


def _period(start: From = None, end: To = None, tz: Tz = None) -> Period:
    return Period(start, end, tz)


PeriodDep = Annotated[Period, Depends(_period)]


def _insight(request: Request) -> Insight:
    insight: Insight = request.app.state.insight
    return insight


def _apps(request: Request) -> Apps:
    apps: Apps = request.app.state.apps
    return apps


InsightDep = Annotated[Insight, Depends(_insight)]
AppsDep = Annotated[Apps, Depends(_apps)]


def _csv(body: str, name: str) -> Response:
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def _app(apps: Apps, principal: Principal, app_ref: str, *, write: bool = False) -> App:
    app = await run_in_threadpool(apps.get, principal, app_ref, write=write)
    principal.require(Scope.INFERENCE)
    return app


def _workspace(services: Services, principal: Principal, slug: str, *, manage: bool) -> Workspace:
    principal.require(Scope.INFERENCE)
    with services.db.read() as session:
        workspace = session.scalar(select(Workspace).where(Workspace.slug == slug))
        if workspace is None or not may_see_workspace(session, principal, workspace.id):
            raise NotFound(f"no workspace named {slug!r}", param="workspace")
        membership = session.get(Membership, (workspace.id, principal.user_id))
    if manage and not principal.is_admin:
        role = Role(membership.role) if membership else None
        if role is None or not role.at_least(Role.ADMIN):
            raise PermissionDenied("only the workspace's owners and admins can change this")
    return workspace


# --- formulas ------------------------------------------------------------------------------


@router.get("/insight/formulas", summary="Every metric's formula")
async def formulas(_: AnyKey) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"metric": f.name, "label": f.label, "formula": f.formula, "unit": f.unit}
            for f in FORMULAS.values()
        ],
    }


# --- metrics of one app ------------------------------------------------------------------


async def _app_scope(
    apps: Apps, insight: Insight, principal: Principal, app_ref: str, period: Period
) -> tuple[App, MetricScope, Window]:
    app = await _app(apps, principal, app_ref)
    window = await run_in_threadpool(
        insight.window, app.workspace_id, period.start, period.end, period.tz
    )
    return app, MetricScope("app", app.id), window


@router.get(
    "/apps/{app_ref}/insight/overview", summary="An app's headline metrics", response_model=None
)
async def app_overview(
    app_ref: str,
    principal: AnyKey,
    apps: AppsDep,
    insight: InsightDep,
    period: PeriodDep,
    format: Format = "json",
) -> dict[str, Any] | Response:
    app, scope, window = await _app_scope(apps, insight, principal, app_ref, period)
    found = await run_in_threadpool(insight.overview, scope, window)
    found["app"] = {"id": app.id, "slug": app.slug, "name": app.name}
    if format == "csv":
        return _csv(
            export.overview_csv(found), f"{app.slug}-overview-{window.start}-{window.end}.csv"
        )
    return found


@router.get("/apps/{app_ref}/insight/series", summary="One metric per day", response_model=None)
async def app_series(
    app_ref: str,
    principal: AnyKey,
    apps: AppsDep,
    insight: InsightDep,
    period: PeriodDep,
    metric: str = "dau",
    format: Format = "json",
) -> dict[str, Any] | Response:
    app, scope, window = await _app_scope(apps, insight, principal, app_ref, period)
    found = await run_in_threadpool(insight.series, scope, window, metric)
    if format == "csv":
        return _csv(
            export.series_csv(found),
            f"{app.slug}-{found['metric']}-{window.start}-{window.end}.csv",
        )
    return found


@router.get(
    "/apps/{app_ref}/insight/retention",
    summary="Retention cohorts by day or week",
    response_model=None,
)
async def app_retention(
    app_ref: str,
    principal: AnyKey,
    apps: AppsDep,
    insight: InsightDep,
    period: PeriodDep,
    grain: Literal["day", "week"] = "day",
    days: Annotated[int | None, Query(description="periods after the first: days or weeks")] = None,
    format: Format = "json",
) -> dict[str, Any] | Response:
    app, scope, window = await _app_scope(apps, insight, principal, app_ref, period)
    found = await run_in_threadpool(insight.retention, scope, window, grain, days)
    if format == "csv":
        return _csv(export.retention_csv(found), f"{app.slug}-retention-{grain}-{window.end}.csv")
    return found


@router.get(
    "/apps/{app_ref}/insight/users",
    summary="New, returning, known and anonymous users",
    response_model=None,
)
async def app_users(
    app_ref: str,
    principal: AnyKey,
    apps: AppsDep,
    insight: InsightDep,
    period: PeriodDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    format: Format = "json",
) -> dict[str, Any] | Response:
    app, scope, window = await _app_scope(apps, insight, principal, app_ref, period)
    found = await run_in_threadpool(insight.users, scope, window, limit, offset)
    if format == "csv":
        return _csv(export.users_csv(found), f"{app.slug}-users-{window.start}-{window.end}.csv")
    return found


# --- logs and traces ------------------------------------------------------------------------


async def _log_query(
    insight: Insight,
    app: App,
    q: str | None,
    user: str | None,
    status: str | None,
    period: Period,
    limit: int,
    offset: int,
) -> logs.LogQuery:
    zone_name: str = (
        period.tz if period.tz else await run_in_threadpool(insight.timezone_of, app.workspace_id)
    )
    since, until = logs.utc_bounds(period.start, period.end, zone_name)
    return logs.LogQuery(q or None, user, status, since, until, limit, offset)


@router.get("/apps/{app_ref}/insight/conversations", summary="Search an app's conversations")
async def conversations(
    app_ref: str,
    principal: AnyKey,
    apps: AppsDep,
    insight: InsightDep,
    period: PeriodDep,
    q: Annotated[str | None, Query(max_length=500)] = None,
    user: str | None = None,
    limit: Annotated[int, Query(ge=1, le=logs.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    app = await _app(apps, principal, app_ref)
    query = await _log_query(insight, app, q, user, None, period, limit, offset)
    return await run_in_threadpool(logs.conversations, insight.db, app, query)


@router.get(
    "/apps/{app_ref}/insight/conversations/{conversation_id}",
    summary="A conversation's messages and feedback",
)
async def conversation(
    app_ref: str, conversation_id: str, principal: AnyKey, apps: AppsDep, insight: InsightDep
) -> dict[str, Any]:
    app = await _app(apps, principal, app_ref)
    found = await run_in_threadpool(logs.conversation, insight.db, app, conversation_id)
    run_ids = [m["run_id"] for m in found["messages"] if m["role"] == "assistant" and m["run_id"]]
    feedback = await run_in_threadpool(insight.feedback_of, run_ids)
    for message in found["messages"]:
        if message["role"] == "assistant":
            message["feedback"] = feedback.get(message["run_id"] or "")
    return found


@router.get("/apps/{app_ref}/insight/runs", summary="Search an app's runs (the logs)")
async def run_logs(
    app_ref: str,
    principal: AnyKey,
    apps: AppsDep,
    insight: InsightDep,
    period: PeriodDep,
    q: Annotated[str | None, Query(max_length=500)] = None,
    user: str | None = None,
    status: Literal["succeeded", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=logs.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    app = await _app(apps, principal, app_ref)
    query = await _log_query(insight, app, q, user, status, period, limit, offset)
    return await run_in_threadpool(logs.runs, insight.db, app, query)


@router.get(
    "/apps/{app_ref}/insight/runs/{run_id}",
    summary="One run's trace: node timings, inputs, outputs",
)
async def run_trace(
    app_ref: str, run_id: str, principal: AnyKey, apps: AppsDep, insight: InsightDep
) -> dict[str, Any]:
    app = await _app(apps, principal, app_ref)
    recorded = await run_in_threadpool(insight.run_record, run_id)
    found = await run_in_threadpool(logs.trace, insight.db, app, run_id, recorded)
    found["feedback"] = (await run_in_threadpool(insight.feedback_of, [run_id])).get(run_id)
    return found


# --- feedback from end users ---------------------------------------------------------------


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rating: Literal["like", "dislike", "none"] | None = Field(
        default=None, description="like, dislike, or none to take a rating back"
    )
    comment: str | None = Field(default=None, max_length=2000)
    user: str | None = Field(default=None, max_length=128, description="the end user giving it")


@router.post(
    "/apps/{app_ref}/runs/{run_id}/feedback",
    status_code=202,
    summary="Like, dislike or comment on an answer",
)
async def feedback(
    app_ref: str,
    run_id: str,
    body: FeedbackBody,
    principal: AnyKey,
    apps: AppsDep,
    insight: InsightDep,
) -> dict[str, Any]:
    # App keys may: the end users of a published app give feedback through its key.
    app = await run_in_threadpool(apps.get, principal, app_ref)
    return await run_in_threadpool(
        lambda: insight.feedback(
            app,
            run_id,
            rating=body.rating,
            comment=body.comment,
            user=body.user,
            key_id=principal.key_id,
        )
    )


# --- annotations -----------------------------------------------------------------------------


def _annotations(services: Services) -> Annotations:
    return Annotations(services.db, services.repos, services.committer)


class AnnotationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_id: str = Field(min_length=1, max_length=40)
    saved_reply: bool = True
    training: bool = False
    question: str | None = None
    answer: str | None = Field(default=None, description="an edited answer (default: the run's)")


@router.post(
    "/apps/{app_ref}/annotations",
    status_code=201,
    summary="Keep a run's answer as a saved reply or training example",
)
async def annotate(
    app_ref: str, body: AnnotationBody, principal: AnyKey, apps: AppsDep, services: Svc
) -> dict[str, Any]:
    app = await _app(apps, principal, app_ref, write=True)
    row = await run_in_threadpool(
        lambda: _annotations(services).save(
            principal,
            app,
            body.run_id,
            saved_reply=body.saved_reply,
            training=body.training,
            question=body.question,
            answer=body.answer,
        )
    )
    return annotation_json(row)


@router.get("/apps/{app_ref}/annotations", summary="An app's annotations")
async def list_annotations(
    app_ref: str,
    principal: AnyKey,
    apps: AppsDep,
    services: Svc,
    saved_reply: bool | None = None,
    training: bool | None = None,
) -> dict[str, Any]:
    app = await _app(apps, principal, app_ref)
    rows = await run_in_threadpool(
        lambda: _annotations(services).listing(app, saved_reply=saved_reply, training=training)
    )
    return {"object": "list", "data": [annotation_json(r) for r in rows]}


@router.get("/apps/{app_ref}/annotations/match", summary="The saved reply to a question, if any")
async def match_annotation(
    app_ref: str,
    principal: AnyKey,
    apps: AppsDep,
    services: Svc,
    q: Annotated[str, Query(min_length=1, max_length=100_000)],
) -> dict[str, Any]:
    app = await run_in_threadpool(apps.get, principal, app_ref)
    row = await run_in_threadpool(_annotations(services).match, app, q)
    return {"match": annotation_json(row) if row else None}


@router.delete("/apps/{app_ref}/annotations/{annotation_id}", summary="Remove an annotation")
async def delete_annotation(
    app_ref: str, annotation_id: str, principal: AnyKey, apps: AppsDep, services: Svc
) -> dict[str, Any]:
    app = await _app(apps, principal, app_ref, write=True)
    await run_in_threadpool(_annotations(services).delete, app, annotation_id)
    return {"id": annotation_id, "deleted": True}


class ExportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    repo: str = Field(min_length=3, max_length=200, description="dataset repo, owner/name")
    path: str = Field(default="annotations.jsonl", max_length=500)
    include_exported: bool = False
    create: bool = True


@router.post(
    "/apps/{app_ref}/annotations/export",
    summary="Append training examples to a hub dataset (OpenAI messages JSONL)",
)
async def export_annotations(
    app_ref: str, body: ExportBody, principal: AnyKey, apps: AppsDep, services: Svc
) -> dict[str, Any]:
    app = await _app(apps, principal, app_ref, write=True)
    principal.require(Scope.HUB_WRITE)
    result = await run_in_threadpool(
        lambda: _annotations(services).export(
            principal,
            app,
            body.repo,
            path=body.path,
            include_exported=body.include_exported,
            create=body.create,
        )
    )
    return {
        "repo": result.repo,
        "path": result.path,
        "commit": result.commit,
        "added": result.added,
        "format": "openai-messages",
    }


# --- a workspace ------------------------------------------------------------------------------


async def _workspace_scope(
    services: Services,
    insight: Insight,
    principal: Principal,
    slug: str,
    period: Period,
) -> tuple[Workspace, MetricScope, Window]:
    workspace = await run_in_threadpool(_workspace, services, principal, slug, manage=False)
    window = await run_in_threadpool(
        insight.window, workspace.id, period.start, period.end, period.tz
    )
    return workspace, MetricScope("workspace", workspace.id), window


@router.get(
    "/workspaces/{slug}/insight/overview",
    summary="A workspace's headline metrics, per app too",
    response_model=None,
)
async def workspace_overview(
    slug: str,
    principal: AnyKey,
    services: Svc,
    insight: InsightDep,
    period: PeriodDep,
    format: Annotated[Literal["json", "csv", "apps.csv"], Query()] = "json",
) -> dict[str, Any] | Response:
    workspace, scope, window = await _workspace_scope(services, insight, principal, slug, period)
    found = await run_in_threadpool(insight.overview, scope, window)
    found["workspace"] = {"id": workspace.id, "slug": workspace.slug}
    found["apps"] = await run_in_threadpool(insight.apps, workspace.id, window)
    if format == "csv":
        return _csv(export.overview_csv(found), f"{slug}-overview-{window.start}-{window.end}.csv")
    if format == "apps.csv":
        return _csv(export.apps_csv(found["apps"]), f"{slug}-apps-{window.start}-{window.end}.csv")
    return found


@router.get(
    "/workspaces/{slug}/insight/series", summary="One workspace metric per day", response_model=None
)
async def workspace_series(
    slug: str,
    principal: AnyKey,
    services: Svc,
    insight: InsightDep,
    period: PeriodDep,
    metric: str = "dau",
    format: Format = "json",
) -> dict[str, Any] | Response:
    _, scope, window = await _workspace_scope(services, insight, principal, slug, period)
    found = await run_in_threadpool(insight.series, scope, window, metric)
    if format == "csv":
        return _csv(
            export.series_csv(found), f"{slug}-{found['metric']}-{window.start}-{window.end}.csv"
        )
    return found


@router.get(
    "/workspaces/{slug}/insight/retention",
    summary="Workspace retention cohorts",
    response_model=None,
)
async def workspace_retention(
    slug: str,
    principal: AnyKey,
    services: Svc,
    insight: InsightDep,
    period: PeriodDep,
    grain: Literal["day", "week"] = "day",
    days: int | None = None,
    format: Format = "json",
) -> dict[str, Any] | Response:
    _, scope, window = await _workspace_scope(services, insight, principal, slug, period)
    found = await run_in_threadpool(insight.retention, scope, window, grain, days)
    if format == "csv":
        return _csv(export.retention_csv(found), f"{slug}-retention-{grain}-{window.end}.csv")
    return found


@router.get(
    "/workspaces/{slug}/insight/users", summary="A workspace's end users", response_model=None
)
async def workspace_users(
    slug: str,
    principal: AnyKey,
    services: Svc,
    insight: InsightDep,
    period: PeriodDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    format: Format = "json",
) -> dict[str, Any] | Response:
    _, scope, window = await _workspace_scope(services, insight, principal, slug, period)
    found = await run_in_threadpool(insight.users, scope, window, limit, offset)
    if format == "csv":
        return _csv(export.users_csv(found), f"{slug}-users-{window.start}-{window.end}.csv")
    return found


@router.get(
    "/workspaces/{slug}/insight/settings", summary="The time zone a workspace's days are counted in"
)
async def get_settings(
    slug: str, principal: AnyKey, services: Svc, insight: InsightDep
) -> dict[str, Any]:
    workspace = await run_in_threadpool(_workspace, services, principal, slug, manage=False)
    tz = await run_in_threadpool(insight.timezone_of, workspace.id)
    return {"workspace": workspace.slug, "timezone": tz, "default": insight.default_timezone}


class SettingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timezone: str = Field(min_length=1, max_length=64)


@router.put("/workspaces/{slug}/insight/settings", summary="Set the workspace's time zone")
async def put_settings(
    slug: str, body: SettingsBody, principal: AnyKey, services: Svc, insight: InsightDep
) -> dict[str, Any]:
    workspace = await run_in_threadpool(_workspace, services, principal, slug, manage=True)
    tz = await run_in_threadpool(insight.set_timezone, workspace.id, body.timezone)
    return {"workspace": workspace.slug, "timezone": tz, "default": insight.default_timezone}
