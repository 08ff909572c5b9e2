"""Bearer-key authentication for the HTTP API; fails closed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from danlu.api.state import Services, get_services
from danlu.core.errors import AuthenticationFailed
from danlu.core.keys import Principal


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise AuthenticationFailed(
            "missing API key: send 'Authorization: Bearer sk-danlu-…' "
            "(create a key with `danlu keys create --name NAME`)",
            code="missing_api_key",
        )
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed(
            "malformed Authorization header: use 'Authorization: Bearer sk-danlu-…'",
            code="invalid_api_key",
        )
    return token.strip()


def require(scope: str | None) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the caller and checks one scope (None: any key)."""

    # A key seen in the last seconds is answered from memory, on the event loop; otherwise
    # the database lookup runs in the thread pool, so it never blocks the loop.
    async def dependency(
        request: Request, services: Annotated[Services, Depends(get_services)]
    ) -> Principal:
        token = bearer_token(request)
        principal = services.keys.recently_authenticated(token)
        if principal is None:
            principal = await run_in_threadpool(services.keys.authenticate, token)
        if scope is not None:
            principal.require(scope)
        request.state.principal = principal
        return principal

    return dependency
