"""API keys over HTTP: a user manages their own; an admin key manages all."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, field_validator

from danlu.api.auth import require
from danlu.api.state import Services, get_services
from danlu.core.errors import PermissionDenied
from danlu.core.keys import KeyView, Principal, Scope

router = APIRouter(prefix="/v1/keys", tags=["API keys"])

# Any valid key may manage its own user's keys, but never mint wider scopes than it has.
Caller = Annotated[Principal, Depends(require(None))]
Svc = Annotated[Services, Depends(get_services)]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    scopes: list[str] = Field(default_factory=lambda: list(Scope.DEFAULT))
    expires_at: datetime | None = None

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        # A time without a zone is taken as UTC, as the docs say.
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _as_json(view: KeyView) -> dict[str, Any]:
    return {
        "id": view.id,
        "name": view.name,
        "prefix": view.prefix,
        "user": view.username,
        "workspace": view.workspace,
        "scopes": view.scopes,
        "status": view.status,
        "created_at": view.created_at.isoformat(),
        "expires_at": view.expires_at.isoformat() if view.expires_at else None,
        "revoked_at": view.revoked_at.isoformat() if view.revoked_at else None,
        "last_used_at": view.last_used_at.isoformat() if view.last_used_at else None,
    }


def _sees_all(caller: Principal) -> bool:
    return caller.is_admin and Scope.ADMIN in caller.scopes


@router.get("", summary="List keys (yours; an admin key lists all)")
async def list_keys(caller: Caller, services: Svc) -> dict[str, Any]:
    user_id = None if _sees_all(caller) else caller.user_id
    views = await run_in_threadpool(services.keys.list, user_id)
    return {"object": "list", "data": [_as_json(v) for v in views]}


@router.post("", status_code=201, summary="Create a key; its secret is shown only in this answer")
async def create_key(body: KeyCreate, caller: Caller, services: Svc) -> dict[str, Any]:
    beyond = set(body.scopes) - caller.scopes
    if beyond:
        raise PermissionDenied(
            f"a key cannot grant scopes its creator lacks: {sorted(beyond)}", param="scopes"
        )

    def create() -> tuple[KeyView, str]:
        user = services.accounts.user(caller.username)
        workspace = services.accounts.workspace(caller.workspace_slug)
        return services.keys.create(
            user, body.name, scopes=body.scopes, expires_at=body.expires_at, workspace=workspace
        )

    view, secret = await run_in_threadpool(create)
    return {**_as_json(view), "key": secret}


@router.delete("/{key_id}", summary="Revoke a key")
async def revoke_key(key_id: str, caller: Caller, services: Svc) -> Response:
    by_user = None if _sees_all(caller) else caller.user_id
    await run_in_threadpool(services.keys.revoke, key_id, by_user_id=by_user)
    return Response(status_code=204)
