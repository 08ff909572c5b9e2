"""Routes: weights, priorities, retries, fallbacks, cooldowns, timeouts, health checks.

Every deployment is an ``openai_compatible`` provider in front of a real HTTP server on
loopback (tests/support/scripted_upstream.py) that fails on cue; the registry is the
real one, built from a providers file as ``danlu serve`` builds it.
"""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from danlu.core.errors import ConfigError, Conflict, ModelNotFound, UpstreamError, UpstreamTimeout
from danlu.core.plugins import plugin_manager
from danlu.core.settings import load_settings
from danlu.gateway.provider import CallContext, ChatModel
from danlu.gateway.registry import ModelRegistry, ProviderConfig, read_routes_file
from danlu.gateway.routing import RouteConfig
from danlu.gateway.schemas import ChatCompletionRequest, EmbeddingRequest
from tests.support.scripted_upstream import ScriptedUpstream, Step
from tests.support.server import free_port, start_server

Upstreams = Callable[..., list[ScriptedUpstream]]


@pytest.fixture
def upstreams() -> Iterator[Upstreams]:
    """``upstreams("a", "b")``: started scripted upstreams, stopped after the test."""
    with ExitStack() as stack:

        def make(*names: str) -> list[ScriptedUpstream]:
            return [stack.enter_context(ScriptedUpstream(name)) for name in names]

        yield make


def _providers(*servers: ScriptedUpstream) -> str:
    """One provider per upstream, serving ``{name}-chat``, ``-embed`` and ``-rerank``."""
    blocks = []
    for up in servers:
        blocks.append(f"""
            [[providers]]
            name = "up-{up.name}"
            type = "openai_compatible"
            base_url = "{up.base_url}"
            models = [{{ name = "{up.name}-chat", upstream = "m" }},
                      {{ name = "{up.name}-embed", upstream = "e", kind = "embedding" }},
                      {{ name = "{up.name}-rerank", upstream = "r", kind = "rerank" }}]
            """)
    return textwrap.dedent("".join(blocks))


@asynccontextmanager
async def registry(
    tmp_path: Path, servers: list[ScriptedUpstream], routes: str
) -> AsyncIterator[ModelRegistry]:
    """The real registry from a providers file, as `danlu serve` builds it."""
    path = tmp_path / "providers.toml"
    path.write_text(_providers(*servers) + textwrap.dedent(routes))
    settings = load_settings(
        {
            "DANLU_HOME": str(tmp_path),
            "DANLU_EMBEDDED_MODELS": "0",
            "DANLU_PROVIDERS_FILE": str(path),
        }
    )
    models = ModelRegistry.from_plugins(plugin_manager(load_entry_points=False), settings)
    await models.start()
    try:
        yield models
    finally:
        await models.aclose()


def _chat(stream: bool = False, **extra: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        model="r", messages=[{"role": "user", "content": "hi"}], stream=stream, **extra
    )


async def _ask(models: ModelRegistry, name: str = "r") -> tuple[str, list[str]]:
    """A non-streamed chat through ``name``: the answer and the deployments tried."""
    ctx = CallContext(owner="t")
    answer = await models.chat(name).chat(_chat(), ctx)
    return answer["choices"][0]["message"]["content"], ctx.deployments


async def _stream(models: ModelRegistry, name: str = "r") -> tuple[str, list[str]]:
    ctx = CallContext(owner="t")
    text = ""
    async for chunk in models.chat(name).stream_chat(_chat(stream=True), ctx):
        for choice in chunk.get("choices", []):
            text += choice["delta"].get("content") or ""
    return text, ctx.deployments


def _stats(models: ModelRegistry, name: str = "r") -> dict[str, Any]:
    deployments: dict[str, Any] = models.get(name).stats()["deployments"]
    return deployments


def test_weights_spread_calls_in_proportion(tmp_path: Path, upstreams: Upstreams) -> None:
    a, b = upstreams("a", "b")
    routes = """
        [[routes]]
        name = "r"
        deployments = [{ model = "a-chat", weight = 3 }, "b-chat"]
    """

    async def main() -> None:
        async with registry(tmp_path, [a, b], routes) as models:
            for _ in range(200):
                await _ask(models)

    asyncio.run(main())
    assert a.calls + b.calls == 200
    assert 0.6 < a.calls / 200 < 0.9  # 0.75 expected; ±5 standard deviations


