"""Console sign-in: a username and password become a short-lived session key.

The console then calls the same API as every other client, with that key as its bearer
token, so there is one way to authenticate and one set of permission checks. Session
keys are ordinary API keys (stored hashed, revocable) that expire after a week.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from danlu.api.attempts import AttemptWindow
from danlu.api.auth import require
from danlu.api.state import Services, get_services
from danlu.core.errors import AuthenticationFailed
from danlu.core.keys import Principal, Scope
from danlu.core.tables import utcnow

router = APIRouter(prefix="/v1/auth", tags=["Console sign-in"])
Caller = Annotated[Principal, Depends(require(None))]
Svc = Annotated[Services, Depends(get_services)]

CONSOLE_SESSION = "console session"
SESSION_DAYS = 7
# Ten wrong passwords in fifteen minutes per address and name, then a pause.
_failures = AttemptWindow(limit=10, seconds=15 * 60)


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


@router.post("/login", summary="Sign in with a username and password; returns a session key")
async def login(body: Login, request: Request, services: Svc) -> dict[str, Any]:
    client = request.client.host if request.client else "?"
    subject = f"{client}:{body.username.lower()}"
    _failures.check(subject, "too many failed sign-ins for this name from this address")
    try:
        user = await run_in_threadpool(
            services.accounts.check_password, body.username, body.password
        )
    except AuthenticationFailed:
        _failures.add(subject)
        raise
    _failures.clear(subject)
    scopes = [*Scope.DEFAULT, Scope.ADMIN] if user.is_admin else list(Scope.DEFAULT)
    expires_at = utcnow() + timedelta(days=SESSION_DAYS)
    view, secret = await run_in_threadpool(
        services.keys.create, user, CONSOLE_SESSION, scopes=scopes, expires_at=expires_at
    )
    return {
        "token": secret,
        "key_id": view.id,
        "expires_at": expires_at.isoformat(),
        "username": user.username,
    }


@router.post("/logout", status_code=204, summary="End this console session (revokes its key)")
async def logout(caller: Caller, services: Svc) -> Response:
    await run_in_threadpool(services.keys.revoke, caller.key_id, by_user_id=caller.user_id)
    return Response(status_code=204)


@router.get("/me", summary="Who is signed in, and their workspaces")
async def me(caller: Caller, services: Svc) -> dict[str, Any]:
    user = await run_in_threadpool(services.accounts.user, caller.username)
    workspaces = await run_in_threadpool(services.accounts.workspaces_of, user)
    return {
        "username": caller.username,
        "is_admin": caller.is_admin,
        "workspace": caller.workspace_slug,
        "scopes": sorted(caller.scopes),
        "workspaces": [{"slug": slug, "role": str(role)} for slug, role in workspaces],
    }
