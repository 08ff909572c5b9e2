"""Bearer-key authentication for the HTTP API; fails closed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

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


def require(scope: str | None) -> Callable[..., Principal]:
    """A dependency that authenticates the caller and checks one scope (None: any key)."""

    # A plain def: FastAPI runs it in the thread pool, so the database lookup
    # never blocks the event loop.
    def dependency(
        request: Request, services: Annotated[Services, Depends(get_services)]
    ) -> Principal:
        principal = services.keys.authenticate(bearer_token(request))
        if scope is not None:
            principal.require(scope)
        request.state.principal = principal
        return principal

    return dependency
