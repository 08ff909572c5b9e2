"""The node contract: a node type declares its config, outputs, reads and branches, and runs.

Adding a node type is one subclass of :class:`NodeType` registered in
``nodes/__init__.py`` (plugins use the same registry). Everything the compiler
needs — declared outputs with types, the variables the node reads, the branch
handles it may take — is answered without running anything.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from danlu.builder.dsl import Graph, Node
from danlu.builder.variables import VariablePool, VarType, selector_parts, template_references


class NodeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class NodeResult:
    outputs: dict[str, Any]
    # The branch taken, for nodes with several outgoing handles.
    handle: str | None = None
    usage: dict[str, int] = field(default_factory=dict)


Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass
class NodeContext:
    """What a running node may use: the pool, the services, and a way to stream events."""

    pool: VariablePool
    services: Any  # builder.runtime.EngineServices; Any keeps nodes free of import cycles
    emit: Emit
    run_id: str
    owner: str
    # Runs a compiled nested graph (iteration, loop) with inputs; returns its RunRecord.
    run_subgraph: Callable[[Any, dict[str, Any]], Awaitable[Any]] | None = None


class NodeType(ABC):
    type: ClassVar[str]
    Config: ClassVar[builtins.type[NodeConfig]]
    # Branching nodes name their handles; others have a single unnamed way out.
    branching: ClassVar[bool] = False

    def __init__(self, node: Node, config: NodeConfig):
        self.node = node
        self.config = config

    @property
    def id(self) -> str:
        return self.node.id

    @abstractmethod
    def outputs(self) -> dict[str, VarType]:
        """Declared outputs and their types (what ``{{ id.name }}`` may read)."""

    def declared_outputs(self) -> dict[str, VarType]:
        """The outputs plus ``error`` for nodes whose failures take their error branch."""
        declared = dict(self.outputs())
        if self.node.errors.on_error == "branch":
            declared["error"] = "string"
        return declared

    def reads(self) -> Iterator[tuple[str, str, VarType]]:
        """(node_id, output, expected type) this node reads; the compiler checks each."""
        return iter(())

    # Set by the compiler for nodes that hold a nested graph (see :meth:`subgraph`).
    sub_plan: Any = None

    def subgraph(self) -> dict[str, Any] | None:
        """A nested app spec (as a dict) the compiler should compile, or None."""
        return None

    def problems(self) -> list[str]:
        """Problems inside the node itself, found at compile time (after ``sub_plan`` is set)."""
        return []

    def handles(self) -> set[str]:
        """Branch handles a branching node may take."""
        return set()

    @abstractmethod
    async def run(self, ctx: NodeContext) -> NodeResult:
        """Do the work; raise a DanluError with a clear message on failure."""


def nested_spec(label: str, graph: Graph, inputs: dict[str, VarType]) -> dict[str, Any]:
    """An app spec for a nested graph whose start node takes ``inputs`` (all optional)."""
    given = [{"name": name, "type": kind, "required": False} for name, kind in inputs.items()]
    nodes = []
    for node in graph.nodes:
        data = node.model_dump(exclude_none=True)
        if node.type == "start":
            data["config"] = {"inputs": given}
        nodes.append(data)
    return {
        "schema": "danlu.app/v1",
        "app": {"name": label},
        "graph": {"nodes": nodes, "edges": [e.model_dump(exclude_none=True) for e in graph.edges]},
    }


def reads_template(source: str) -> Iterator[tuple[str, str, VarType]]:
    for node_id, name in template_references(source):
        yield node_id, name, "any"


def reads_selector(selector: str, wanted: VarType = "any") -> Iterator[tuple[str, str, VarType]]:
    node_id, name = selector_parts(selector)
    yield node_id, name, wanted
