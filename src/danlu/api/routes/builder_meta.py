"""What the canvas asks the builder: the node types, and a live check of a draft."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from fastapi.concurrency import run_in_threadpool

from danlu.api.auth import require
from danlu.builder.dsl import parse_app
from danlu.builder.inspect import inspect_app, node_catalog
from danlu.core.keys import Principal

router = APIRouter(prefix="/v1/builder", tags=["Builder (apps)"])
AnyKey = Annotated[Principal, Depends(require(None))]


@router.get("/node-types", summary="Node types with their config schemas (the canvas palette)")
async def node_types(_: AnyKey) -> dict[str, Any]:
    return {"object": "list", "data": node_catalog()}


@router.post("/check", summary="Compile a draft without saving it: problems, outputs, upstream")
async def check(_: AnyKey, spec: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    parsed = parse_app(spec)
    inspection = await run_in_threadpool(inspect_app, parsed)
    return inspection.to_dict()
