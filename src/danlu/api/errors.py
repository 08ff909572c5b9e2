"""The one error shape of the HTTP API — OpenAI's — and the status of each error.

``{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}`` for
every failure: domain errors, validation errors, unknown routes, oversized
bodies and, should one slip through, unexpected exceptions (as a 500 that
names the request id to look up in the log).
"""

from __future__ import annotations

import logging
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
    (errors.Conflict, 409, "conflict_error"),
    (errors.PayloadTooLarge, 413, "invalid_request_error"),
    (errors.Unsupported, 422, "invalid_request_error"),
    (errors.RateLimited, 429, "rate_limit_error"),
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


def response_for(exc: errors.DanluError) -> JSONResponse:
    status, type_ = status_of(exc)
    headers = {}
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(
        error_body(exc.message, type_, exc.param, exc.code), status, headers=headers
    )


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
    async def _domain(_: Request, exc: errors.DanluError) -> JSONResponse:
        return response_for(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param, code = _validation_message(exc)
        return JSONResponse(error_body(message, "invalid_request_error", param, code), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}; see /docs for the API"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        type_ = _TYPE_BY_STATUS.get(exc.status_code, "server_error")
        return JSONResponse(error_body(message, type_), exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = getattr(request.state, "request_id", "-")
        log.exception(
            "unexpected error on %s %s (request %s)", request.method, request.url.path, request_id
        )
        return JSONResponse(
            error_body(
                f"internal error; the server log has the details (request {request_id})",
                "server_error",
            ),
            500,
        )
