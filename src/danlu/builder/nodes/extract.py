"""LLM nodes with a fixed shape: the question classifier and the parameter extractor.

Both ask the model for JSON that follows a schema (enforced by the model's grammar on
llama.cpp models), so even a small model answers in the shape the graph needs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from danlu.builder.nodes.base import NodeConfig, NodeContext, NodeResult, NodeType, reads_selector
from danlu.builder.variables import VarType
from danlu.core.errors import InvalidRequest
from danlu.gateway.provider import CallContext
from danlu.gateway.schemas import ChatCompletionRequest


async def ask_json(
    ctx: NodeContext,
    model_name: str,
    system: str,
    user: str,
    schema: dict[str, Any],
    node_id: str,
    *,
    max_tokens: int = 128,
) -> tuple[Any, dict[str, int]]:
    """One schema-constrained chat call; the parsed JSON and the usage."""
    request = ChatCompletionRequest.model_validate(
        {
            "model": model_name,
            "temperature": 0,
            "max_tokens": max_tokens,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": node_id, "schema": schema},
            },
        }
    )
    model = ctx.services.models.chat(model_name)
    answer = await model.chat(request, CallContext(owner=ctx.owner))
    text = answer["choices"][0]["message"].get("content") or ""
    usage = {k: int(v) for k, v in (answer.get("usage") or {}).items() if isinstance(v, int)}
    try:
        return json.loads(text), usage
    except ValueError:
        raise InvalidRequest(
            f"{node_id}: the model did not answer in JSON: {text[:200]!r}"
        ) from None


class ClassSpec(NodeConfig):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = Field(min_length=1)


class ClassifierConfig(NodeConfig):
    model: str
    query: str = "sys.query"  # a selector
    classes: list[ClassSpec] = Field(min_length=2)
    instructions: str = ""


class QuestionClassifierNode(NodeType):
    """Pick one class for the query; leave through that class's handle."""

    type = "question_classifier"
    Config = ClassifierConfig
    branching = True

    def outputs(self) -> dict[str, VarType]:
        return {"class": "string"}

    def handles(self) -> set[str]:
        assert isinstance(self.config, ClassifierConfig)
        return {c.id for c in self.config.classes}

    def reads(self) -> Iterator[tuple[str, str, VarType]]:
        assert isinstance(self.config, ClassifierConfig)
        return reads_selector(self.config.query, "string")

    async def run(self, ctx: NodeContext) -> NodeResult:
        assert isinstance(self.config, ClassifierConfig)
        config = self.config
        ids = [c.id for c in config.classes]
        listing = "\n".join(f"- {c.id}: {c.description}" for c in config.classes)
        system = (
            f"Classify the user's message into exactly one class.\n{listing}\n"
            f'{config.instructions}\nAnswer as JSON: {{"class": <one of {ids}>}}'
        )
        schema = {
            "type": "object",
            "properties": {"class": {"type": "string", "enum": ids}},
            "required": ["class"],
        }
        data, usage = await ask_json(
            ctx,
            config.model,
            system,
            str(ctx.pool.get(config.query)),
            schema,
            self.id,
            max_tokens=32,
        )
        chosen = data.get("class") if isinstance(data, dict) else None
        if chosen not in ids:
            raise InvalidRequest(f"{self.id}: the model chose {chosen!r}, not one of {ids}")
        return NodeResult({"class": chosen}, handle=chosen, usage=usage)


class ParameterSpec(NodeConfig):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    type: Literal["string", "number", "integer", "boolean", "array"] = "string"
    description: str = ""
    required: bool = True


class ExtractorConfig(NodeConfig):
    model: str
    query: str = "sys.query"
    parameters: list[ParameterSpec] = Field(min_length=1)
    instructions: str = ""


class ParameterExtractorNode(NodeType):
    """Pull typed parameters out of free text (an order number, a city, a date…)."""

    type = "parameter_extractor"
    Config = ExtractorConfig

    def outputs(self) -> dict[str, VarType]:
        assert isinstance(self.config, ExtractorConfig)
        return {p.name: p.type for p in self.config.parameters}

    def reads(self) -> Iterator[tuple[str, str, VarType]]:
        assert isinstance(self.config, ExtractorConfig)
        return reads_selector(self.config.query, "string")

    async def run(self, ctx: NodeContext) -> NodeResult:
        assert isinstance(self.config, ExtractorConfig)
        config = self.config
        properties: dict[str, Any] = {}
        for p in config.parameters:
            prop: dict[str, Any] = {"type": p.type, "description": p.description}
            # Bounded strings keep grammar-constrained decoding short on small models.
            if p.type == "string":
                prop["maxLength"] = 200
            if p.type == "array":
                prop["items"] = {"type": "string", "maxLength": 200}
                prop["maxItems"] = 20
            properties[p.name] = prop
        schema = {
            "type": "object",
            "properties": properties,
            "required": [p.name for p in config.parameters if p.required],
        }
        described = "\n".join(f"- {p.name} ({p.type}): {p.description}" for p in config.parameters)
        system = (
            f"Extract these parameters from the text as JSON.\n{described}\n{config.instructions}"
        )
        data, usage = await ask_json(
            ctx, config.model, system, str(ctx.pool.get(config.query)), schema, self.id
        )
        if not isinstance(data, dict):
            raise InvalidRequest(f"{self.id}: the model did not return an object")
        return NodeResult({p.name: data.get(p.name) for p in config.parameters}, usage=usage)
