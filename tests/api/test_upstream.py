"""openai_compatible: a second danlu and a fake provider (a real HTTP server) as upstreams."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.support.fake_upstream import FakeUpstream
from tests.support.server import RunningServer


@pytest.fixture
def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.api, api_key=server.admin_key, max_retries=0)


def test_relay_through_a_second_danlu(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="relay-smollm2",
        messages=[{"role": "user", "content": "Hello"}],
        max_tokens=5,
        seed=4,
        temperature=0,
    )
    assert answer.model == "relay-smollm2"
    assert answer.usage is not None
    assert answer.usage.completion_tokens <= 5
    direct = client.chat.completions.create(
        model="smollm2-135m-instruct",
        messages=[{"role": "user", "content": "Hello"}],
        max_tokens=5,
        seed=4,
        temperature=0,
    )
    assert answer.choices[0].message.content == direct.choices[0].message.content

    chunks = list(
        client.chat.completions.create(
            model="relay-smollm2",
            messages=[{"role": "user", "content": "Hello"}],
            max_tokens=5,
            seed=4,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert len({c.id for c in chunks}) == 1
    assert all(c.model == "relay-smollm2" for c in chunks)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == direct.choices[0].message.content
    )


def test_relay_embeddings(client: openai.OpenAI) -> None:
    relayed = client.embeddings.create(model="relay-e5", input=["你好世界"])
    local = client.embeddings.create(model="multilingual-e5-small", input=["你好世界"])
    assert relayed.data[0].embedding == pytest.approx(local.data[0].embedding, abs=1e-6)


def test_non_standard_fields_pass_both_ways(
    client: openai.OpenAI, fake_upstream: FakeUpstream
) -> None:
    answer = client.chat.completions.create(
        model="fake-reasoner",
        messages=[{"role": "user", "content": "6*7?"}],
        extra_body={"enable_thinking": True, "top_k": 5},
    )
    sent = fake_upstream.requests[-1]
    assert sent["enable_thinking"] is True and sent["top_k"] == 5
    assert sent["model"] == "fake-reasoner"
    assert fake_upstream.auth_headers[-1] == "Bearer upstream-secret"
    message = answer.choices[0].message
    assert message.content == "42"
    assert getattr(message, "reasoning_content", None) == "Let me think. Done."

    chunks = list(
        client.chat.completions.create(
            model="fake-reasoner",
            messages=[{"role": "user", "content": "6*7?"}],
            stream=True,
        )
    )
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices
    )
    assert reasoning == "Let me think. Done."
    assert fake_upstream.requests[-1]["stream_options"] == {"include_usage": True}  # metering
    assert all(c.usage is None for c in chunks)  # the client did not ask for usage


def test_tool_call_deltas_keep_their_index(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="fake-tools",
            messages=[{"role": "user", "content": "weather?"}],
            stream=True,
            tools=[
                {
                    "type": "function",
                    "function": {"name": "get_weather", "parameters": {"type": "object"}},
                }
            ],
        )
    )
    calls = [call for c in chunks if c.choices for call in (c.choices[0].delta.tool_calls or [])]
    assert [call.index for call in calls] == [0, 0, 1]
    assert calls[1].function is not None and calls[1].function.arguments == '{"city": "杭州"}'
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["tool_calls"]


def test_upstream_errors_are_relayed_cleanly(server: RunningServer, client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model="fake-400", messages=[{"role": "user", "content": "x"}]
        )
    assert "temperature too hot" in str(bad.value)
    assert bad.value.body["param"] == "temperature"  # type: ignore[index]
    with pytest.raises(openai.APIStatusError) as broken:
        client.chat.completions.create(
            model="fake-500", messages=[{"role": "user", "content": "x"}]
        )
    assert broken.value.status_code == 502
    assert "upstream exploded" in str(broken.value)
    # Streamed: the failure arrives before any byte of the stream, as a real status.
    response = httpx.post(
        f"{server.api}/chat/completions",
        timeout=30,
        headers={"Authorization": f"Bearer {server.admin_key}"},
        json={"model": "fake-500", "stream": True, "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "upstream_error"


def test_stream_cut_mid_way_ends_with_an_error_event(server: RunningServer) -> None:
    response = httpx.post(
        f"{server.api}/chat/completions",
        timeout=30,
        headers={"Authorization": f"Bearer {server.admin_key}"},
        json={"model": "fake-cut", "stream": True, "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 200
    events = [e for e in response.text.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    # The client must not take a cut answer for a whole one: an error event says so.
    assert '"finish_reason":"stop"' not in response.text
    assert "upstream_error" in events[-2] and "closed the stream" in events[-2]
    assert server.health()["status"] == "ok"


def test_upstream_embeddings(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="fake-embed", input=["ab", "abcd"])
    assert [d.embedding for d in result.data] == [[2.0, 1.0, 0.5], [4.0, 1.0, 0.5]]
    assert result.usage.prompt_tokens == 7
