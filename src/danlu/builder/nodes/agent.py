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
from danlu.builder.tools import Tool, builtin_tools, openapi_tools
from danlu.builder.variables import VarType
from danlu.core.errors import DanluError, InvalidRequest

BUILTIN = ("current_time", "calculator", "http_fetch")


class OpenAPISource(NodeConfig):
    spec: dict[str, Any]  # an OpenAPI 3 document
    operations: list[str] | None = None  # operationIds to offer (default: all)


class AgentConfig(NodeConfig):
    model: str
    instructions: str = "You are a helpful assistant."
    query: str = "sys.query"
    # Built-in tool names, and "app:{slug}" for published apps of the same workspace.
    tools: list[str] = Field(default_factory=list)
    openapi: list[OpenAPISource] = Field(default_factory=list)
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
        unknown = sorted(
            t for t in self.config.tools if t not in BUILTIN and not t.startswith("app:")
        )
        found = (
            [f"unknown tool(s) {unknown}; available: {list(BUILTIN)} or app:<slug>"]
            if unknown
            else []
        )
        for source in self.config.openapi:
            try:
                openapi_tools(source.spec, [], source.operations)
            except DanluError as exc:
                found.append(f"openapi: {exc.message}")
        return found

    def _schema(self, tools: list[str]) -> dict[str, Any]:
        actions: list[str] = ["answer", *tools]
        return {
            "type": "object",
            "properties": {
                "action": {"type": "string", "enum": actions},
                "arguments": {"type": "object"},
                "text": {"type": "string", "maxLength": 2000},
            },
            "required": ["action"],
        }

    async def _tools(self, ctx: NodeContext) -> dict[str, Tool]:
        assert isinstance(self.config, AgentConfig)
        allow = ctx.services.http_allow
        tools = {n: t for n, t in builtin_tools(allow).items() if n in self.config.tools}
        for source in self.config.openapi:
            tools.update(openapi_tools(source.spec, allow, source.operations))
        for name in self.config.tools:
            if name.startswith("app:"):
                if ctx.services.app_tool is None:
                    raise InvalidRequest(f"{self.id}: apps as tools need the app service")
                tool = await ctx.services.app_tool(ctx.pool.outputs("sys").get("app_id"), name[4:])
                tools[tool.name] = tool
        return tools

    async def run(self, ctx: NodeContext) -> NodeResult:
        assert isinstance(self.config, AgentConfig)
        config = self.config
        tools = await self._tools(ctx)
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
                ctx,
                config.model,
                system,
                transcript,
                self._schema(list(tools)),
                self.id,
                max_tokens=300,
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