def test_lower_priority_serves_and_higher_is_the_standby(
    tmp_path: Path, upstreams: Upstreams
) -> None:
    a, b = upstreams("a", "b")
    routes = """
        [[routes]]
        name = "r"
        deployments = [{ model = "b-chat", priority = 1 }, { model = "a-chat", priority = 0 }]
        backoff = 0.01
    """

    async def main() -> None:
        async with registry(tmp_path, [a, b], routes) as models:
            for _ in range(10):
                assert await _ask(models) == ("Hello from a", ["a-chat"])
            assert b.calls == 0
            # The primary fails: the standby serves the same call, without waiting on it.
            a.fail(1)
            assert await _ask(models) == ("Hello from b", ["a-chat", "b-chat"])

    asyncio.run(main())


def test_retries_then_succeeds_with_backoff(tmp_path: Path, upstreams: Upstreams) -> None:
    (a,) = upstreams("a")
    routes = """
        [[routes]]
        name = "r"
        deployments = ["a-chat"]
        retries = 2
        backoff = 0.1
    """

    async def main() -> None:
        async with registry(tmp_path, [a], routes) as models:
            a.fail(1, status=503).fail(1, status=429)
            started = time.monotonic()
            text, tried = await _ask(models)
            assert (text, tried) == ("Hello from a", ["a-chat"] * 3)
            # Two waits, of 0.05-0.1 s and 0.1-0.2 s.
            assert time.monotonic() - started >= 0.14
            # Three failures is more than two retries: the caller gets the last one.
            a.fail(3, status=502)
            with pytest.raises(UpstreamError, match="every attempt failed") as failure:
                await _ask(models)
            assert failure.value.status == 502

    asyncio.run(main())


def test_a_bad_request_is_not_retried(tmp_path: Path, upstreams: Upstreams) -> None:
    a, b, c = upstreams("a", "b", "c")
    routes = """
        [[routes]]
        name = "r"
        deployments = ["a-chat", "b-chat"]
        fallbacks = ["c-chat"]
    """

    async def main() -> None:
        async with registry(tmp_path, [a, b, c], routes) as models:
            a.fail(1, status=400)
            b.fail(1, status=400)
            with pytest.raises(UpstreamError, match="failed with 400") as failure:
                await _ask(models)
            assert failure.value.status == 400
            assert a.calls + b.calls == 1 and c.calls == 0
            # Not the deployment's fault: it does not count towards a cooldown.
            assert all(s["failures"] == 0 for s in _stats(models).values())

    asyncio.run(main())


def test_a_stream_is_retried_before_its_first_chunk_only(
    tmp_path: Path, upstreams: Upstreams
) -> None:
    a, b = upstreams("a", "b")
    routes = """
        [[routes]]
        name = "r"
        deployments = ["a-chat", { model = "b-chat", priority = 1 }]
        backoff = 0.01
    """

    async def main() -> None:
        async with registry(tmp_path, [a, b], routes) as models:
            a.fail(1)
            assert await _stream(models) == ("Hello from b", ["a-chat", "b-chat"])
            # Cut after the first chunk: the client already holds "Hello", so the failure
            # is passed on rather than spliced with another deployment's answer.
            a.push(Step.cut())
            calls_to_b = b.calls
            ctx = CallContext(owner="t")
            received = []
            with pytest.raises(UpstreamError, match="closed the stream"):
                async for chunk in models.chat("r").stream_chat(_chat(stream=True), ctx):
                    received.append(chunk)
            assert [c["choices"][0]["delta"]["content"] for c in received] == ["Hello"]
            assert b.calls == calls_to_b and ctx.deployments == ["a-chat"]
            assert _stats(models)["a-chat"]["failures"] == 2  # the 500, then the cut

    asyncio.run(main())


