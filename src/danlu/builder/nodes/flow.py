"""Nodes that shape the flow: start, end, answer, template, if/else, variable aggregator."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from danlu.builder.nodes.base import (
    NodeConfig,
    NodeContext,
    NodeResult,
    NodeType,
    reads_selector,
    reads_template,
)
from danlu.builder.variables import VarType, type_of
from danlu.core.errors import InvalidRequest


class InputField(NodeConfig):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    type: Literal["string", "number", "integer", "boolean", "object", "array", "any"] = "string"
    required: bool = True
    default: Any = None
    description: str = ""
    max_length: int | None = Field(default=None, ge=1)


class StartConfig(NodeConfig):
    inputs: list[InputField] = Field(default_factory=list)


class StartNode(NodeType):
    """The app's typed inputs. Checked before anything runs (see :func:`check_inputs`)."""

    type = "start"
    Config = StartConfig

    def outputs(self) -> dict[str, VarType]:
        assert isinstance(self.config, StartConfig)
        return {field.name: field.type for field in self.config.inputs}

    async def run(self, ctx: NodeContext) -> NodeResult:
        return NodeResult(ctx.pool.outputs(self.id))

    def check_inputs(self, given: dict[str, Any]) -> dict[str, Any]:
        """The inputs, validated against their declared types, with defaults filled in."""
        assert isinstance(self.config, StartConfig)
        known = {field.name for field in self.config.inputs}
        unknown = sorted(set(given) - known)
        if unknown:
            raise InvalidRequest(
                f"unknown input(s) {unknown}; this app takes {sorted(known)}", param="inputs"
            )
        values: dict[str, Any] = {}
        for field in self.config.inputs:
            if field.name not in given or given[field.name] is None:
                if field.required and field.default is None:
                    raise InvalidRequest(
                        f"input {field.name!r} is required", param=f"inputs.{field.name}"
                    )
                values[field.name] = field.default
                continue
            value = given[field.name]
            actual = type_of(value)
            wanted = field.type
            if wanted != "any" and not (
                actual == wanted or (actual == "integer" and wanted == "number")
            ):
                raise InvalidRequest(
                    f"input {field.name!r} must be a {wanted}, not a {actual}",
                    param=f"inputs.{field.name}",
                )
            if field.max_length and isinstance(value, str) and len(value) > field.max_length:
                raise InvalidRequest(
                    f"input {field.name!r} is longer than {field.max_length} characters",
                    param=f"inputs.{field.name}",
                )
            values[field.name] = value
        return values


class OutputField(NodeConfig):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    value: str | None = None  # a template
    selector: str | None = None  # or a selector: keeps the value's type


def _field_value(field: OutputField, ctx: NodeContext) -> Any:
    if field.selector:
        return ctx.pool.get(field.selector)
    return ctx.pool.render(field.value or "")


def _field_reads(fields: list[OutputField]) -> Iterator[tuple[str, str, VarType]]:
    for field in fields:
        if field.selector:
            yield from reads_selector(field.selector)
        elif field.value:
            yield from reads_template(field.value)


class EndConfig(NodeConfig):
    outputs: list[OutputField] = Field(default_factory=list)


class EndNode(NodeType):
    """A workflow's outputs."""

    type = "end"
    Config = EndConfig

    def outputs(self) -> dict[str, VarType]:
        assert isinstance(self.config, EndConfig)
        return {field.name: "any" for field in self.config.outputs}

    def reads(self) -> Iterator[tuple[str, str, VarType]]:
        assert isinstance(self.config, EndConfig)
        return _field_reads(self.config.outputs)

    async def run(self, ctx: NodeContext) -> NodeResult:
        assert isinstance(self.config, EndConfig)
        return NodeResult({field.name: _field_value(field, ctx) for field in self.config.outputs})


class AnswerConfig(NodeConfig):
    text: str = Field(min_length=1)


_PASS_THROUGH = re.compile(r"^\s*\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\.text\s*\}\}\s*$")


class AnswerNode(NodeType):
    """A chat app's reply: rendered and streamed to the user."""

    type = "answer"
    Config = AnswerConfig

    def streams_from(self) -> str | None:
        """The LLM node whose tokens this answer is, if its template is just ``{{ x.text }}``.

        Those tokens are then streamed to the user as they come (``answer_chunk`` events)."""
        assert isinstance(self.config, AnswerConfig)
        match = _PASS_THROUGH.match(self.config.text)
        return match.group(1) if match else None

    def outputs(self) -> dict[str, VarType]:
        return {"text": "string"}

    def reads(self) -> Iterator[tuple[str, str, VarType]]:
        assert isinstance(self.config, AnswerConfig)
        return reads_template(self.config.text)

    async def run(self, ctx: NodeContext) -> NodeResult:
        assert isinstance(self.config, AnswerConfig)
        text = ctx.pool.render(self.config.text)
        await ctx.emit("answer", {"node_id": self.id, "text": text})
        return NodeResult({"text": text})


