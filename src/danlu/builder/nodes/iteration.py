"""The iteration node: run a sub-graph once per item of an array, several at a time.

The sub-graph is a complete little app. Its start node receives ``item`` and
``index``, plus the parent's values named in ``inputs``; the node collects one
of the sub-graph's outputs (``output``, e.g. ``done.result``) per item, in the
items' order. The compiler compiles the sub-graph with the rest of the app.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, Literal

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
from danlu.builder.variables import VarType, selector_parts
from danlu.core.errors import InvalidRequest

MAX_ITEMS = 1000


class IterationConfig(NodeConfig):
    items: str  # a selector to an array in the parent
    graph: Graph
    output: str  # a selector inside the sub-graph
    inputs: dict[str, str] = Field(default_factory=dict)  # name -> selector in the parent
    parallelism: int = Field(default=1, ge=1, le=16)
    on_item_error: Literal["fail", "skip"] = "fail"


class IterationNode(NodeType):
    type = "iteration"
    Config = IterationConfig

    def subgraph(self) -> dict[str, Any]:
        assert isinstance(self.config, IterationConfig)
        inputs: dict[str, VarType] = {"item": "any", "index": "integer"}
        inputs.update({name: "any" for name in self.config.inputs})
        return nested_spec(f"{self.id} (iteration)", self.config.graph, inputs)

    def problems(self) -> list[str]:
        assert isinstance(self.config, IterationConfig)
        head, name = selector_parts(self.config.output)
        nested = self.sub_plan.nodes if self.sub_plan is not None else {}
        if head not in nested or name not in nested[head].declared_outputs():
            return [f"output {self.config.output!r} is not an output of its sub-graph"]
        return []

    def outputs(self) -> dict[str, VarType]:
        return {"results": "array", "count": "integer"}

    def reads(self) -> Iterator[tuple[str, str, VarType]]:
        assert isinstance(self.config, IterationConfig)
        yield from reads_selector(self.config.items, "array")
        for selector in self.config.inputs.values():
            yield from reads_selector(selector)

    async def run(self, ctx: NodeContext) -> NodeResult:
        assert isinstance(self.config, IterationConfig) and ctx.run_subgraph is not None
        config, run_subgraph = self.config, ctx.run_subgraph
        items = ctx.pool.get(config.items)
        if not isinstance(items, list):
            raise InvalidRequest(f"{self.id}: {config.items} is not an array")
        if len(items) > MAX_ITEMS:
            raise InvalidRequest(f"{self.id}: {len(items)} items, more than {MAX_ITEMS}")
        passed = {name: ctx.pool.get(selector) for name, selector in config.inputs.items()}
        head, name = selector_parts(config.output)
        gate = asyncio.Semaphore(config.parallelism)

        async def one(index: int, item: Any) -> Any:
            async with gate:
                record = await run_subgraph(self.sub_plan, {"item": item, "index": index, **passed})
            await ctx.emit(
                "iteration_item",
                {
                    "node_id": self.id,
                    "index": index,
                    "status": record.status,
                    "error": record.error,
                },
            )
            if record.status != "succeeded":
                if config.on_item_error == "skip":
                    return None
                raise InvalidRequest(f"{self.id}: item {index} failed: {record.error}")
            for finished in record.nodes:
                if finished.get("node_id") == head:
                    return (finished.get("outputs") or {}).get(name)
            return None

        results = await asyncio.gather(*(one(i, item) for i, item in enumerate(items)))
        return NodeResult({"results": list(results), "count": len(results)})