def test_fallbacks_to_other_models_and_routes(tmp_path: Path, upstreams: Upstreams) -> None:
    a, b, c = upstreams("a", "b", "c")
    routes = """
        [[routes]]
        name = "r"
        deployments = ["a-chat"]
        retries = 1
        backoff = 0.01
        fallbacks = ["other", "c-chat"]

        [[routes]]
        name = "other"
        deployments = ["b-chat"]
        retries = 0
        fallbacks = ["r"]  # a cycle: each route is still tried once per call
    """

    async def main() -> None:
        async with registry(tmp_path, [a, b, c], routes) as models:
            a.fail(2)
            assert await _ask(models) == ("Hello from b", ["a-chat", "a-chat", "b-chat"])
            a.fail(2)
            b.fail(1)
            text, tried = await _stream(models)
            assert (text, tried) == ("Hello from c", ["a-chat", "a-chat", "b-chat", "c-chat"])
            a.fail(2)
            b.fail(1)
            c.fail(1)
            with pytest.raises(UpstreamError, match="route 'r': every attempt failed"):
                await _ask(models)
            assert models.get("r").describe()["fallbacks"] == ["other", "c-chat"]

    asyncio.run(main())


def test_cooldown_skips_a_failing_deployment_until_it_recovers(
    tmp_path: Path, upstreams: Upstreams
) -> None:
    a, b = upstreams("a", "b")
    routes = """
        [[routes]]
        name = "r"
        deployments = ["a-chat", { model = "b-chat", priority = 1 }]
        retries = 0
        allowed_fails = 2
        cooldown = 1.5
    """

    async def main() -> None:
        async with registry(tmp_path, [a, b], routes) as models:
            a.fail(2)
            for _ in range(2):
                with pytest.raises(UpstreamError):
                    await _ask(models)
            state = _stats(models)["a-chat"]
            assert state["state"] == "cooling" and state["failures"] == 2
            assert "a failed with 500" in state["last_error"]
            for _ in range(3):
                assert await _ask(models) == ("Hello from b", ["b-chat"])
            assert a.calls == 2
            await asyncio.sleep(1.6)
            assert await _ask(models) == ("Hello from a", ["a-chat"])
            assert _stats(models)["a-chat"] | {"last_error_at": None} == {
                "state": "healthy",
                "cooling_for": 0.0,
                "failures": 0,
                "total_failures": 2,
                "served": 1,
                "last_error": "upstream answered 500: a failed with 500",
                "last_error_at": None,
            }

    asyncio.run(main())


def test_when_every_deployment_cools_down_they_are_tried_anyway(
    tmp_path: Path, upstreams: Upstreams
) -> None:
    (a,) = upstreams("a")
    routes = """
        [[routes]]
        name = "r"
        deployments = ["a-chat"]
        retries = 0
        allowed_fails = 1
        cooldown = 60
    """

    async def main() -> None:
        async with registry(tmp_path, [a], routes) as models:
            a.fail(1)
            with pytest.raises(UpstreamError):
                await _ask(models)
            assert _stats(models)["a-chat"]["state"] == "cooling"
            assert await _ask(models) == ("Hello from a", ["a-chat"])
            assert _stats(models)["a-chat"]["state"] == "healthy"

    asyncio.run(main())


def test_timeout_bounds_the_wait_for_the_first_chunk(tmp_path: Path, upstreams: Upstreams) -> None:
    a, b = upstreams("a", "b")
    routes = """
        [[routes]]
        name = "r"
        deployments = ["a-chat", { model = "b-chat", priority = 1 }]
        timeout = 0.5
        backoff = 0.01
    """

    async def main() -> None:
        async with registry(tmp_path, [a, b], routes) as models:
            a.push(Step.hang(10))
            started = time.monotonic()
            assert await _stream(models) == ("Hello from b", ["a-chat", "b-chat"])
            assert time.monotonic() - started < 5
            assert "route's timeout" in _stats(models)["a-chat"]["last_error"]
            # Non-streamed: the timeout is the whole answer's.
            a.push(Step.hang(10))
            assert await _ask(models) == ("Hello from b", ["a-chat", "b-chat"])
            # Once the first chunk is in, a slower rest is not cut off by the timeout.
            a.push(Step.slow(1.0))
            assert await _stream(models) == ("Hello from a", ["a-chat"])
            # With nowhere else to go, the caller sees a timeout (504).
            a.push(Step.hang(10))
            b.push(Step.hang(10))
            await models.remove_route("r")
            await models.add_route(
                RouteConfig(name="r", deployments=["a-chat", "b-chat"], retries=1, timeout=0.3)
            )
            with pytest.raises(UpstreamTimeout) as failure:
                await _stream(models)
            assert failure.value.status == 504

    asyncio.run(main())


