"""The loop node: run a sub-graph again and again, carrying state, until a condition holds.

Each round's sub-graph start receives the loop's ``state`` (initial values from
the parent, then the values the previous round produced, mapped by ``carry``)
and ``round``. The loop stops when ``until`` holds for a round's outputs, or
fails when ``max_rounds`` is reached without it (a loop must not run forever).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field

from danlu.builder.dsl import Graph
from danlu.builder.nodes.base import (
    NodeConfig,
    NodeContext,
    NodeResult,
    NodeType,
    nested_spec,
    reads_selector,
)
from danlu.builder.nodes.flow import Condition, holds
from danlu.builder.variables import VarType, selector_parts
from danlu.core.errors import InvalidRequest


class LoopConfig(NodeConfig):
    graph: Graph
    state: dict[str, str] = Field(default_factory=dict)  # name -> initial selector in the parent
    carry: dict[str, str] = Field(default_factory=dict)  # name -> selector inside the sub-graph
    until: list[Condition] = Field(min_length=1)  # selectors inside the sub-graph, all must hold
    max_rounds: int = Field(default=10, ge=1, le=1000)


class LoopNode(NodeType):
    type = "loop"
    Config = LoopConfig

    def subgraph(self) -> dict[str, Any]:
        assert isinstance(self.config, LoopConfig)
        inputs: dict[str, VarType] = {"round": "integer"}
        inputs.update({name: "any" for name in self.config.state})
        return nested_spec(f"{self.id} (loop)", self.config.graph, inputs)

    def problems(self) -> list[str]:
        assert isinstance(self.config, LoopConfig)
        nested = self.sub_plan.nodes if self.sub_plan is not None else {}
        found = []
        unknown = sorted(set(self.config.carry) - set(self.config.state))
        if unknown:
            found.append(f"carry names {unknown} that are not in state")
        selectors = [*self.config.carry.values(), *(c.selector for c in self.config.until)]
        for selector in selectors:
            head, name = selector_parts(selector)
            if head not in nested or name not in nested[head].declared_outputs():
                found.append(f"{selector!r} is not an output of its sub-graph")
        return found

    def outputs(self) -> dict[str, VarType]:
        assert isinstance(self.config, LoopConfig)
        return {"rounds": "integer", **{name: "any" for name in self.config.state}}

    def reads(self) -> Iterator[tuple[str, str, VarType]]:
        assert isinstance(self.config, LoopConfig)
        for selector in self.config.state.values():
            yield from reads_selector(selector)

    async def run(self, ctx: NodeContext) -> NodeResult:
        assert isinstance(self.config, LoopConfig) and ctx.run_subgraph is not None
        config = self.config
        state = {name: ctx.pool.get(selector) for name, selector in config.state.items()}
        for number in range(1, config.max_rounds + 1):
            record = await ctx.run_subgraph(self.sub_plan, {"round": number, **state})
            if record.status != "succeeded":
                raise InvalidRequest(f"{self.id}: round {number} failed: {record.error}")
            produced = {
                f"{n['node_id']}.{key}": value
                for n in record.nodes
                for key, value in (n.get("outputs") or {}).items()
            }
            for name, selector in config.carry.items():
                if selector in produced:
                    state[name] = produced[selector]
            await ctx.emit("loop_round", {"node_id": self.id, "round": number, "state": state})
            if all(holds(c, produced.get(c.selector)) for c in config.until):
                return NodeResult({"rounds": number, **state})
        raise InvalidRequest(
            f"{self.id}: the condition did not hold after {config.max_rounds} "
            "rounds (raise max_rounds, or check the condition)"
        )
