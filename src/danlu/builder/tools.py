"""Tools an agent may call: built-ins now (time, calculator, guarded HTTP fetch).

A tool is a name, a description, a JSON Schema for its arguments, and an async
``call``. Tools from OpenAPI specs and other published apps follow the same
contract (see the builder issue's closing note for what is still to come).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from danlu.builder.ssrf import Network, guarded_request
from danlu.core.errors import InvalidRequest


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    call: Callable[[dict[str, Any]], Awaitable[str]]


async def _current_time(arguments: dict[str, Any]) -> str:
    zone = str(arguments.get("timezone") or "Asia/Shanghai")
    try:
        return datetime.now(ZoneInfo(zone)).isoformat(timespec="seconds")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest(f"unknown time zone {zone!r}") from None


_OPERATORS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def calculate(expression: str) -> float | int:
    """Arithmetic only: numbers, + - * / // % **, parentheses. No names, no calls."""
    if len(expression) > 200:
        raise InvalidRequest("the expression is longer than 200 characters")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        raise InvalidRequest(f"{expression!r} is not an arithmetic expression") from None

    def value(node: ast.AST) -> float | int:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, int | float)
            and not isinstance(node.value, bool)
        ):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Pow) and (abs(right) > 100 or abs(left) > 1e6):
                raise InvalidRequest("the power is too large")
            result: float | int = _OPERATORS[type(node.op)](left, right)
            return result
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            unary: float | int = _OPERATORS[type(node.op)](value(node.operand))
            return unary
        raise InvalidRequest(f"{expression!r} may only hold numbers and + - * / // % **")

    try:
        return value(tree)
    except ZeroDivisionError:
        raise InvalidRequest("division by zero") from None


async def _calculator(arguments: dict[str, Any]) -> str:
    return str(calculate(str(arguments.get("expression", ""))))


def builtin_tools(http_allow: list[Network]) -> dict[str, Tool]:
    async def http_fetch(arguments: dict[str, Any]) -> str:
        response = await guarded_request(
            "GET",
            str(arguments.get("url", "")),
            allow=http_allow,
            headers={},
            content=None,
            timeout_seconds=15,
            max_bytes=200_000,
        )
        return f"HTTP {response.status_code}\n{response.text[:4000]}"

    return {
        "current_time": Tool(
            "current_time",
            "The current date and time in a time zone.",
            {"type": "object", "properties": {"timezone": {"type": "string"}}},
            _current_time,
        ),
        "calculator": Tool(
            "calculator",
            "Evaluate an arithmetic expression exactly.",
            {
                "type": "object",
                "properties": {"expression": {"type": "string"}},
                "required": ["expression"],
            },
            _calculator,
        ),
        "http_fetch": Tool(
            "http_fetch",
            "Fetch a public web page or API by URL (GET).",
            {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]},
            http_fetch,
        ),
    }