def test_retry_after_is_waited_out_or_cools_the_deployment(
    tmp_path: Path, upstreams: Upstreams
) -> None:
    a, b = upstreams("a", "b")
    routes = """
        [[routes]]
        name = "r"
        deployments = ["a-chat"]
        retries = 1
        backoff = 0.01
        backoff_max = 5

        [[routes]]
        name = "r2"
        deployments = ["a-chat", { model = "b-chat", priority = 1 }]
        backoff = 0.01
        backoff_max = 5
    """

    async def main() -> None:
        async with registry(tmp_path, [a, b], routes) as models:
            a.push(Step.error(429, retry_after_ms="600"))
            started = time.monotonic()
            assert await _ask(models) == ("Hello from a", ["a-chat", "a-chat"])
            assert time.monotonic() - started >= 0.55
            # Longer than backoff_max: no waiting; a sits out as long as it asked.
            a.push(Step.error(429, retry_after="120"))
            started = time.monotonic()
            assert await _ask(models, "r2") == ("Hello from b", ["a-chat", "b-chat"])
            assert time.monotonic() - started < 4
            state = _stats(models, "r2")["a-chat"]
            assert state["state"] == "cooling" and state["cooling_for"] > 100
            assert await _ask(models, "r2") == ("Hello from b", ["b-chat"])

    asyncio.run(main())


def test_health_checks_mark_deployments(tmp_path: Path, upstreams: Upstreams) -> None:
    a, b = upstreams("a", "b")
    routes = """
        [[routes]]
        name = "r"
        deployments = ["a-chat", { model = "b-chat", priority = 1 }]
        health_check_interval = 0.1
    """

    async def until(condition: Callable[[], bool]) -> None:
        for _ in range(200):
            if condition():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the health check did not notice in 10 s")

    async def main() -> None:
        async with registry(tmp_path, [a, b], routes) as models:
            await until(lambda: a.probes >= 1 and b.probes >= 1)
            assert _stats(models)["a-chat"]["state"] == "healthy"
            a.models_status = 503
            await until(lambda: _stats(models)["a-chat"]["state"] == "unhealthy")
            assert "health check" in _stats(models)["a-chat"]["last_error"]
            assert await _ask(models) == ("Hello from b", ["b-chat"])
            a.models_status = 200
            await until(lambda: _stats(models)["a-chat"]["state"] == "healthy")
            assert await _ask(models) == ("Hello from a", ["a-chat"])
        probes = a.probes
        await asyncio.sleep(0.4)
        assert a.probes <= probes + 1  # closing the registry stopped the checks (one in flight)

    asyncio.run(main())


def test_embedding_and_rerank_routes_report_their_deployment(
    tmp_path: Path, upstreams: Upstreams
) -> None:
    a, b = upstreams("a", "b")
    routes = """
        [[routes]]
        name = "vectors"
        deployments = ["a-embed", { model = "b-embed", priority = 1 }]
        backoff = 0.01

        [[routes]]
        name = "ranker"
        deployments = ["a-rerank", { model = "b-rerank", priority = 1 }]
        backoff = 0.01
    """

    async def main() -> None:
        async with registry(tmp_path, [a, b], routes) as models:
            a.fail(1)
            request = EmbeddingRequest(model="vectors", input=["x", "y"])
            result = await models.embedding("vectors").embed(request, ["x", "y"])
            assert result.deployment == "b-embed" and len(result.vectors) == 2
            a.fail(1)
            ctx = CallContext(owner="t")
            ranked = await models.rerank("ranker").rerank("q", ["d1", "d2"], ctx)
            assert ranked.scores == [1.0, 0.5] and ctx.deployments == ["a-rerank", "b-rerank"]
            listed = {m.id: m.describe() for m in models.models()}
            assert listed["vectors"]["kind"] == "embedding"
            assert listed["ranker"]["deployments"] == [
                {"model": "a-rerank", "weight": 1.0, "priority": 0},
                {"model": "b-rerank", "weight": 1.0, "priority": 1},
            ]

    asyncio.run(main())


