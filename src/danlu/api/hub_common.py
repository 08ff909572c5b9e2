"""Shared pieces of the hub's HTTP protocols: callers, repo types, URLs, signed links."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Annotated, Any

from fastapi import Depends, Request

from danlu.api.auth import bearer_token
from danlu.api.state import Services, get_services
from danlu.core.errors import AuthenticationFailed, InvalidRequest, NotFound
from danlu.core.keys import Principal
from danlu.hub.tables import RepoType

_PLURALS = {"models": RepoType.MODEL, "datasets": RepoType.DATASET, "spaces": RepoType.SPACE}


def optional_principal(
    request: Request, services: Annotated[Services, Depends(get_services)]
) -> Principal | None:
    """The caller, or None when no key is sent (public reads). A bad key is still a 401."""
    if not request.headers.get("authorization"):
        return None
    principal = services.keys.authenticate(bearer_token(request))
    request.state.principal = principal
    return principal


def required_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise AuthenticationFailed(
            "this needs an API key: set HF_TOKEN (or pass token=) to a danlu key with the "
            "hub:write scope",
            code="missing_api_key",
        )
    return principal


Caller = Annotated[Principal | None, Depends(optional_principal)]
Writer = Annotated[Principal, Depends(required_principal)]


def repo_type_from_plural(plural: str) -> RepoType:
    try:
        return _PLURALS[plural]
    except KeyError:
        raise NotFound(
            f"no route for repo type {plural!r}; use models, datasets or spaces"
        ) from None


def repo_type_from_name(name: str | None) -> RepoType:
    try:
        return RepoType(name or "model")
    except ValueError:
        raise InvalidRequest(
            f"repo type {name!r} is not one of model, dataset, space", param="type"
        ) from None


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def repo_url(request: Request, repo_type: RepoType, repo_id: str) -> str:
    prefix = "" if repo_type == RepoType.MODEL else f"{repo_type.plural}/"
    return f"{base_url(request)}/{prefix}{repo_id}"


class Signer:
    """Short-lived signed tokens for URLs that clients call without credentials.

    The LFS protocol hands the client an upload URL that it PUTs to with no
    Authorization header (as it would to a presigned S3 URL); the token in the
    URL carries who may upload what, and until when.
    """

    def __init__(self, secret: bytes):
        self._secret = secret

    def sign(self, payload: dict[str, Any], ttl_seconds: int = 3600) -> str:
        body = dict(payload, exp=int(time.time()) + ttl_seconds)
        raw = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()
        mac = hmac.new(self._secret, raw.encode(), hashlib.sha256).hexdigest()
        return f"{raw}.{mac}"

    def verify(self, token: str) -> dict[str, Any]:
        raw, _, mac = token.rpartition(".")
        expected = hmac.new(self._secret, raw.encode(), hashlib.sha256).hexdigest()
        if not raw or not hmac.compare_digest(mac, expected):
            raise AuthenticationFailed("the upload link is invalid", code="invalid_upload_token")
        body: dict[str, Any] = json.loads(base64.urlsafe_b64decode(raw.encode()))
        if body.get("exp", 0) < time.time():
            raise AuthenticationFailed(
                "the upload link expired; start the upload again", code="expired_upload_token"
            )
        return body
