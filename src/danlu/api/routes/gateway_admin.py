"""Gateway administration over HTTP: limit rules, and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from danlu.api.auth import require
from danlu.api.gateway_calls import Metering
from danlu.core.keys import Principal, Scope

router = APIRouter(tags=["Gateway (admin)"])
Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]


class LimitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rpm: int | None = Field(default=None, ge=0, description="Requests per minute (null: any)")
    tpm: int | None = Field(default=None, ge=0, description="Tokens per minute (null: any)")
    concurrency: int | None = Field(default=None, ge=0, description="Requests in flight")
    models: list[str] | None = Field(default=None, description="Allowed models (null: all)")


@router.get("/v1/admin/limits", summary="Limit rules per key, user and workspace")
async def list_limits(_: Admin, meter: Metering) -> dict[str, Any]:
    return {"object": "list", "data": [rule.describe() for rule in meter.rules.rules()]}


@router.put(
    "/v1/admin/limits/{scope}/{subject}",
    summary="Set the limits of a key, user or workspace id ('*': the default of the scope)",
)
async def put_limits(
    scope: str, subject: str, body: LimitBody, _: Admin, meter: Metering
) -> dict[str, Any]:
    rule = await run_in_threadpool(
        lambda: meter.rules.put(
            scope,
            subject,
            rpm=body.rpm,
            tpm=body.tpm,
            concurrency=body.concurrency,
            models=body.models,
        )
    )
    return rule.describe()


@router.delete("/v1/admin/limits/{scope}/{subject}", summary="Remove a limit rule")
async def delete_limits(scope: str, subject: str, _: Admin, meter: Metering) -> Response:
    await run_in_threadpool(meter.rules.remove, scope, subject)
    return Response(status_code=204)


@router.get("/metrics", summary="Prometheus metrics (admin key as bearer token)")
async def metrics(_: Admin, request: Request, meter: Metering) -> Response:
    return Response(
        meter.metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