class TemplateConfig(NodeConfig):
    template: str = Field(min_length=1)
    max_length: int = Field(default=100_000, ge=1)


class TemplateNode(NodeType):
    """Render a sandboxed Jinja2 template over upstream values."""

    type = "template"
    Config = TemplateConfig

    def outputs(self) -> dict[str, VarType]:
        return {"output": "string"}

    def reads(self) -> Iterator[tuple[str, str, VarType]]:
        assert isinstance(self.config, TemplateConfig)
        return reads_template(self.config.template)

    async def run(self, ctx: NodeContext) -> NodeResult:
        assert isinstance(self.config, TemplateConfig)
        text = ctx.pool.render(self.config.template)
        if len(text) > self.config.max_length:
            raise InvalidRequest(
                f"template {self.id} produced {len(text)} characters, more than "
                f"its max_length {self.config.max_length}"
            )
        return NodeResult({"output": text})


Operator = Literal[
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "is_empty",
    "is_not_empty",
    "gt",
    "gte",
    "lt",
    "lte",
]
_NUMERIC = {"gt", "gte", "lt", "lte"}
_TEXT = {"contains", "not_contains", "starts_with", "ends_with"}


class Condition(NodeConfig):
    selector: str
    operator: Operator
    value: Any = None


class Case(NodeConfig):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    logic: Literal["and", "or"] = "and"
    conditions: list[Condition] = Field(min_length=1)


class IfElseConfig(NodeConfig):
    cases: list[Case] = Field(min_length=1)


def holds(condition: Condition, value: Any) -> bool:
    """Whether ``condition`` holds for ``value`` (also used by the loop node)."""
    op, wanted = condition.operator, condition.value
    if op == "is_empty":
        return value in (None, "", [], {})
    if op == "is_not_empty":
        return value not in (None, "", [], {})
    if op == "equals":
        return bool(value == wanted)
    if op == "not_equals":
        return bool(value != wanted)
    if op in _TEXT:
        text = value if isinstance(value, str | list) else str(value)
        if op == "contains":
            return wanted in text
        if op == "not_contains":
            return wanted not in text
        return (
            str(text).startswith(str(wanted))
            if op == "starts_with"
            else str(text).endswith(str(wanted))
        )
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidRequest(f"{condition.selector} is {value!r}, not a number, for {op!r}")
    number = float(wanted)
    return {
        "gt": value > number,
        "gte": value >= number,
        "lt": value < number,
        "lte": value <= number,
    }[op]


class IfElseNode(NodeType):
    """Take the first case whose conditions hold, or the "false" branch."""

    type = "if_else"
    Config = IfElseConfig
    branching = True

    def outputs(self) -> dict[str, VarType]:
        return {"case": "string"}

    def handles(self) -> set[str]:
        assert isinstance(self.config, IfElseConfig)
        return {case.id for case in self.config.cases} | {"false"}

    def reads(self) -> Iterator[tuple[str, str, VarType]]:
        assert isinstance(self.config, IfElseConfig)
        for case in self.config.cases:
            for condition in case.conditions:
                wanted: VarType = "number" if condition.operator in _NUMERIC else "any"
                yield from reads_selector(condition.selector, wanted)

    async def run(self, ctx: NodeContext) -> NodeResult:
        assert isinstance(self.config, IfElseConfig)
        for case in self.config.cases:
            results = [holds(c, ctx.pool.get(c.selector)) for c in case.conditions]
            if all(results) if case.logic == "and" else any(results):
                return NodeResult({"case": case.id}, handle=case.id)
        return NodeResult({"case": "false"}, handle="false")


class AggregatorConfig(NodeConfig):
    selectors: list[str] = Field(min_length=1)
    type: Literal["string", "number", "integer", "boolean", "object", "array", "any"] = "any"


class VariableAggregatorNode(NodeType):
    """The first of several branch outputs that has a value (joins if/else branches)."""

    type = "variable_aggregator"
    Config = AggregatorConfig

    def outputs(self) -> dict[str, VarType]:
        assert isinstance(self.config, AggregatorConfig)
        return {"output": self.config.type}

    def reads(self) -> Iterator[tuple[str, str, VarType]]:
        assert isinstance(self.config, AggregatorConfig)
        for selector in self.config.selectors:
            yield from reads_selector(selector, self.config.type)

    async def run(self, ctx: NodeContext) -> NodeResult:
        assert isinstance(self.config, AggregatorConfig)
        for selector in self.config.selectors:
            if ctx.pool.has(selector):
                return NodeResult({"output": ctx.pool.get(selector)})
        raise InvalidRequest(f"none of {self.config.selectors} has a value in this run")
