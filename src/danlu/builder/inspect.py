"""What the canvas needs to know about a draft without running it.

The compiler answers "does this graph compile?" with every problem at once; the canvas also
needs each node's outputs and which nodes are upstream of which, so its variable pickers
offer only values that will exist when a node runs. Everything here is computed from the
node types' declarations, never by running a node.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from danlu.builder.compiler import CompileError, Problem, compile_app
from danlu.builder.dsl import AppSpec
from danlu.builder.nodes import NODE_TYPES
from danlu.builder.variables import SYSTEM_VARIABLES, VarType

_EDGE = re.compile(r"^edge (?P<source>\w+)->(?P<target>\w+)(?: \((?P<handle>[^)]*)\))?$")


@dataclass
class Inspection:
    problems: list[Problem] = field(default_factory=list)
    outputs: dict[str, dict[str, VarType]] = field(default_factory=dict)
    upstream: dict[str, list[str]] = field(default_factory=dict)
    conversation: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.problems,
            "problems": [problem_json(p) for p in self.problems],
            "outputs": self.outputs,
            "upstream": self.upstream,
            "system": dict(SYSTEM_VARIABLES),
            "conversation": self.conversation,
        }


def problem_json(problem: Problem) -> dict[str, Any]:
    """A problem with the node or edge it is about, so the canvas can mark it."""
    node = problem.where[len("node ") :] if problem.where.startswith("node ") else None
    edge = None
    found = _EDGE.match(problem.where)
    if found:
        edge = {k: v for k, v in found.groupdict().items()}
    return {"where": problem.where, "node": node, "edge": edge, "message": problem.message}


def inspect_app(spec: AppSpec) -> Inspection:
    """Problems (as the compiler finds them), outputs per node and ancestors per node."""
    found = Inspection(conversation={v.name: v.type for v in spec.variables})
    try:
        compile_app(spec)
    except CompileError as exc:
        found.problems = exc.problems
    for node in spec.graph.nodes:
        node_type = NODE_TYPES.get(node.type)
        if node_type is None:
            continue
        try:
            instance = node_type(node, node_type.Config.model_validate(node.config))
            found.outputs[node.id] = instance.declared_outputs()
        except (ValidationError, ValueError):
            continue  # the compiler has already named the bad config
    incoming: dict[str, set[str]] = defaultdict(set)
    for edge in spec.graph.edges:
        incoming[edge.target].add(edge.source)
    for node in spec.graph.nodes:
        seen: set[str] = set()
        todo = list(incoming[node.id])
        while todo:
            current = todo.pop()
            if current in seen or current == node.id:
                continue
            seen.add(current)
            todo.extend(incoming[current])
        found.upstream[node.id] = sorted(seen)
    return found


@functools.cache
def node_catalog() -> list[dict[str, Any]]:
    """Every node type with its config's JSON schema and defaults, for the palette.

    Built once per process: node types are registered at import time. Callers must not
    change what it returns."""
    catalog = []
    for type_name, node_type in NODE_TYPES.items():
        schema = node_type.Config.model_json_schema()
        try:
            defaults = node_type.Config().model_dump(mode="json", exclude_none=True)
        except ValidationError:
            defaults = None  # required fields: the canvas fills them in
        catalog.append(
            {
                "type": type_name,
                "branching": node_type.branching,
                "config_schema": schema,
                "default_config": defaults,
                "doc": (node_type.__doc__ or "").strip().split("\n\n")[0],
            }
        )
    return catalog
