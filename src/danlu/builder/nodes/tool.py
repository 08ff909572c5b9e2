"""The tool node: call one tool (built-in, an OpenAPI operation, or a published app) directly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field

from danlu.builder.nodes.agent import BUILTIN, OpenAPISource
from danlu.builder.nodes.base import (
    NodeConfig,
    NodeContext,
    NodeResult,
    NodeType,
    reads_selector,
    reads_template,
)
from danlu.builder.tools import Tool, builtin_tools, openapi_tools
from danlu.builder.variables import VarType
from danlu.core.errors import DanluError, InvalidRequest


class ToolArgument(NodeConfig):
    value: str | None = None  # a template
    selector: str | None = None  # or a selector (keeps the value's type)


class ToolConfig(NodeConfig):
    tool: str = Field(min_length=1)  # a built-in name, "app:{slug}", or an operationId of openapi
    openapi: OpenAPISource | None = None
    arguments: dict[str, ToolArgument] = Field(default_factory=dict)


class ToolNode(NodeType):
    type = "tool"
    Config = ToolConfig

    def outputs(self) -> dict[str, VarType]:
        return {"result": "string"}

    def reads(self) -> Iterator[tuple[str, str, VarType]]:
        assert isinstance(self.config, ToolConfig)
        for argument in self.config.arguments.values():
            if argument.selector:
                yield from reads_selector(argument.selector)
            elif argument.value:
                yield from reads_template(argument.value)

    def problems(self) -> list[str]:
        assert isinstance(self.config, ToolConfig)
        config = self.config
        if config.openapi is not None:
            try:
                openapi_tools(config.openapi.spec, [], [config.tool])
            except DanluError as exc:
                return [f"openapi: {exc.message}"]
            return []
        if config.tool not in BUILTIN and not config.tool.startswith("app:"):
            return [
                f"unknown tool {config.tool!r}; use {list(BUILTIN)}, app:<slug>, or an "
                "operationId with 'openapi'"
            ]
        return []

    async def _tool(self, ctx: NodeContext) -> Tool:
        assert isinstance(self.config, ToolConfig)
        config = self.config
        if config.openapi is not None:
            return openapi_tools(config.openapi.spec, ctx.services.http_allow, [config.tool])[
                config.tool
            ]
        if config.tool.startswith("app:"):
            if ctx.services.app_tool is None:
                raise InvalidRequest(f"{self.id}: apps as tools need the app service")
            tool: Tool = await ctx.services.app_tool(
                ctx.pool.outputs("sys").get("app_id"), config.tool[4:]
            )
            return tool
        return builtin_tools(ctx.services.http_allow)[config.tool]

    async def run(self, ctx: NodeContext) -> NodeResult:
        assert isinstance(self.config, ToolConfig)
        arguments: dict[str, Any] = {}
        for name, argument in self.config.arguments.items():
            arguments[name] = (
                ctx.pool.get(argument.selector)
                if argument.selector
                else ctx.pool.render(argument.value or "")
            )
        tool = await self._tool(ctx)
        return NodeResult({"result": await tool.call(arguments)})
