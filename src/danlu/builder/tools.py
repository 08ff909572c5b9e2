"""Tools an agent may call: built-ins now (time, calculator, guarded HTTP fetch).

A tool is a name, a description, a JSON Schema for its arguments, and an async
``call``. Tools from OpenAPI specs and other published apps follow the same
contract (see the builder issue's closing note for what is still to come).
"""

from __future__ import annotations

import ast
import json
import operator
import urllib.parse
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


def openapi_tools(
    spec: dict[str, Any], http_allow: list[Network], only: list[str] | None = None
) -> dict[str, Tool]:
    """One tool per operation of an OpenAPI 3 document (JSON), called behind the SSRF guard."""
    servers = spec.get("servers") or []
    if not servers or not isinstance(servers[0], dict) or not servers[0].get("url"):
        raise InvalidRequest("the OpenAPI spec needs servers[0].url", param="openapi")
    base = str(servers[0]["url"]).rstrip("/")
    tools: dict[str, Tool] = {}
    for path, item in (spec.get("paths") or {}).items():
        for method, operation in (item or {}).items():
            if method.lower() not in ("get", "post", "put", "patch", "delete"):
                continue
            name = str(operation.get("operationId") or f"{method}_{path}".strip("/"))
            name = "".join(c if c.isalnum() or c == "_" else "_" for c in name)[:64]
            if only and name not in only:
                continue
            tools[name] = _operation_tool(name, base, path, method.upper(), operation, http_allow)
    if only and set(only) - set(tools):
        raise InvalidRequest(
            f"the OpenAPI spec has no operation(s) {sorted(set(only) - set(tools))}",
            param="openapi",
        )
    return tools


def _operation_tool(
    name: str,
    base: str,
    path: str,
    method: str,
    operation: dict[str, Any],
    http_allow: list[Network],
) -> Tool:
    params = [p for p in operation.get("parameters") or [] if isinstance(p, dict)]
    properties: dict[str, Any] = {
        str(p["name"]): dict(p.get("schema") or {"type": "string"}) for p in params if "name" in p
    }
    body_schema = (
        ((operation.get("requestBody") or {}).get("content") or {})
        .get("application/json", {})
        .get("schema")
    )
    if isinstance(body_schema, dict):
        properties["body"] = body_schema
    schema = {
        "type": "object",
        "properties": properties,
        "required": [str(p["name"]) for p in params if p.get("required") and "name" in p],
    }

    async def call(arguments: dict[str, Any]) -> str:
        url = base + path
        query: dict[str, str] = {}
        for p in params:
            value = arguments.get(str(p.get("name")))
            if value is None:
                continue
            if p.get("in") == "path":
                url = url.replace(
                    "{" + str(p["name"]) + "}", urllib.parse.quote(str(value), safe="")
                )
            elif p.get("in") == "query":
                query[str(p["name"])] = str(value)
        if query:
            url += "?" + urllib.parse.urlencode(query)
        content = json.dumps(arguments["body"]).encode() if "body" in arguments else None
        headers = {"Content-Type": "application/json"} if content is not None else {}
        response = await guarded_request(
            method,
            url,
            allow=http_allow,
            headers=headers,
            content=content,
            timeout_seconds=30,
            max_bytes=500_000,
        )
        return f"HTTP {response.status_code}\n{response.text[:4000]}"

    return Tool(
        name, str(operation.get("summary") or operation.get("description") or name), schema, call
    )
