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
        if "STUBBORN" in transcript:
            decision: dict[str, Any] = {"action": "current_time", "arguments": {"timezone": "UTC"}}
        elif "Tool calculator returned" in transcript:
            result = transcript.rsplit("Tool calculator returned: ", 1)[1].strip()
            decision = {"action": "answer", "text": f"The answer is {result}."}
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
