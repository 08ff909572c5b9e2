"""Bad input: the right 4xx in OpenAI's error shape, never a 500, and the server keeps serving."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from danlu.core.keys import AUTH_CACHE_SECONDS
from tests.support.server import RunningServer

CHAT = "smollm2-135m-instruct"


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.api, timeout=60, headers={"Authorization": f"Bearer {server.admin_key}"}
    ) as client:
        yield client


def assert_error(
    response: httpx.Response, status: int, *, param: str | None = None, says: str = ""
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and len(error["message"]) > 10
    if param is not None:
        assert error["param"] == param, error
    assert says.lower() in error["message"].lower(), error["message"]
    return dict(error)


def chat(**overrides: Any) -> dict[str, Any]:
    return {
        "model": CHAT,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 2,
        **overrides,
    }


def test_malformed_json(http: httpx.Client) -> None:
    response = http.post(
        "/chat/completions",
        content=b'{"model": "x", "messages": [',
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 400, says="not valid JSON")


def test_body_that_is_not_an_object(http: httpx.Client) -> None:
    assert_error(http.post("/chat/completions", json=[1, 2]), 400)


def test_missing_body(http: httpx.Client) -> None:
    assert_error(http.post("/chat/completions"), 400, says="JSON body")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (chat(temperature="hot"), "temperature"),
        (chat(temperature=7), "temperature"),
        (chat(max_tokens=-1), "max_tokens"),
        (chat(messages="hello"), "messages"),
        (chat(messages=[{"role": "wizard", "content": "hi"}]), "messages.0.role"),
        (chat(messages=[{"role": "user"}]), "messages.0"),
        (chat(stop=["a", "b", "c", "d", "e"]), "stop"),
        (chat(model=5), "model"),
        (chat(n=100), "n"),
    ],
)
def test_wrong_types_and_values(http: httpx.Client, body: dict[str, Any], param: str) -> None:
    assert_error(http.post("/chat/completions", json=body), 400, param=param)


def test_empty_messages(http: httpx.Client) -> None:
    assert_error(http.post("/chat/completions", json=chat(messages=[])), 400, param="messages")


def test_missing_model(http: httpx.Client) -> None:
    assert_error(
        http.post("/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}),
        400,
        param="model",
    )


def test_unknown_model_names_the_served_ones(http: httpx.Client) -> None:
    error = assert_error(
        http.post("/chat/completions", json=chat(model="gpt-9")),
        404,
        param="model",
        says="does not exist",
    )
    assert error["code"] == "model_not_found"
    assert CHAT in error["message"]
    assert_error(http.get("/models/gpt-9"), 404)


def test_embedding_model_cannot_chat(http: httpx.Client) -> None:
    assert_error(
        http.post("/chat/completions", json=chat(model="multilingual-e5-small")),
        422,
        says="embedding model",
    )
    assert_error(
        http.post("/embeddings", json={"model": CHAT, "input": "x"}), 422, says="chat model"
    )


def test_unsupported_options_are_refused_not_ignored(http: httpx.Client) -> None:
    legacy = {"model": CHAT, "prompt": "hi", "max_tokens": 2, "logprobs": 2}
    assert_error(http.post("/completions", json=legacy), 422, param="logprobs")
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert_error(http.post("/chat/completions", json=chat(tools=tools)), 422, param="tools")
    assert_error(http.post("/chat/completions", json=chat(frobnicate=1)), 422, param="frobnicate")
    image = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    assert_error(
        http.post("/chat/completions", json=chat(messages=[{"role": "user", "content": image}])),
        422,
        says="text only",
    )


def test_prompt_longer_than_the_context(http: httpx.Client) -> None:
    long_text = "word " * 3000
    error = assert_error(
        http.post(
            "/chat/completions", json=chat(messages=[{"role": "user", "content": long_text}])
        ),
        400,
        says="context",
    )
    assert error["code"] == "context_length_exceeded"
    assert_error(
        http.post("/chat/completions", json=chat(max_tokens=100_000)), 400, says="max_tokens"
    )


def test_bad_embedding_inputs(http: httpx.Client) -> None:
    model = "multilingual-e5-small"
    assert_error(http.post("/embeddings", json={"model": model, "input": []}), 400, param="input")
    assert_error(
        http.post("/embeddings", json={"model": model, "input": ["ok", ""]}), 400, param="input"
    )
    assert_error(
        http.post("/embeddings", json={"model": model, "input": [1, 2, 3]}), 400, param="input"
    )
    assert_error(
        http.post("/embeddings", json={"model": model, "input": "x", "encoding_format": "hex"}),
        400,
        param="encoding_format",
    )
    assert_error(
        http.post("/embeddings", json={"model": model, "input": "x", "dimensions": 8}),
        400,
        param="dimensions",
    )


def test_body_over_the_limit_is_refused(http: httpx.Client) -> None:
    huge = chat(messages=[{"role": "user", "content": "x" * 300_000}])
    assert_error(http.post("/chat/completions", json=huge), 413, says="larger than")


def test_streamed_body_over_the_limit_is_refused(http: httpx.Client) -> None:
    def body() -> Iterator[bytes]:  # no Content-Length: the server must count
        yield b'{"model": "x", "messages": [{"role": "user", "content": "'
        for _ in range(40):
            yield b"y" * 10_000
        yield b'"}]}'

    response = http.post(
        "/chat/completions", content=body(), headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413)


def test_unknown_route_and_method(http: httpx.Client) -> None:
    assert_error(http.get("/no/such/thing"), 404, says="no route")
    assert_error(http.get("/chat/completions"), 405)


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_api_key"),
        ("Bearer", "invalid_api_key"),
        ("Basic dXNlcjpwYXNz", "invalid_api_key"),
        ("Bearer sk-danlu-not-a-real-key", "invalid_api_key"),
        ("Bearer sk-openai-style-key", "invalid_api_key"),
    ],
)
def test_missing_or_invalid_key(server: RunningServer, header: str | None, code: str) -> None:
    headers = {"Authorization": header} if header else {}
    response = httpx.post(
        f"{server.api}/chat/completions", json=chat(), headers=headers, timeout=30
    )
    error = assert_error(response, 401)
    assert error["code"] == code
    assert response.headers["www-authenticate"] == "Bearer"


def test_revoked_key(server: RunningServer) -> None:
    key = server.create_key("to-revoke")
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{server.api}/models", headers=headers, timeout=30).status_code == 200
    key_id = next(
        k["id"]
        for k in httpx.get(f"{server.api}/keys", headers=headers, timeout=30).json()["data"]
        if k["name"] == "to-revoke"
    )
    server.cli("keys", "revoke", key_id)
    # Revoked in another process (the CLI): the server's few-second cache of recently
    # authenticated keys bounds how long it may still pass.
    deadline = time.monotonic() + AUTH_CACHE_SECONDS + 2
    while (
        response := httpx.get(f"{server.api}/models", headers=headers, timeout=30)
    ).status_code == 200:
        assert time.monotonic() < deadline, "a revoked key kept working"
        time.sleep(0.2)
    error = assert_error(response, 401, says="revoked")
    assert error["code"] == "revoked_api_key"


def test_a_key_revoked_through_the_api_stops_at_once(server: RunningServer) -> None:
    key = server.create_key("to-revoke-now")
    headers = {"Authorization": f"Bearer {key}"}
    listed = httpx.get(f"{server.api}/keys", headers=headers, timeout=30).json()["data"]
    key_id = next(k["id"] for k in listed if k["name"] == "to-revoke-now")
    assert httpx.delete(f"{server.api}/keys/{key_id}", headers=headers, timeout=30).status_code in (
        200,
        204,
    )
    assert_error(
        httpx.get(f"{server.api}/models", headers=headers, timeout=30), 401, says="revoked"
    )


def test_expired_key(server: RunningServer) -> None:
    created = httpx.post(
        f"{server.api}/keys",
        timeout=30,
        headers={"Authorization": f"Bearer {server.admin_key}"},
        json={
            "name": "short-lived",
            "expires_at": (datetime.now(UTC) + timedelta(seconds=2)).isoformat(),
        },
    )
    assert created.status_code == 201, created.text
    headers = {"Authorization": f"Bearer {created.json()['key']}"}
    assert httpx.get(f"{server.api}/models", headers=headers, timeout=30).status_code == 200
    import time

    time.sleep(2.5)
    error = assert_error(
        httpx.get(f"{server.api}/models", headers=headers, timeout=30), 401, says="expired"
    )
    assert error["code"] == "expired_api_key"


def test_key_without_the_scope_gets_403(server: RunningServer) -> None:
    key = server.create_key("hub-only", "--scope", "hub:read")
    response = httpx.post(
        f"{server.api}/chat/completions",
        json=chat(),
        timeout=30,
        headers={"Authorization": f"Bearer {key}"},
    )
    error = assert_error(response, 403, says="inference")
    assert error["code"] == "insufficient_scope"


def test_server_keeps_serving_after_bad_input(server: RunningServer, http: httpx.Client) -> None:
    for _ in range(3):
        http.post("/chat/completions", content=b"{{{", headers={"Content-Type": "application/json"})
        http.post("/chat/completions", json=chat(model="nope"))
    assert server.health()["status"] == "ok"
    answer = http.post("/chat/completions", json=chat())
    assert answer.status_code == 200
    assert "server_error" not in server.log()


def test_every_response_carries_a_request_id(server: RunningServer) -> None:
    plain = httpx.get(f"{server.url}/healthz", timeout=10)
    assert plain.headers["x-request-id"].startswith("req_")
    echoed = httpx.get(f"{server.api}/models", headers={"X-Request-Id": "trace-42"}, timeout=10)
    assert echoed.status_code == 401 and echoed.headers["x-request-id"] == "trace-42"
    hostile = httpx.get(
        f"{server.url}/healthz", headers={"X-Request-Id": "a\tb<script>"}, timeout=10
    )
    assert hostile.headers["x-request-id"].startswith("req_")
