"""The LLM node: any gateway model, templated messages, memory, structured output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from danlu.builder.nodes.base import NodeConfig, NodeContext, NodeResult, NodeType, reads_template
from danlu.builder.variables import VarType
from danlu.core.errors import InvalidRequest
from danlu.gateway.provider import CallContext
from danlu.gateway.schemas import ChatCompletionRequest


class PromptMessage(NodeConfig):
    role: Literal["system", "user", "assistant"]
    text: str


class LLMConfig(NodeConfig):
    model: str = Field(min_length=1)
    prompt: list[PromptMessage] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = None
    stop: list[str] | None = None
    # Chat apps: how many earlier turns (user + assistant pairs) to include.
    memory_window: int = Field(default=0, ge=0, le=100)
    # A JSON Schema the answer must follow; the parsed value is output "structured".
    output_schema: dict[str, Any] | None = None


class LLMNode(NodeType):
    type = "llm"
    Config = LLMConfig

    def outputs(self) -> dict[str, VarType]:
        assert isinstance(self.config, LLMConfig)
        declared: dict[str, VarType] = {"text": "string", "finish_reason": "string"}
        if self.config.output_schema is not None:
            declared["structured"] = "object"
        return declared

    def reads(self) -> Iterator[tuple[str, str, VarType]]:
        assert isinstance(self.config, LLMConfig)
        for message in self.config.prompt:
            yield from reads_template(message.text)

    def _messages(self, ctx: NodeContext) -> list[dict[str, Any]]:
        assert isinstance(self.config, LLMConfig)
        rendered = [
            {"role": m.role, "content": ctx.pool.render(m.text)} for m in self.config.prompt
        ]
        if self.config.memory_window:
            history = ctx.pool.outputs("sys").get("history") or []
            kept = history[-2 * self.config.memory_window :]
            # Memory goes after the system prompt and before this turn's messages.
            system = [m for m in rendered if m["role"] == "system"]
            rest = [m for m in rendered if m["role"] != "system"]
            rendered = system + list(kept) + rest
        return rendered

    async def run(self, ctx: NodeContext) -> NodeResult:
        assert isinstance(self.config, LLMConfig)
        config = self.config
        body: dict[str, Any] = {
            "model": config.model,
            "messages": self._messages(ctx),
            "stream": True,
        }
        for name in ("temperature", "max_tokens", "seed", "stop"):
            if getattr(config, name) is not None:
                body[name] = getattr(config, name)
        if config.output_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": self.id, "schema": config.output_schema},
            }
        request = ChatCompletionRequest.model_validate(body)
        model = ctx.services.models.chat(config.model)
        parts: list[str] = []
        usage: dict[str, int] = {}
        finish = "stop"
        async for chunk in model.stream_chat(request, CallContext(owner=ctx.owner)):
            if chunk.get("usage"):
                usage = {k: int(v) for k, v in chunk["usage"].items() if isinstance(v, int)}
            for choice in chunk.get("choices", []):
                delta = (choice.get("delta") or {}).get("content")
                if delta:
                    parts.append(delta)
                    await ctx.emit("text_chunk", {"node_id": self.id, "text": delta})
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
        text = "".join(parts)
        outputs: dict[str, Any] = {"text": text, "finish_reason": finish}
        if config.output_schema is not None:
            try:
                outputs["structured"] = json.loads(text)
            except ValueError:
                raise InvalidRequest(
                    f"{self.id}: the model's answer is not the JSON asked for: {text[:200]!r}"
                ) from None
        return NodeResult(outputs, usage=usage)
