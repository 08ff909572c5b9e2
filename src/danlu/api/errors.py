"""The one error shape of the HTTP API — OpenAI's — and the status of each error.

``{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}`` for
every failure: domain errors, validation errors, unknown routes, oversized
bodies and, should one slip through, unexpected exceptions (as a 500 that
names the request id to look up in the log).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from danlu.core import errors

log = logging.getLogger(__name__)

# Most specific first: the first matching class decides.
STATUS: list[tuple[type[errors.DanluError], int, str]] = [
    (errors.ContextLengthExceeded, 400, "invalid_request_error"),
    (errors.InvalidRequest, 400, "invalid_request_error"),
    (errors.ConfigError, 400, "invalid_request_error"),
    (errors.AuthenticationFailed, 401, "authentication_error"),
    (errors.PermissionDenied, 403, "permission_error"),
    (errors.NotFound, 404, "not_found_error"),
    (errors.PreconditionFailed, 412, "conflict_error"),
    (errors.Conflict, 409, "conflict_error"),
    (errors.PayloadTooLarge, 413, "invalid_request_error"),
    (errors.RangeNotSatisfiable, 416, "invalid_request_error"),
    (errors.Unsupported, 422, "invalid_request_error"),
    (errors.RateLimited, 429, "rate_limit_error"),
    (errors.InsufficientBalance, 402, "insufficient_quota"),
    (errors.LimitsUnavailable, 503, "server_error"),
    (errors.ModelUnavailable, 503, "server_error"),
    (errors.UpstreamTimeout, 504, "upstream_error"),
    (errors.UpstreamError, 502, "upstream_error"),
]

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def status_of(exc: errors.DanluError) -> tuple[int, str]:
    for cls, status, type_ in STATUS:
        if isinstance(exc, cls):
            if isinstance(exc, errors.UpstreamError) and 400 <= exc.status < 500:
                return exc.status, _TYPE_BY_STATUS.get(exc.status, "invalid_request_error")
            return status, type_
    return 500, "server_error"


def _header_safe(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1").replace("\n", " ")[:500]


def uses_hub_style(path: str) -> bool:
    """Hub protocol paths answer in the Hugging Face style; the rest in OpenAI's."""
    return not (path.startswith("/v1/") or path == "/v1" or path == "/healthz")


def uses_modelscope_style(path: str) -> bool:
    """The ModelScope protocol's two surfaces, which answer in its own envelopes."""
    return path.startswith(("/api/v1/", "/openapi/v1/"))


# The string codes of ModelScope's /openapi/v1 surface, by status.
_OPENAPI_CODES = {
    400: "InputParameterError",
    401: "InvalidAuthentication",
    403: "OperationNotAllowed",
    404: "ResourceNotFound",
    409: "DuplicateEntity",
    413: "InputParameterError",
    429: "RateLimitExceed",
}


def modelscope_error_body(
    path: str, status: int, message: str, code: str | None, request_id: str
) -> dict[str, Any]:
    """ModelScope's failure envelope; the client reads the status, then a numeric ``Code``."""
    business: int = status
    if code == "RepoExists":
        # The codes ModelScope uses for "model / dataset already exists".
        business = 10020101001 if path.startswith("/api/v1/datasets") else 10010101001
    elif code == "StaleParent" and "/commit/" in path:
        business = 10030000001  # "the branch moved": the client retries the commit
    body: dict[str, Any] = {
        "Code": business,
        "Data": None,
        "Message": message,
        "RequestId": request_id,
        "Success": False,
    }
    if path.startswith("/openapi/v1/"):
        body.update(
            success=False,
            code=_OPENAPI_CODES.get(status, "InternalServerError"),
            message=message,
            request_id=request_id,
        )
    return body


def render(
    request: Request,
    status: int,
    type_: str,
    message: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """The error response, in the shape the caller's client understands."""
    headers = dict(headers or {})
    path = request.url.path
    if uses_modelscope_style(path):
        request_id = str(getattr(request.state, "request_id", ""))
        body = modelscope_error_body(path, status, message, code, request_id)
        return JSONResponse(body, status, headers=headers)
    if uses_hub_style(path):
        # huggingface_hub reads X-Error-Code to tell RepoNotFound, EntryNotFound, … apart.
        headers["X-Error-Message"] = _header_safe(message)
        if code:
            headers["X-Error-Code"] = code
        return JSONResponse({"error": message, **(extra or {})}, status, headers=headers)
    return JSONResponse(error_body(message, type_, param, code), status, headers=headers)


def response_for(request: Request, exc: errors.DanluError) -> JSONResponse:
    status, type_ = status_of(exc)
    headers = {}
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return render(request, status, type_, exc.message, exc.param, exc.code, headers, exc.extra)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None, str]:
    problems = exc.errors()
    if not problems:
        return "the request body is invalid", None, "invalid_body"
    first = problems[0]
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    if first.get("type") == "json_invalid":
        detail = first.get("ctx", {}).get("error", "")
        return (f"the body is not valid JSON ({detail}); send a JSON object", None, "invalid_json")
    if first.get("type") == "missing" and not location:
        return "the request needs a JSON body", None, "missing_body"
    param = ".".join(location) or None
    message = str(first.get("msg", "invalid value"))
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    where = f"'{param}': " if param else ""
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return f"{where}{message}{more}", param, "invalid_value"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.DanluError)
    async def _domain(request: Request, exc: errors.DanluError) -> JSONResponse:
        return response_for(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param, code = _validation_message(exc)
        return render(request, 400, "invalid_request_error", message, param, code)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}; see /docs for the API"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        type_ = _TYPE_BY_STATUS.get(exc.status_code, "server_error")
        return render(request, exc.status_code, type_, message, headers=dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = getattr(request.state, "request_id", "-")
        log.exception(
            "unexpected error on %s %s (request %s)", request.method, request.url.path, request_id
        )
        message = f"internal error; the server log has the details (request {request_id})"
        return render(request, 500, "server_error", message)
