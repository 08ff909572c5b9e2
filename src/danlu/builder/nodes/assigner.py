"""The variable assigner: set conversation variables that later turns (and nodes) read.

Conversation variables are declared in the app (``variables:``), read as
``{{ conv.name }}``, and kept per conversation by chat apps, so an app can
remember a user's name, a cart, a game's state across turns.
"""

from __future__ import annotations

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
from danlu.builder.variables import CONVERSATION, VarType
from danlu.core.errors import InvalidRequest


class Assignment(NodeConfig):
    variable: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    operation: Literal["set", "append", "clear", "increment"] = "set"
    value: str | None = None  # a template (for strings)
    selector: str | None = None  # or a selector (keeps the value's type)
    amount: float = 1


class AssignerConfig(NodeConfig):
    assignments: list[Assignment] = Field(min_length=1)


class VariableAssignerNode(NodeType):
    type = "assigner"
    Config = AssignerConfig

    def outputs(self) -> dict[str, VarType]:
        return {}

    def reads(self) -> Iterator[tuple[str, str, VarType]]:
        assert isinstance(self.config, AssignerConfig)
        for item in self.config.assignments:
            yield CONVERSATION, item.variable, "any"
            if item.selector:
                yield from reads_selector(item.selector)
            elif item.value:
                yield from reads_template(item.value)

    async def run(self, ctx: NodeContext) -> NodeResult:
        assert isinstance(self.config, AssignerConfig)
        current = ctx.pool.outputs(CONVERSATION)
        for item in self.config.assignments:
            value: Any = None
            if item.selector:
                value = ctx.pool.get(item.selector)
            elif item.value is not None:
                value = ctx.pool.render(item.value)
            old = current.get(item.variable)
            if item.operation == "set":
                current[item.variable] = value
            elif item.operation == "clear":
                current[item.variable] = [] if isinstance(old, list) else None
            elif item.operation == "append":
                current[item.variable] = [*(old if isinstance(old, list) else []), value]
            else:
                if not isinstance(old, int | float) or isinstance(old, bool):
                    raise InvalidRequest(f"{self.id}: conv.{item.variable} is not a number")
                current[item.variable] = old + (
                    int(item.amount)
                    if isinstance(old, int) and float(item.amount).is_integer()
                    else item.amount
                )
        ctx.pool.set_outputs(CONVERSATION, current)
        return NodeResult({})
