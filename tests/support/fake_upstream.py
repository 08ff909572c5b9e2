"""A real HTTP server standing in for an outside OpenAI-compatible provider.

Only providers we do not own may be faked, and then as a real server: this one
speaks the wire format over loopback, records what it received, and behaves by
model name so tests can script reasoning fields, tool calls and failures.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET = "upstream-secret"
CHAT_MODELS = [
    "fake-chat",
    "fake-reasoner",
    "fake-tools",
    "fake-500",
    "fake-400",
    "fake-cut",
    "fake-qa",
]
EMBED_MODEL = "fake-embed"
RERANK_MODEL = "fake-rerank"


def overlap_score(query: str, document: str) -> float:
    """The fake reranker's relevance: the share of the query's words found in the document."""
    words = set(query.lower().split())
    return len(words & set(document.lower().split())) / max(1, len(words))


def _chunk(model: str, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": "up-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": choices,
        **extra,
    }


def _question_pairs(body: dict[str, Any]) -> str:
    """fake-qa's answer to a QA-generation prompt: one pair per sentence of the passage."""
    prompt = str(body["messages"][-1]["content"])
    passage = prompt.rsplit("Passage:", 1)[-1].strip()
    sentences = [s.strip() for s in passage.replace("。", "。\n").splitlines() if s.strip()]
    return "\n".join(f"Q: 关于“{s[:8]}”说了什么？\nA: {s}" for s in sentences)


def _script(model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The deltas each fake model streams."""
    if model == "fake-qa":
        return [{"role": "assistant", "content": _question_pairs(body)}]
    if model == "fake-reasoner":
        return [
            {"role": "assistant", "reasoning_content": "Let me think. "},
            {"reasoning_content": "Done."},
            {"content": "42"},
        ]
    if model == "fake-tools":
        return [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ],
            },
            {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "杭州"}'}}]},
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": "{}"},
                    }
                ]
            },
        ]
    return [
        {"role": "assistant", "content": ""},
        {"content": "Hello"},
        {"content": " from upstream"},
    ]


class FakeUpstream:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.auth_headers: list[str | None] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    ids = [*CHAT_MODELS, EMBED_MODEL, RERANK_MODEL]
                    self._json(
                        200, {"object": "list", "data": [{"id": i, "object": "model"} for i in ids]}
                    )
                else:
                    self._json(404, {"error": {"message": "no such route"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                upstream.requests.append(body)
                upstream.auth_headers.append(self.headers.get("Authorization"))
                if self.headers.get("Authorization") != f"Bearer {SECRET}":
                    self._json(401, {"error": {"message": "bad upstream key"}})
                    return
                if self.path == "/v1/embeddings":
                    inputs = body["input"]
                    data = [
                        {
                            "object": "embedding",
                            "index": i,
                            "embedding": [float(len(text)), 1.0, 0.5],
                        }
                        for i, text in enumerate(inputs)
                    ]
                    self._json(
                        200,
                        {
                            "object": "list",
                            "data": data,
                            "model": body["model"],
                            "usage": {"prompt_tokens": 7, "total_tokens": 7},
                        },
                    )
                    return
                model = body.get("model")
                if model == "fake-500":
                    self._json(500, {"error": {"message": "upstream exploded"}})
                    return
                if model == "fake-400":
                    self._json(
                        400,
                        {
                            "error": {
                                "message": "temperature too hot",
                                "param": "temperature",
                                "code": "bad_temperature",
                            }
                        },
                    )
                    return
                if self.path == "/v1/rerank":
                    self._rerank(body)
                    return
                if body.get("stream"):
                    self._stream(model, body)
                else:
                    self._whole(model, body)

            def _rerank(self, body: dict[str, Any]) -> None:
                documents = body["documents"]
                scored = sorted(
                    (
                        {"index": i, "relevance_score": overlap_score(body["query"], text)}
                        for i, text in enumerate(documents)
                    ),
                    key=lambda item: -item["relevance_score"],
                )
                if body.get("top_n"):
                    scored = scored[: body["top_n"]]
                words = len(body["query"].split()) + sum(len(d.split()) for d in documents)
                self._json(
                    200,
                    {
                        "id": "rerank-1",
                        "model": body["model"],
                        "results": scored,
                        "usage": {"total_tokens": words},
                    },
                )

            def _whole(self, model: str, body: dict[str, Any]) -> None:
                message: dict[str, Any] = {"role": "assistant", "content": ""}
                for delta in _script(model, body):
                    for key, value in delta.items():
                        if key == "tool_calls":
                            message.setdefault("tool_calls", []).extend(value)
                        elif isinstance(value, str) and key != "role":
                            message[key] = message.get(key, "") + value
                self._json(
                    200,
                    {
                        "id": "up-1",
                        "object": "chat.completion",
                        "created": 1,
                        "model": model,
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
                        "service_tier": "upstream-extra",
                    },
                )

            def _stream(self, model: str, body: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                script = _script(model, body)
                for position, delta in enumerate(script):
                    chunk = _chunk(model, [{"index": 0, "delta": delta, "finish_reason": None}])
                    self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                    self.wfile.flush()
                    if model == "fake-cut" and position == 1:
                        self.close_connection = True
                        return  # cut mid-stream: no finish, no [DONE]
                finish = "tool_calls" if model == "fake-tools" else "stop"
                last = _chunk(model, [{"index": 0, "delta": {}, "finish_reason": finish}])
                self.wfile.write(b"data: " + json.dumps(last).encode() + b"\n\n")
                if (body.get("stream_options") or {}).get("include_usage"):
                    usage = _chunk(
                        model,
                        [],
                        usage={"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
                    )
                    self.wfile.write(b"data: " + json.dumps(usage).encode() + b"\n\n")
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeUpstream:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
