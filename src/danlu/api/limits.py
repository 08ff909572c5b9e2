"""Body-size limit as pure ASGI middleware, so oversized bodies never reach memory."""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from danlu.api.errors import (
    error_body,
    modelscope_error_body,
    uses_hub_style,
    uses_modelscope_style,
)
from danlu.core.settings import Settings


def body_limits(settings: Settings) -> Callable[[str], int]:
    """The body limit for a path: big for hub uploads, small for the JSON API."""

    def limit_for(path: str) -> int:
        if path.startswith(("/api/lfs/objects/", "/api/v1/lfs/objects/")):
            return settings.hub_max_file_bytes
        # Hugging Face commits (/api/{type}s/…/commit/…) and ModelScope's
        # (/api/v1/repos/{type}s/…/commit/…) carry small files inline.
        if path.startswith("/api/") and "/commit/" in path:
            return settings.hub_max_commit_bytes
        return settings.max_body_bytes

    return limit_for


class BodyLimitMiddleware:
    """Refuse bodies over the path's limit with 413, whether announced or streamed."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]):
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        max_bytes = self.limit_for(path)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._refuse(send, path, max_bytes)
            return
        seen = 0
        refused = False
        started = False

        async def counting_receive() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    refused = True
                    # Tell the app the client left; it stops reading and answers nothing.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            # The app saw a "disconnect" mid-body and gave up; that is expected.
            if not refused:
                raise
        if refused and not started:
            await self._refuse(send, path, max_bytes)

    async def _refuse(self, send: Send, path: str, max_bytes: int) -> None:
        message = (
            f"the request body is larger than {max_bytes} bytes; send less "
            "(limits: DANLU_MAX_BODY_BYTES, DANLU_HUB_MAX_COMMIT_BYTES, DANLU_HUB_MAX_FILE_BYTES)"
        )
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        if uses_modelscope_style(path):
            # The request id still reaches the client in the X-Request-ID header.
            body = json.dumps(modelscope_error_body(path, 413, message, None, "")).encode()
        elif uses_hub_style(path):
            body = json.dumps({"error": message}).encode()
            headers.append((b"x-error-message", message.encode()))
        else:
            body = json.dumps(
                error_body(message, "invalid_request_error", code="body_too_large")
            ).encode()
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
