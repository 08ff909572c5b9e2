"""Variables: the run's pool of node outputs, selectors and sandboxed templates.

Nodes read upstream values by selector (``node_id.output``, or ``sys.query``)
or inside templates (``{{ node_id.output }}``). Templates are Jinja2 in an
immutable sandbox with strict undefined, so a typo is an error, not an empty
string, and a template cannot reach Python internals.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, Literal

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from danlu.core.errors import InvalidRequest

VarType = Literal["string", "number", "integer", "boolean", "object", "array", "any"]
SYSTEM = "sys"
CONVERSATION = "conv"  # conversation variables, declared in the app and set by assigners
SYSTEM_VARIABLES: dict[str, VarType] = {
    "query": "string",
    "user": "string",
    "conversation_id": "string",
    "run_id": "string",
    "app_id": "string",
    "timestamp": "integer",
    "files": "array",
    # Earlier turns of a chat conversation: [{"role": ..., "content": ...}, ...]
    "history": "array",
}
_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


class TemplateError(InvalidRequest):
    """A template that does not parse, reads an unknown variable, or breaks the sandbox."""


def selector_parts(selector: str) -> tuple[str, str]:
    head, dot, tail = selector.partition(".")
    if not dot or not head or not tail or "." in tail:
        raise InvalidRequest(
            f"selector {selector!r} must look like node_id.output (or sys.query)", param="selector"
        )
    return head, tail


@functools.lru_cache(maxsize=4096)
def _compiled(source: str) -> Template:
    """Templates are compiled once per process: the sandbox's templates are immutable."""
    return _ENV.from_string(source)


@functools.lru_cache(maxsize=4096)
def _parsed(source: str) -> nodes.Template:
    return _ENV.parse(source)


def template_references(source: str) -> Iterator[tuple[str, str]]:
    """Every ``name.attribute`` a template reads (for the compiler's checks)."""
    try:
        tree = _parsed(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template error on line {exc.lineno}: {exc.message}") from None
    # Loop variables and {% set %} names are the template's own, not node outputs.
    local = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    if any(True for _ in tree.find_all(nodes.For)):
        local.add("loop")  # Jinja's implicit loop variable
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name not in local:
            yield node.node.name, node.attr
    for item in tree.find_all(nodes.Getitem):
        if (
            isinstance(item.node, nodes.Name)
            and isinstance(item.arg, nodes.Const)
            and item.node.name not in local
        ):
            yield item.node.name, str(item.arg.value)


def template_names(source: str) -> set[str]:
    """Bare names a template reads (loop variables excluded)."""
    tree = _parsed(source)
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    return {n.name for n in tree.find_all(nodes.Name) if n.ctx == "load"} - assigned


class VariablePool:
    """Outputs by node id, plus the run's system variables."""

    def __init__(self, system: dict[str, Any]):
        self._values: dict[str, dict[str, Any]] = {SYSTEM: dict(system)}

    def set_outputs(self, node_id: str, outputs: dict[str, Any]) -> None:
        self._values[node_id] = dict(outputs)

    def outputs(self, node_id: str) -> dict[str, Any]:
        return dict(self._values.get(node_id, {}))

    def get(self, selector: str) -> Any:
        node_id, name = selector_parts(selector)
        try:
            return self._values[node_id][name]
        except KeyError:
            raise InvalidRequest(f"{selector} has no value in this run", param="selector") from None

    def has(self, selector: str) -> bool:
        node_id, name = selector_parts(selector)
        return name in self._values.get(node_id, {})

    def render(self, source: str, extra: dict[str, Any] | None = None) -> str:
        """Render a template against the pool (and ``extra`` names)."""
        # A shallow merge, not a copy of every output: the sandbox cannot mutate values.
        context: dict[str, Any] = {**self._values, **(extra or {})}
        try:
            return _compiled(source).render(context)
        except UndefinedError as exc:
            raise TemplateError(f"template reads a value this run does not have: {exc}") from None
        except SecurityError as exc:
            raise TemplateError(f"template tried something the sandbox forbids: {exc}") from None
        except TemplateSyntaxError as exc:
            raise TemplateError(f"template error on line {exc.lineno}: {exc.message}") from None


def type_of(value: Any) -> VarType:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "any"


def compatible(actual: VarType, wanted: VarType) -> bool:
    """Whether a value of type ``actual`` may flow where ``wanted`` is expected."""
    if "any" in (actual, wanted) or actual == wanted:
        return True
    return actual == "integer" and wanted == "number"