def test_a_dead_upstream_fails_over(tmp_path: Path, upstreams: Upstreams) -> None:
    (b,) = upstreams("b")
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: connection refused
    routes = f"""
        [[providers]]
        name = "dead"
        type = "openai_compatible"
        base_url = "{dead}"
        models = ["dead-chat"]

        [[routes]]
        name = "r"
        deployments = ["dead-chat", {{ model = "b-chat", priority = 1 }}]
        backoff = 0.01
    """

    async def main() -> None:
        async with registry(tmp_path, [b], routes) as models:
            assert await _stream(models) == ("Hello from b", ["dead-chat", "b-chat"])
            last_error = _stats(models)["dead-chat"]["last_error"]
            assert "the upstream connection failed: ConnectError" in last_error

    asyncio.run(main())


def test_config_errors_name_the_route(tmp_path: Path, upstreams: Upstreams) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[routes]]\nname = "r"\ndeployments = ["a"]\nretry = 2\n')
    with pytest.raises(ConfigError, match=r"routes\[0\] \('r'\): retry: Extra inputs"):
        read_routes_file(path)
    path.write_text('[[routes]]\nname = "r"\ndeployments = []\n')
    with pytest.raises(ConfigError, match=r"routes\[0\] \('r'\): deployments"):
        read_routes_file(path)
    path.write_text('[[routes]]\nname = "r"\ndeployments = [{ model = "a", weight = 0 }]\n')
    with pytest.raises(ConfigError, match="weight"):
        read_routes_file(path)
    path.write_text('[[routes]]\nname = "r"\ndeployments = ["a", "a"]\n')
    with pytest.raises(ConfigError, match="lists deployment 'a' twice"):
        read_routes_file(path)
    settings = load_settings({"DANLU_HOME": str(tmp_path), "DANLU_EMBEDDED_MODELS": "0"})
    twice = [RouteConfig(name="r", deployments=["a"]), RouteConfig(name="r", deployments=["b"])]
    with pytest.raises(ConfigError, match="two routes are named 'r'"):
        ModelRegistry({}, [], settings, twice)

    a, b = upstreams("a", "b")
    routes = """
        [[routes]]
        name = "mixed"
        deployments = ["a-chat", "b-embed"]

        [[routes]]
        name = "typo"
        deployments = ["a-chta"]

        [[routes]]
        name = "partial"
        deployments = ["a-chat", "later-chat"]
        fallbacks = ["nowhere"]

        [[routes]]
        name = "wrong-fallback"
        deployments = ["a-chat"]
        fallbacks = ["b-embed"]

        [[routes]]
        name = "a-chat"
        deployments = ["b-chat"]
    """

    async def main() -> None:
        # Bad routes are reported like failed providers; the server keeps serving.
        async with registry(tmp_path, [a, b], routes) as models:
            status = {s.name: s for s in models.statuses if s.type == "route"}
            assert status["mixed"].state == "failed"
            assert "'a-chat' is chat, 'b-embed' is embedding" in str(status["mixed"].reason)
            assert "route 'typo': none of its deployments ('a-chta')" in str(status["typo"].reason)
            assert status["partial"].state == "degraded"
            assert status["partial"].reason == (
                "deployment 'later-chat' is not served; fallback 'nowhere' is not served"
            )
            assert "fallback 'b-embed' is an embedding model" in str(
                status["wrong-fallback"].reason
            )
            assert "provider 'up-a' serves a model of that name" in str(status["a-chat"].reason)
            with pytest.raises(ModelNotFound):
                models.get("typo")
            assert await _ask(models, "a-chat") == ("Hello from a", [])  # the model, untouched
            assert await _ask(models, "partial") == ("Hello from a", ["a-chat"])
            assert _stats(models, "partial")["later-chat"]["state"] == "missing"

            # A provider added at run time completes a route and revives another.
            await models.add(
                ProviderConfig(
                    name="late",
                    type="openai_compatible",
                    options={
                        "base_url": b.base_url,
                        "models": [
                            {"name": "later-chat", "upstream": "m"},
                            {"name": "a-chta", "upstream": "m"},
                        ],
                    },
                )
            )
            status = {s.name: s for s in models.statuses if s.type == "route"}
            assert status["typo"].state == "ready" and status["partial"].reason == (
                "fallback 'nowhere' is not served"
            )
            assert await _ask(models, "typo") == ("Hello from b", ["a-chta"])
            await models.remove("late")
            status = {s.name: s for s in models.statuses if s.type == "route"}
            assert status["typo"].state == "degraded"
            with pytest.raises(Exception, match="route 'typo' has nothing to serve it"):
                await _ask(models, "typo")

            # At run time, mistakes are refused at once.
            with pytest.raises(ConfigError, match="deployment 'nope' is not served"):
                await models.add_route(RouteConfig(name="new", deployments=["a-chat", "nope"]))
            with pytest.raises(Conflict, match="already exists"):
                await models.add_route(RouteConfig(name="partial", deployments=["a-chat"]))
            with pytest.raises(ConfigError, match="is a route"):
                await models.add_route(RouteConfig(name="new", deployments=["partial"]))
            await models.add_route(RouteConfig(name="new", deployments=["a-chat"]))
            assert await _ask(models, "new") == ("Hello from a", ["a-chat"])
            await models.remove_route("new")
            with pytest.raises(ModelNotFound):
                models.get("new")

    asyncio.run(main())


