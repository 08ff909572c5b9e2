"""What every model call over HTTP shares: admission, metering and the overhead header."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from danlu.api.sse import ClientGone, stream_response, unless_disconnected
from danlu.core.keys import Principal
from danlu.gateway.metering import Call, Meter, metered
from danlu.gateway.openai_format import Stamp
from danlu.gateway.provider import Chunk


def _meter(request: Request) -> Meter:
    meter: Meter = request.app.state.meter
    return meter


Metering = Annotated[Meter, Depends(_meter)]


def overhead_header(request: Request, call: Call, model_seconds: float = 0.0) -> dict[str, str]:
    """The gateway's own time: from arrival to the model call, plus any after it.

    For a stream the header leaves before the answer, so it counts admission only.
    """
    arrived = getattr(request.state, "arrived", call.admitted_at)
    total = time.perf_counter() - arrived
    own = max(0.0, total - model_seconds)
    return {"X-Danlu-Overhead-Ms": f"{own * 1000:.2f}"}


async def admit(
    request: Request,
    meter: Meter,
    caller: Principal,
    model: str,
    kind: str,
    prompt: Any,
    max_output: int | None,
) -> Call:
    call = await meter.admit(
        caller,
        model,
        kind,
        getattr(request.state, "request_id", "") or "req_" + os.urandom(8).hex(),
        prompt=prompt,
        max_output=max_output,
    )
    arrived = getattr(request.state, "arrived", call.admitted_at)
    meter.metrics.overhead.labels(kind).observe(call.admitted_at - arrived)
    return call


async def answer(
    request: Request,
    meter: Meter,
    call: Call,
    stream: bool,
    chunks: Callable[[], AsyncIterator[Chunk]],
    whole: Callable[[], Awaitable[Chunk]],
    stamp: Stamp,
) -> StreamingResponse | JSONResponse:
    """Run an admitted call, streamed or whole, metering it however it ends."""
    if stream:
        response = await stream_response(request, metered(chunks(), call), stamp)
        response.headers.update(overhead_header(request, call))
        return response
    began = time.perf_counter()
    try:
        answer = await unless_disconnected(request, whole())
    except BaseException as exc:
        status = "cancelled" if isinstance(exc, asyncio.CancelledError | ClientGone) else "error"
        meter.settle_later(call, status)
        raise
    model_seconds = time.perf_counter() - began
    call.observe(answer)
    await call.finish()
    return JSONResponse(stamp.whole(answer), headers=overhead_header(request, call, model_seconds))
