"""The agent loop and its built-in tools."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from danlu.builder.compiler import CompileError, compile_app
from danlu.builder.dsl import parse_app
from danlu.builder.runtime import EngineServices, run_to_end
from danlu.builder.tools import calculate
from danlu.core.errors import InvalidRequest
from danlu.core.settings import load_settings
from danlu.gateway.provider import CallContext, ChatModel, Chunk, Model, Provider, ProviderOptions
from danlu.gateway.registry import ModelRegistry, ProviderConfig
from danlu.gateway.schemas import ChatCompletionRequest


class ScriptedModel(ChatModel):
    """Decides like an agent would: calculator first, then answer with what it returned."""

    async def stream_chat(
        self, request: ChatCompletionRequest, ctx: CallContext
    ) -> AsyncIterator[Chunk]:
        transcript = request.messages[-1].text()
        assert request.response_format is not None
        actions = request.response_format["json_schema"]["schema"]["properties"]["action"]["enum"]
        if "STUBBORN" in transcript:
            decision: dict[str, Any] = {"action": "current_time", "arguments": {"timezone": "UTC"}}
        elif " returned: " in transcript:
            result = transcript.rsplit(" returned: ", 1)[1].strip()
            decision = {"action": "answer", "text": f"The answer is {result}."}
        elif "ARGS " in transcript:  # "ARGS {...}": call the first offered tool with these
            decision = {
                "action": actions[1],
                "arguments": json.loads(transcript.split("ARGS ", 1)[1]),
            }
        else:
            decision = {"action": "calculator", "arguments": {"expression": "6 * (3 + 4)"}}
        yield {
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": json.dumps(decision)},
                    "finish_reason": "stop",
                }
            ]
        }
        yield {
            "choices": [],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }


class ScriptedProvider(Provider):
    type = "scripted"
    Options = ProviderOptions

    async def load(self) -> Sequence[Model]:
        return [ScriptedModel("scripted", owned_by="tests", provider=self.name)]


@pytest.fixture
def services(tmp_path: Path) -> EngineServices:
    settings = load_settings({"DANLU_HOME": str(tmp_path), "DANLU_EMBEDDED_MODELS": "0"})
    registry = ModelRegistry(
        {"scripted": ScriptedProvider}, [ProviderConfig(name="s", type="scripted")], settings
    )
    asyncio.run(registry.start())
    return EngineServices(models=registry)


def agent_app(tools: list[str], **config: Any) -> dict[str, Any]:
    return {
        "schema": "danlu.app/v1",
        "app": {"name": "agent", "mode": "agent"},
        "graph": {
            "nodes": [
                {"id": "start", "type": "start"},
                {
                    "id": "agent",
                    "type": "agent",
                    "config": {"model": "scripted", "tools": tools, **config},
                },
                {"id": "reply", "type": "answer", "config": {"text": "{{ agent.text }}"}},
            ],
            "edges": [
                {"source": "start", "target": "agent"},
                {"source": "agent", "target": "reply"},
            ],
        },
    }


def test_agent_calls_a_tool_then_answers(services: EngineServices) -> None:
    plan = compile_app(parse_app(agent_app(["calculator", "current_time"])))
    record, events = asyncio.run(
        run_to_end(plan, services, {}, system={"query": "what is 6*(3+4)?"})
    )
    assert record.status == "succeeded", record.error
    steps = [e.data for e in events if e.event == "agent_step"]
    assert [s["action"] for s in steps] == ["calculator", "answer"]
    assert steps[0]["result"] == "42"
    assert [e.data["text"] for e in events if e.event == "answer"] == ["The answer is 42."]
    assert record.usage["total_tokens"] == 30


def test_agent_stops_at_its_iteration_cap(services: EngineServices) -> None:
    plan = compile_app(parse_app(agent_app(["current_time"], max_iterations=3)))
    record, events = asyncio.run(run_to_end(plan, services, {}, system={"query": "STUBBORN"}))
    assert record.status == "failed" and "no answer after 3 iterations" in (record.error or "")
    assert sum(e.event == "agent_step" for e in events) == 3


def test_unknown_tools_are_compile_errors() -> None:
    with pytest.raises(CompileError, match="unknown tool"):
        compile_app(parse_app(agent_app(["rm_rf"])))


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("2 ** 10", 1024),
        ("7 // 2", 3),
        ("-3 % 5", 2),
        ("1 / 4", 0.25),
    ],
)
def test_calculator(expression: str, value: float) -> None:
    assert calculate(expression) == value


@pytest.mark.parametrize(
    "expression",
    ["__import__('os').system('id')", "x + 1", "9 ** 9 ** 9", "1 / 0", "[1, 2]", "a" * 300],
)
def test_calculator_refuses_anything_else(expression: str) -> None:
    with pytest.raises(InvalidRequest):
        calculate(expression)


def test_openapi_operations_become_tools(services: EngineServices, tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Weather(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps({"path": self.path, "forecast": "sunny"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Weather)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        spec = {
            "openapi": "3.0.0",
            "servers": [{"url": f"http://127.0.0.1:{server.server_address[1]}"}],
            "paths": {
                "/weather/{city}": {
                    "get": {
                        "operationId": "get_weather",
                        "summary": "The forecast for a city",
                        "parameters": [
                            {"name": "city", "in": "path", "required": True},
                            {"name": "days", "in": "query"},
                        ],
                    }
                }
            },
        }
        app_spec = agent_app([], openapi=[{"spec": spec}])
        plan = compile_app(parse_app(app_spec))
        services.http_allow = [__import__("ipaddress").ip_network("127.0.0.1/32")]
        query = 'ARGS {"city": "杭州", "days": 2}'
        record, events = asyncio.run(run_to_end(plan, services, {}, system={"query": query}))
        assert record.status == "succeeded", record.error
        step = next(
            e.data for e in events if e.event == "agent_step" and e.data["action"] == "get_weather"
        )
        assert "/weather/%E6%9D%AD%E5%B7%9E?days=2" in step["result"] and "sunny" in step["result"]
        # Without the allowlist the same tool is refused by the SSRF guard, and the model is told.
        services.http_allow = []
        record, events = asyncio.run(run_to_end(plan, services, {}, system={"query": query}))
        step = next(
            e.data for e in events if e.event == "agent_step" and e.data["action"] == "get_weather"
        )
        assert step["result"].startswith("error:") and "DANLU_BUILDER_HTTP_ALLOW" in step["result"]
    finally:
        server.shutdown()
        server.server_close()


def test_published_apps_are_tools(db: Any, services: EngineServices) -> None:
    from danlu.builder.apps import Apps, RunOptions, execute
    from danlu.core.accounts import Accounts
    from danlu.core.keys import ApiKeys

    accounts, keys = Accounts(db), ApiKeys(db)
    user = accounts.create_user("builder")
    _, secret = keys.create(user, "k")
    principal = keys.authenticate(secret)
    apps = Apps(db, keys, services)
    shout = parse_app(
        {
            "schema": "danlu.app/v1",
            "app": {"name": "shout", "mode": "workflow", "description": "Shouts a word"},
            "graph": {
                "nodes": [
                    {"id": "start", "type": "start", "config": {"inputs": [{"name": "word"}]}},
                    {
                        "id": "end",
                        "type": "end",
                        "config": {
                            "outputs": [{"name": "loud", "value": "{{ start.word | upper }}!"}]
                        },
                    },
                ],
                "edges": [{"source": "start", "target": "end"}],
            },
        }
    )
    tool_app = apps.create(principal, shout)
    apps.publish(principal, tool_app)
    agent = apps.create(principal, parse_app(agent_app([f"app:{tool_app.slug}"])))
    apps.publish(principal, agent)
    fresh = apps.get(principal, agent.id)

    async def go() -> list[Any]:
        return [
            e
            async for e in execute(
                apps, fresh, {}, RunOptions(), "t", query='ARGS {"word": "hello"}'
            )
        ]

    events = asyncio.run(go())
    assert events[-1].event == "run_finished", events[-1].data
    steps = [e.data for e in events if e.event == "agent_step"]
    assert steps[0]["result"] == "HELLO!"
    assert [e.data["text"] for e in events if e.event == "answer"] == ["The answer is HELLO!."]
