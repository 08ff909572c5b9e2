"""The agent node: a model that calls tools in a loop until it answers (or hits its cap).

Each step the model answers in a JSON shape its grammar enforces — call a tool
with arguments, or give the final answer — so the loop works on any model that
honours ``response_format``, small local ones included. Every step is an event
and part of the node's outputs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydantic import Field

from danlu.builder.nodes.base import (
    NodeConfig,
    NodeContext,
    NodeResult,
    NodeType,
    reads_selector,
    reads_template,
)
from danlu.builder.nodes.extract import ask_json
from danlu.builder.tools import builtin_tools
from danlu.builder.variables import VarType
from danlu.core.errors import DanluError, InvalidRequest

BUILTIN = ("current_time", "calculator", "http_fetch")


class AgentConfig(NodeConfig):
    model: str
    instructions: str = "You are a helpful assistant."
    query: str = "sys.query"
    tools: list[str] = Field(default_factory=list)
    max_iterations: int = Field(default=5, ge=1, le=20)


class AgentNode(NodeType):
    type = "agent"
    Config = AgentConfig

    def outputs(self) -> dict[str, VarType]:
        return {"text": "string", "steps": "array", "iterations": "integer"}

    def reads(self) -> Iterator[tuple[str, str, VarType]]:
        assert isinstance(self.config, AgentConfig)
        yield from reads_selector(self.config.query, "string")
        yield from reads_template(self.config.instructions)

    def problems(self) -> list[str]:
        assert isinstance(self.config, AgentConfig)
        unknown = sorted(set(self.config.tools) - set(BUILTIN))
        return [f"unknown tool(s) {unknown}; available: {list(BUILTIN)}"] if unknown else []

    def _schema(self) -> dict[str, Any]:
        assert isinstance(self.config, AgentConfig)
        actions: list[str] = ["answer", *self.config.tools]
        return {
            "type": "object",
            "properties": {
                "action": {"type": "string", "enum": actions},
                "arguments": {"type": "object"},
                "text": {"type": "string", "maxLength": 2000},
            },
            "required": ["action"],
        }

    async def run(self, ctx: NodeContext) -> NodeResult:
        assert isinstance(self.config, AgentConfig)
        config = self.config
        tools = {
            name: tool
            for name, tool in builtin_tools(ctx.services.http_allow).items()
            if name in config.tools
        }
        listing = (
            "\n".join(
                f"- {t.name}: {t.description} arguments: {json.dumps(t.parameters)}"
                for t in tools.values()
            )
            or "(no tools)"
        )
        system = (
            f"{ctx.pool.render(config.instructions)}\nTools:\n{listing}\n"
            'Reply with JSON: {"action": "<tool name>", "arguments": {...}} to use a tool, '
            'or {"action": "answer", "text": "..."} to answer the user.'
        )
        transcript = f"User: {ctx.pool.get(config.query)}"
        steps: list[dict[str, Any]] = []
        usage: dict[str, int] = {}
        for iteration in range(1, config.max_iterations + 1):
            decision, used = await ask_json(
                ctx, config.model, system, transcript, self._schema(), self.id, max_tokens=300
            )
            for key, value in used.items():
                usage[key] = usage.get(key, 0) + value
            if not isinstance(decision, dict):
                raise InvalidRequest(f"{self.id}: the model's decision is not an object")
            action = decision.get("action")
            if action == "answer":
                text = str(decision.get("text") or "")
                await ctx.emit(
                    "agent_step", {"node_id": self.id, "iteration": iteration, "action": "answer"}
                )
                return NodeResult(
                    {"text": text, "steps": steps, "iterations": iteration}, usage=usage
                )
            tool = tools.get(str(action))
            if tool is None:
                raise InvalidRequest(f"{self.id}: the model asked for unknown tool {action!r}")
            raw_arguments = decision.get("arguments")
            arguments: dict[str, Any] = raw_arguments if isinstance(raw_arguments, dict) else {}
            try:
                result = await tool.call(arguments)
            except DanluError as exc:  # a tool error is information for the model, not a crash
                result = f"error: {exc.message}"
            steps.append({"tool": tool.name, "arguments": arguments, "result": result})
            await ctx.emit(
                "agent_step",
                {
                    "node_id": self.id,
                    "iteration": iteration,
                    "action": tool.name,
                    "arguments": arguments,
                    "result": result[:1000],
                },
            )
            transcript += (
                f"\nAssistant: {json.dumps(decision, ensure_ascii=False)}"
                f"\nTool {tool.name} returned: {result[:4000]}"
            )
        raise InvalidRequest(
            f"{self.id}: no answer after {config.max_iterations} iterations "
            "(raise max_iterations, or simplify the task)"
        )
