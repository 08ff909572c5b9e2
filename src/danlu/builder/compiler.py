"""Compile: check a whole app graph before anything runs, and plan its execution.

Every problem is reported at once, each naming the node or edge at fault:
unknown node types, bad configs, dangling or duplicate edges, branch handles a
node does not have, cycles, unreachable nodes, references to variables that do
not exist upstream, and type mismatches. A graph that compiles has one start
node, a way out, and every value it reads is produced before it is read.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from pydantic import ValidationError

from danlu.builder.dsl import AppSpec, Edge, parse_app
from danlu.builder.nodes import NODE_TYPES
from danlu.builder.nodes.base import NodeType
from danlu.builder.variables import (
    CONVERSATION,
    SYSTEM,
    SYSTEM_VARIABLES,
    TemplateError,
    compatible,
)
from danlu.core.errors import InvalidRequest

ERROR_HANDLE = "error"


@dataclass(frozen=True)
class Problem:
    where: str  # "node llm1", "edge start->end", "graph"
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class CompileError(InvalidRequest):
    """The graph is invalid; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem]):
        listed = "; ".join(str(p) for p in problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__(f"the app does not compile: {listed}{more}", code="compile_error")
        self.problems = problems


@dataclass
class Plan:
    """A compiled app: node instances, wiring, and a topological order."""

    spec: AppSpec
    nodes: dict[str, NodeType]
    incoming: dict[str, list[Edge]] = field(default_factory=dict)
    outgoing: dict[str, list[Edge]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    start: str = ""

    @property
    def start_node(self) -> NodeType:
        return self.nodes[self.start]


def compile_app(spec: AppSpec) -> Plan:
    problems: list[Problem] = []
    nodes: dict[str, NodeType] = {}
    for node in spec.graph.nodes:
        where = f"node {node.id}"
        if node.id in nodes or node.id in (SYSTEM, CONVERSATION):
            problems.append(
                Problem(
                    where,
                    "duplicate node id"
                    if node.id in nodes
                    else f"'{node.id}' is reserved for system and conversation variables",
                )
            )
            continue
        node_type = NODE_TYPES.get(node.type)
        if node_type is None:
            problems.append(
                Problem(
                    where,
                    f"unknown node type {node.type!r}; known types: "
                    f"{', '.join(sorted(NODE_TYPES))}",
                )
            )
            continue
        try:
            config = node_type.Config.model_validate(node.config)
        except ValidationError as exc:
            first = exc.errors()[0]
            at = ".".join(str(p) for p in first["loc"])
            problems.append(Problem(where, f"config {at}: {first['msg']}"))
            continue
        instance = node_type(node, config)
        nested = instance.subgraph()
        if nested is not None:
            try:
                instance.sub_plan = compile_app(parse_app(nested))
            except InvalidRequest as exc:
                problems.append(Problem(where, f"sub-graph: {exc.message}"))
                continue
        problems += [Problem(where, message) for message in instance.problems()]
        nodes[node.id] = instance

    plan = Plan(spec, nodes)
    plan.incoming = defaultdict(list)
    plan.outgoing = defaultdict(list)
    seen_edges: set[tuple[str, str, str | None]] = set()
    known_ids = {n.id for n in spec.graph.nodes}
    for edge in spec.graph.edges:
        where = f"edge {edge.source}->{edge.target}" + (f" ({edge.handle})" if edge.handle else "")
        missing = [end for end in (edge.source, edge.target) if end not in known_ids]
        if missing:
            problems.append(Problem(where, f"dangling: no node {missing[0]!r}"))
            continue
        if edge.source == edge.target:
            problems.append(Problem(where, "a node cannot connect to itself"))
            continue
        key = (edge.source, edge.target, edge.handle)
        if key in seen_edges:
            problems.append(Problem(where, "duplicate edge"))
            continue
        seen_edges.add(key)
        source = nodes.get(edge.source)
        if source is not None:
            problems += _check_handle(source, edge, where)
        plan.outgoing[edge.source].append(edge)
        plan.incoming[edge.target].append(edge)

    starts = [n for n in nodes.values() if n.type == "start"]
    if len(starts) != 1:
        problems.append(Problem("graph", f"needs exactly one start node, has {len(starts)}"))
    else:
        plan.start = starts[0].id
        if plan.incoming.get(plan.start):
            problems.append(
                Problem(f"node {plan.start}", "the start node cannot have incoming edges")
            )
    exits = {"end", "answer"}
    if not any(n.type in exits for n in nodes.values()):
        problems.append(Problem("graph", "needs an end node (workflow) or an answer node (chat)"))

    cycle = _find_cycle(list(known_ids), plan.outgoing)
    if cycle:
        problems.append(
            Problem(
                "graph", f"cycle {' -> '.join(cycle)}; loops belong in a loop or iteration node"
            )
        )
    elif plan.start:
        plan.order = _topological(list(known_ids), plan.outgoing, plan.incoming)
        reachable = _reachable(plan.start, plan.outgoing)
        for node_id in plan.order:
            if node_id not in reachable:
                problems.append(Problem(f"node {node_id}", "unreachable from the start node"))
        problems += _check_references(plan, reachable)
    if problems:
        raise CompileError(problems)
    return plan


def _check_handle(source: NodeType, edge: Edge, where: str) -> list[Problem]:
    if edge.handle == ERROR_HANDLE:
        if source.node.errors.on_error != "branch":
            return [
                Problem(
                    where,
                    f"{source.id} has no error branch; set its errors.on_error "
                    "to 'branch' to use one",
                )
            ]
        return []
    if source.branching:
        if edge.handle not in source.handles():
            return [
                Problem(
                    where,
                    f"{source.id} has branches {sorted(source.handles())}, not {edge.handle!r}",
                )
            ]
    elif edge.handle is not None:
        return [Problem(where, f"{source.id} does not branch; remove handle {edge.handle!r}")]
    return []


def _find_cycle(ids: list[str], outgoing: dict[str, list[Edge]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node_id: str) -> list[str] | None:
        state[node_id] = 1
        stack.append(node_id)
        for edge in outgoing.get(node_id, []):
            if state.get(edge.target) == 1:
                return [*stack[stack.index(edge.target) :], edge.target]
            if edge.target not in state and (found := visit(edge.target)):
                return found
        stack.pop()
        state[node_id] = 2
        return None

    for node_id in sorted(ids):
        if node_id not in state and (found := visit(node_id)):
            return found
    return None


def _topological(
    ids: list[str], outgoing: dict[str, list[Edge]], incoming: dict[str, list[Edge]]
) -> list[str]:
    remaining = {node_id: len({e.source for e in incoming.get(node_id, [])}) for node_id in ids}
    ready = sorted(n for n, count in remaining.items() if count == 0)
    order: list[str] = []
    while ready:
        node_id = ready.pop(0)
        order.append(node_id)
        for target in sorted({e.target for e in outgoing.get(node_id, [])}):
            remaining[target] -= 1
            if remaining[target] == 0:
                ready.append(target)
    return order


def _reachable(start: str, outgoing: dict[str, list[Edge]]) -> set[str]:
    seen = {start}
    frontier = [start]
    while frontier:
        for edge in outgoing.get(frontier.pop(), []):
            if edge.target not in seen:
                seen.add(edge.target)
                frontier.append(edge.target)
    return seen


def _ancestors(node_id: str, incoming: dict[str, list[Edge]]) -> set[str]:
    seen: set[str] = set()
    frontier = [node_id]
    while frontier:
        for edge in incoming.get(frontier.pop(), []):
            if edge.source not in seen:
                seen.add(edge.source)
                frontier.append(edge.source)
    return seen


def _check_references(plan: Plan, reachable: set[str]) -> list[Problem]:
    problems = []
    for node_id in plan.order:
        node = plan.nodes.get(node_id)
        if node is None or node_id not in reachable:
            continue
        upstream = _ancestors(node_id, plan.incoming)
        try:
            reads = list(node.reads())
        except (TemplateError, InvalidRequest) as exc:
            problems.append(Problem(f"node {node_id}", exc.message))
            continue
        for source, name, wanted in reads:
            ref = f"{source}.{name}"
            if source == CONVERSATION:
                declared_vars = {v.name: v.type for v in plan.spec.variables}
                if name not in declared_vars:
                    problems.append(
                        Problem(
                            f"node {node_id}",
                            f"{ref}: the app declares no conversation variable {name!r}",
                        )
                    )
                elif not compatible(declared_vars[name], wanted):
                    problems.append(
                        Problem(
                            f"node {node_id}",
                            f"{ref} is a {declared_vars[name]}, but {node_id} needs a {wanted}",
                        )
                    )
                continue
            if source == SYSTEM:
                if name not in SYSTEM_VARIABLES:
                    problems.append(
                        Problem(
                            f"node {node_id}",
                            f"{ref}: no such system variable; there are {sorted(SYSTEM_VARIABLES)}",
                        )
                    )
                continue
            if source not in plan.nodes:
                problems.append(Problem(f"node {node_id}", f"{ref}: there is no node {source!r}"))
                continue
            if source not in upstream:
                problems.append(
                    Problem(
                        f"node {node_id}",
                        f"{ref}: {source} is not upstream of "
                        f"{node_id}, so its value does not exist yet",
                    )
                )
                continue
            declared = plan.nodes[source].declared_outputs()
            if name not in declared:
                problems.append(
                    Problem(
                        f"node {node_id}",
                        f"{ref}: {source} has no output {name!r}; it has {sorted(declared)}",
                    )
                )
                continue
            if not compatible(declared[name], wanted):
                problems.append(
                    Problem(
                        f"node {node_id}",
                        f"{ref} is a {declared[name]}, but {node_id} needs a {wanted}",
                    )
                )
    return problems
