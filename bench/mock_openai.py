"""An OpenAI-compatible upstream that answers at once, for load benchmarks of gateways.

``python bench/mock_openai.py --port P [--key K]`` serves, on 127.0.0.1:

- ``POST /v1/chat/completions``: a fixed answer (``ANSWER``). Not streamed: one JSON body
  with usage. Streamed (``"stream": true``): a role chunk, one chunk per piece of the answer,
  a finish chunk, a usage chunk when ``stream_options.include_usage`` asks for it (as OpenAI
  does), then ``data: [DONE]``, each event one HTTP chunk, all written at once;
- ``GET /v1/models``: the one model, ``MODEL``; ``GET /healthz``: 200, without a key.

A wrong or missing bearer key (when ``--key`` is given) is a 401, an unknown path a 404.

It is meant to be no gateway's bottleneck: a raw asyncio protocol (uvloop when installed)
with the ``httptools`` parser, HTTP/1.1 keep-alive, prebuilt headers, one ``json.loads`` of
the request and one ``json.dumps`` of the answer per call. A load benchmark measures it on its
own ("direct") to show its ceiling on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any, cast

import httptools

MODEL = "mock-chat"
PIECES = ("The furnace ", "is hot, ", "the pill ", "is ready.")
ANSWER = "".join(PIECES)
PROMPT_TOKENS = 12
COMPLETION_TOKENS = len(PIECES)
USAGE = {
    "prompt_tokens": PROMPT_TOKENS,
    "completion_tokens": COMPLETION_TOKENS,
    "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
}


def _head(status: str, content_type: str, length: int | None) -> bytes:
    framing = f"content-length: {length}" if length is not None else "transfer-encoding: chunked"
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n{framing}\r\n"
        "connection: keep-alive\r\n\r\n"
    ).encode()


def _json_response(status: str, body: Any) -> bytes:
    data = json.dumps(body, separators=(",", ":")).encode()
    return _head(status, "application/json", len(data)) + data


def _chunked(events: list[bytes]) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(e), e) for e in events]
    return b"".join(parts) + b"0\r\n\r\n"


def completion(model: str) -> bytes:
    return _json_response(
        "200 OK",
        {
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": ANSWER},
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        },
    )


def stream(model: str, include_usage: bool) -> bytes:
    created = int(time.time())

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        body = {
            "id": "chatcmpl-mock",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": choices,
            **extra,
        }
        return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"

    events = [chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}}])]
    events += [chunk([{"index": 0, "delta": {"content": p}}]) for p in PIECES]
    events.append(chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    if include_usage:
        events.append(chunk([], usage=USAGE))
    events.append(b"data: [DONE]\n\n")
    return _head("200 OK", "text/event-stream", None) + _chunked(events)


MODELS = _json_response(
    "200 OK",
    {
        "object": "list",
        "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "mock"}],
    },
)
HEALTHY = _json_response("200 OK", {"status": "ok"})
NOT_FOUND = _json_response("404 Not Found", {"error": {"message": "not found", "type": "404"}})
UNAUTHORIZED = _json_response(
    "401 Unauthorized", {"error": {"message": "bad key", "type": "invalid_request_error"}}
)
BAD_REQUEST = _json_response(
    "400 Bad Request", {"error": {"message": "bad json", "type": "invalid_request_error"}}
)


class MockProtocol(asyncio.Protocol):
    """One connection: parse requests with httptools, answer each when its body is complete."""

    def __init__(self, key: bytes | None):
        self.key = key
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.auth = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.write(BAD_REQUEST)
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.auth = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"authorization":
            self.auth = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        self.transport.write(self.answer())
        if not self.parser.should_keep_alive():
            self.transport.close()

    def answer(self) -> bytes:
        path = self.url.split(b"?", 1)[0]
        if path == b"/healthz":
            return HEALTHY
        if self.key is not None and self.auth != b"Bearer " + self.key:
            return UNAUTHORIZED
        if path == b"/v1/chat/completions":
            try:
                request = json.loads(b"".join(self.body))
            except ValueError:
                return BAD_REQUEST
            model = str(request.get("model") or MODEL)
            if request.get("stream"):
                options = request.get("stream_options") or {}
                return stream(model, bool(options.get("include_usage")))
            return completion(model)
        if path == b"/v1/models":
            return MODELS
        return NOT_FOUND


async def serve(host: str, port: int, key: str | None) -> None:
    loop = asyncio.get_running_loop()
    secret = key.encode() if key else None
    server = await loop.create_server(lambda: MockProtocol(secret), host, port, backlog=1024)
    print(f"mock upstream on http://{host}:{port}/v1", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", default=None, help="require this bearer key")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # plain asyncio is slower but answers the same
        asyncio.run(serve(args.host, args.port, args.key))
    else:
        uvloop.run(serve(args.host, args.port, args.key))


if __name__ == "__main__":
    main()
