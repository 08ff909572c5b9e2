"""A real OpenAI-compatible server on loopback whose next answers a test scripts.

Routing tests need upstreams that fail on cue: N errors then success, a 429 with
Retry-After, a hang before the first byte, a stream cut after its first chunk, a
health probe that fails. Each instance is one upstream; every answer names it
("Hello from a"), so a test can tell which deployment served. Unscripted calls
succeed.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Step:
    """How the upstream answers one POST."""

    kind: str = "ok"  # ok | error | hang | cut | slow
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @staticmethod
    def error(status: int, **headers: str) -> Step:
        """Answer ``status`` (headers with ``_`` for ``-``: ``retry_after="1"``)."""
        named = {name.replace("_", "-"): value for name, value in headers.items()}
        return Step("error", status, named)

    @staticmethod
    def hang(seconds: float) -> Step:
        """Send nothing for ``seconds`` (or until the server stops), then answer."""
        return Step("hang", seconds=seconds)

    @staticmethod
    def cut() -> Step:
        """Stream the first chunk, then close the connection without finishing."""
        return Step("cut")

    @staticmethod
    def slow(seconds: float) -> Step:
        """Stream the first chunk, wait ``seconds``, then finish normally."""
        return Step("slow", seconds=seconds)


class ScriptedUpstream:
    def __init__(self, name: str):
        self.name = name
        self.calls = 0  # POSTs received
        self.probes = 0  # GET /models received
        self.models_status = 200  # what GET /models answers
        self._script: deque[Step] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle's algorithm the second
            # waits for a delayed ACK, 40 ms per call.
            disable_nagle_algorithm = True

            def log_message(self, *_: Any) -> None:
                pass

            def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                with upstream._lock:
                    upstream.probes += 1
                    status = upstream.models_status
                if status != 200:
                    self._json(status, {"error": {"message": f"{upstream.name} is down"}})
                    return
                data = [{"id": "m", "object": "model"}]
                self._json(200, {"object": "list", "data": data})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                step = upstream._next()
                # The client may have given up (a timeout under test).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._answer(step, body)

            def _answer(self, step: Step, body: dict[str, Any]) -> None:
                if step.kind == "hang":
                    upstream._stopping.wait(step.seconds)
                elif step.kind == "error":
                    message = {"message": f"{upstream.name} failed with {step.status}"}
                    self._json(step.status, {"error": message}, step.headers)
                    return
                if self.path == "/v1/embeddings":
                    vectors = [
                        {"object": "embedding", "index": i, "embedding": [1.0, 0.5]}
                        for i, _ in enumerate(body["input"])
                    ]
                    usage = {"prompt_tokens": 2, "total_tokens": 2}
                    self._json(200, {"object": "list", "data": vectors, "usage": usage})
                elif self.path == "/v1/rerank":
                    results = [
                        {"index": i, "relevance_score": 1.0 / (i + 1)}
                        for i, _ in enumerate(body["documents"])
                    ]
                    self._json(200, {"results": results, "usage": {"total_tokens": 3}})
                elif body.get("stream"):
                    self._stream(step)
                else:
                    message = {"role": "assistant", "content": f"Hello from {upstream.name}"}
                    choice = {"index": 0, "message": message, "finish_reason": "stop"}
                    usage = {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}
                    self._json(200, {"choices": [choice], "usage": usage})

            def _event(self, payload: Any) -> None:
                self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
                self.wfile.flush()

            def _stream(self, step: Step) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                delta = {"role": "assistant", "content": "Hello"}
                self._event({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
                if step.kind == "cut":
                    return  # no finish_reason, no [DONE]: the answer is cut short
                if step.kind == "slow":
                    upstream._stopping.wait(step.seconds)
                delta = {"content": f" from {upstream.name}"}
                self._event({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
                self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                usage = {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}
                self._event({"choices": [], "usage": usage})
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hung up mid-answer is expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def push(self, *steps: Step) -> ScriptedUpstream:
        """Answer the next POSTs with ``steps``, in order; then succeed again."""
        with self._lock:
            self._script.extend(steps)
        return self

    def fail(self, times: int, status: int = 500) -> ScriptedUpstream:
        return self.push(*[Step.error(status)] * times)

    def _next(self) -> Step:
        with self._lock:
            self.calls += 1
            return self._script.popleft() if self._script else Step()

    def __enter__(self) -> ScriptedUpstream:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stopping.set()  # wake hanging answers
        self.server.shutdown()
        self.server.server_close()
