"""Upstream providers over HTTP (admin): presets, add, change, remove, with sealed keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from danlu.api.auth import require
from danlu.core.keys import Principal, Scope
from danlu.gateway.presets import PRESETS
from danlu.gateway.provider_store import ProviderStore, build_options

router = APIRouter(prefix="/v1/admin/providers", tags=["Providers (admin)"])
Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]


def _store(request: Request) -> ProviderStore:
    store: ProviderStore = request.app.state.provider_store
    return store


Store = Annotated[ProviderStore, Depends(_store)]


class ProviderModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    upstream: str | None = None
    kind: str = Field(default="chat", pattern="^(chat|embedding|rerank)$")


class ProviderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    preset: str | None = Field(default=None, description="dashscope, deepseek, moonshot, …")
    base_url: str | None = None
    api_key: str | None = Field(default=None, description="Stored encrypted; never shown again")
    models: list[str | ProviderModel] | None = Field(
        default=None, description="Served names; an object renames (upstream) or sets the kind"
    )
    headers: dict[str, str] | None = None
    timeout: float | None = Field(default=None, gt=0, le=3600)


class ProviderChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_url: str | None = None
    api_key: str | None = Field(default=None, description="A new key; empty string removes it")
    models: list[str | ProviderModel] | None = None
    headers: dict[str, str] | None = None
    timeout: float | None = Field(default=None, gt=0, le=3600)


def _models(models: list[str | ProviderModel] | None) -> list[Any] | None:
    if models is None:
        return None
    return [m if isinstance(m, str) else m.model_dump(exclude_none=True) for m in models]


@router.get("/presets", summary="Known providers and their defaults")
async def presets(_: Admin) -> dict[str, Any]:
    return {"object": "list", "data": [p.describe() for p in PRESETS.values()]}


@router.get("", summary="Providers added through the API or CLI")
async def listing(_: Admin, store: Store) -> dict[str, Any]:
    rows = await run_in_threadpool(store.rows)
    return {"object": "list", "data": [store.describe(row) for row in rows]}


@router.post("", status_code=201, summary="Add a provider (loaded at once, on every server)")
async def create(body: ProviderCreate, caller: Admin, store: Store) -> dict[str, Any]:
    options = build_options(
        body.preset,
        base_url=body.base_url,
        models=_models(body.models),
        headers=body.headers,
        timeout=body.timeout,
    )
    row = await store.create(
        body.name, options, api_key=body.api_key, preset=body.preset, created_by=caller.user_id
    )
    return store.describe(row)


@router.get("/{name}", summary="One provider")
async def one(name: str, _: Admin, store: Store) -> dict[str, Any]:
    return store.describe(await run_in_threadpool(store.get, name))


@router.patch("/{name}", summary="Change a provider; it is reloaded")
async def change(name: str, body: ProviderChange, _: Admin, store: Store) -> dict[str, Any]:
    changes = {
        "base_url": body.base_url,
        "models": _models(body.models),
        "headers": body.headers,
        "timeout": body.timeout,
    }
    row = await store.update(name, changes, api_key=body.api_key)
    return store.describe(row)


@router.delete("/{name}", summary="Remove a provider; its models stop being served")
async def remove(name: str, _: Admin, store: Store) -> Response:
    await store.delete(name)
    return Response(status_code=204)