def test_tools_go_only_to_deployments_that_support_them(
    tmp_path: Path, upstreams: Upstreams
) -> None:
    (a,) = upstreams("a")
    routes = """
        [[routes]]
        name = "r"
        deployments = ["a-chat"]
    """

    async def main() -> None:
        async with registry(tmp_path, [a], routes) as models:
            model = models.chat("r")
            assert isinstance(model, ChatModel) and model.supports_tools
            tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
            answer = await model.chat(_chat(tools=tools), CallContext(owner="t"))
            assert answer["choices"][0]["message"]["content"] == "Hello from a"

    asyncio.run(main())


def test_a_route_through_danlu_serve_with_the_openai_sdk(
    tmp_path: Path, upstreams: Upstreams
) -> None:
    a, b = upstreams("a", "b")
    home = tmp_path / "home"
    home.mkdir()
    (home / "providers.toml").write_text(
        _providers(a, b)
        + textwrap.dedent("""
            [[routes]]
            name = "qwen-plus"
            deployments = [{ model = "a-chat", weight = 3 }, { model = "b-chat", priority = 1 }]
            retries = 2
            timeout = 30
            allowed_fails = 3
            cooldown = 30
            backoff = 0.01
            """)
    )
    server = start_server(home, {"DANLU_EMBEDDED_MODELS": "0"})
    try:
        client = openai.OpenAI(base_url=server.api, api_key=server.admin_key, max_retries=0)
        listed = {m.id: m for m in client.models.list()}
        route = listed["qwen-plus"].model_dump()
        assert route["kind"] == "chat" and route["owned_by"] == "danlu"
        assert [d["model"] for d in route["deployments"]] == ["a-chat", "b-chat"]

        a.fail(1)
        stream = client.chat.completions.create(
            model="qwen-plus", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert text == "Hello from b"
        answer = client.chat.completions.create(
            model="qwen-plus", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.model == "qwen-plus"
        assert answer.choices[0].message.content == "Hello from a"

        # A client error comes back at once, as the upstream's 400.
        a.fail(1, status=400)
        with pytest.raises(openai.BadRequestError, match="a failed with 400"):
            client.chat.completions.create(
                model="qwen-plus", messages=[{"role": "user", "content": "hi"}]
            )

        health = httpx.get(f"{server.url}/healthz", timeout=10).json()
        deployments = health["models"]["qwen-plus"]["deployments"]
        assert deployments["a-chat"]["state"] == "healthy"
        assert deployments["a-chat"]["total_failures"] == 1
        assert deployments["b-chat"]["served"] == 1
        route_status = next(p for p in health["providers"] if p["name"] == "qwen-plus")
        assert route_status == {
            "name": "qwen-plus",
            "type": "route",
            "state": "ready",
            "reason": None,
            "models": ["qwen-plus"],
        }
    finally:
        server.stop()
