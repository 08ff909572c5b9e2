"""Server-sent events and client disconnects.

The first chunk of a stream is awaited *before* the response starts, so
errors that happen up front (a bad option, a full queue, an unreachable
upstream) get a real status code instead of a broken 200 stream. While that
first chunk is pending, and for non-streamed answers, the client's disconnect
cancels the work; once streaming, Starlette cancels the generator itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import StreamingResponse

from danlu.api.errors import error_body, status_of
from danlu.core.errors import DanluError
from danlu.gateway.openai_format import Stamp
from danlu.gateway.provider import Chunk

log = logging.getLogger(__name__)
T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before the answer was ready."""


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await ``work``; cancel it and raise :class:`ClientGone` if the client leaves."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            # Let the cancellation land (the work's clean-up runs) before deciding; a task
            # asked to cancel is not "cancelled" until it has.
            await asyncio.wait({task})
    if task.cancelled():
        raise ClientGone()
    return task.result()


async def _close(chunks: AsyncIterator[Chunk]) -> None:
    """Close a provider stream so its clean-up (cancelling generation) runs now."""
    if isinstance(chunks, AsyncGenerator):
        await chunks.aclose()


def _event(payload: Any) -> bytes:
    return (
        b"data: "
        + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        + b"\n\n"
    )


async def stream_response(
    request: Request, chunks: AsyncIterator[Chunk], stamp: Stamp
) -> StreamingResponse:
    """An OpenAI-style SSE response: chunks, an optional usage chunk, ``[DONE]``."""
    try:
        first = await unless_disconnected(request, anext(chunks))
    except StopAsyncIteration:
        first = None
    except BaseException:
        await _close(chunks)
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            if first is not None:
                wire = stamp.chunk(first)
                if wire is not None:
                    yield _event(wire)
                async for chunk in chunks:
                    wire = stamp.chunk(chunk)
                    if wire is not None:
                        yield _event(wire)
        except DanluError as exc:
            # Headers are gone; the error travels as a last event, as OpenAI does.
            _, type_ = status_of(exc)
            yield _event(error_body(exc.message, type_, exc.param, exc.code))
        except Exception:
            log.exception("stream failed mid-way")
            yield _event(error_body("the stream failed; see the server log", "server_error"))
        finally:
            await _close(chunks)
        yield b"data: [DONE]\n\n"

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
