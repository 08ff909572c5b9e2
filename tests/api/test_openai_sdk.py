"""The real `openai` SDK against a real `danlu serve` on loopback."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import openai
import pytest

from tests.support.server import RunningServer

CHAT = "smollm2-135m-instruct"
EMBED = "multilingual-e5-small"


@pytest.fixture
def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.api, api_key=server.admin_key, max_retries=0)


def test_models_lists_embedded_and_upstream_models(client: openai.OpenAI) -> None:
    models = {m.id: m for m in client.models.list()}
    assert {CHAT, EMBED, "fake-chat", "relay-smollm2"} <= set(models)
    assert models[CHAT].owned_by == "danlu"
    assert models[CHAT].object == "model"
    assert client.models.retrieve(EMBED).id == EMBED


def test_chat_not_streamed(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=8,
        temperature=0,
    )
    assert answer.id.startswith("chatcmpl-")
    assert answer.object == "chat.completion"
    assert answer.model == CHAT
    choice = answer.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason in {"stop", "length"}
    assert answer.usage is not None
    assert answer.usage.prompt_tokens > 5
    assert 0 < answer.usage.completion_tokens <= 8
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens


def test_seeded_answers_are_reproducible(client: openai.OpenAI) -> None:
    def ask(seed: int) -> str | None:
        return (
            client.chat.completions.create(
                model=CHAT,
                messages=[{"role": "user", "content": "Name a colour."}],
                max_tokens=10,
                temperature=0.8,
                seed=seed,
            )
            .choices[0]
            .message.content
        )

    assert ask(7) == ask(7)
    assert len({ask(seed) for seed in range(1, 6)}) > 1


def test_chat_streamed_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Tell me about the sea."}],
        max_tokens=12,
        temperature=0,
        seed=1,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    ids = {chunk.id for chunk in chunks}
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl-")
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    choice_chunks = [c for c in chunks if c.choices]
    assert choice_chunks[-1].choices[0].finish_reason == "length"
    assert all(c.choices[0].finish_reason is None for c in choice_chunks[:-1])
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None and usage_chunk.usage.completion_tokens == 12
    assert all(c.usage is None for c in chunks[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in choice_chunks)
    again = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Tell me about the sea."}],
        max_tokens=12,
        temperature=0,
        seed=1,
    )
    assert text == again.choices[0].message.content


def test_stream_without_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=CHAT,
            messages=[{"role": "user", "content": "Hi"}],
            max_tokens=4,
            stream=True,
        )
    )
    assert all(chunk.choices for chunk in chunks)
    assert all(getattr(chunk, "usage", None) is None for chunk in chunks)


def test_wire_format_is_exactly_openai_sse(server: RunningServer) -> None:
    body = {
        "model": CHAT,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 5,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.stream(
        "POST",
        f"{server.api}/chat/completions",
        json=body,
        timeout=60,
        headers={"Authorization": f"Bearer {server.admin_key}"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    payloads = [json.loads(event[len("data: ") :]) for event in events[:-2]]
    assert all(event.startswith("data: ") for event in events[:-1])
    assert payloads[-1]["choices"] == [] and payloads[-1]["usage"]["completion_tokens"] == 5
    assert payloads[-2]["choices"][0]["finish_reason"] == "length"
    assert all("usage" in p and p["usage"] is None for p in payloads[:-1])


def test_stop_sequence_ends_the_answer(client: openai.OpenAI) -> None:
    free = (
        client.chat.completions.create(
            model=CHAT,
            messages=[{"role": "user", "content": "Count from 1 to 10, separated by commas."}],
            max_tokens=30,
            temperature=0,
            seed=1,
        )
        .choices[0]
        .message.content
        or ""
    )
    assert "," in free, free
    stopped = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Count from 1 to 10, separated by commas."}],
        max_tokens=30,
        temperature=0,
        seed=1,
        stop=[","],
    ).choices[0]
    assert stopped.finish_reason == "stop"
    assert stopped.message.content == free.split(",")[0]


def test_json_mode_returns_parseable_json(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Give a name and an age as JSON."}],
        max_tokens=60,
        temperature=0,
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "person",
                "schema": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                    "required": ["name", "age"],
                },
            },
        },
    )
    data = json.loads(answer.choices[0].message.content or "")
    assert isinstance(data["name"], str) and isinstance(data["age"], int)


def test_text_completion_streamed_and_not(client: openai.OpenAI) -> None:
    whole = client.completions.create(
        model=CHAT, prompt="The capital of France is", max_tokens=6, temperature=0, seed=3
    )
    assert whole.object == "text_completion"
    assert whole.usage is not None and whole.usage.completion_tokens <= 6
    streamed = list(
        client.completions.create(
            model=CHAT,
            prompt="The capital of France is",
            max_tokens=6,
            temperature=0,
            seed=3,
            stream=True,
        )
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == whole.choices[0].text


def test_embeddings_float_and_base64_agree(client: openai.OpenAI) -> None:
    texts = ["怎么申请退款", "How do I get a refund?", "今天天气很好"]
    floats = client.embeddings.create(model=EMBED, input=texts, encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1, 2]
    vectors = np.array([d.embedding for d in floats.data])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    # Cross-lingual: the two refund questions are closer than refund vs weather.
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert floats.usage.prompt_tokens > 0

    # The SDK hands back base64 untouched when asked for it explicitly.
    raw = httpx.post(
        f"{client.base_url}embeddings",
        timeout=60,
        headers={"Authorization": f"Bearer {client.api_key}"},
        json={"model": EMBED, "input": texts, "encoding_format": "base64"},
    ).json()
    decoded = np.array(
        [np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in raw["data"]]
    )
    assert np.allclose(decoded, vectors, atol=1e-6)
    sdk_b64 = client.embeddings.create(model=EMBED, input=texts, encoding_format="base64")
    assert [d.embedding for d in sdk_b64.data] == [d["embedding"] for d in raw["data"]]


def test_concurrent_requests_all_complete(server: RunningServer) -> None:
    import asyncio

    async def run() -> list[str | None]:
        async with openai.AsyncOpenAI(base_url=server.api, api_key=server.admin_key) as aclient:
            calls = [
                aclient.chat.completions.create(
                    model=CHAT,
                    messages=[{"role": "user", "content": f"Say {i}"}],
                    max_tokens=6,
                )
                for i in range(6)
            ]
            answers = await asyncio.gather(*calls)
        return [a.choices[0].finish_reason for a in answers]

    assert all(reason in {"stop", "length"} for reason in asyncio.run(run()))
