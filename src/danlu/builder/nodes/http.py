"""The HTTP request node: call an outside API from an app, behind the SSRF guard."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from danlu.builder.nodes.base import NodeConfig, NodeContext, NodeResult, NodeType, reads_template
from danlu.builder.ssrf import guarded_request
from danlu.builder.variables import VarType


class HttpConfig(NodeConfig):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: str = Field(min_length=1)  # a template
    headers: dict[str, str] = Field(default_factory=dict)  # values are templates
    body: str | None = None  # a template
    timeout_seconds: float = Field(default=30, gt=0, le=300)
    max_response_bytes: int = Field(default=2_000_000, ge=1, le=50_000_000)


class HttpRequestNode(NodeType):
    type = "http_request"
    Config = HttpConfig

    def outputs(self) -> dict[str, VarType]:
        return {"status_code": "integer", "body": "string", "json": "any", "headers": "object"}

    def reads(self) -> Iterator[tuple[str, str, VarType]]:
        assert isinstance(self.config, HttpConfig)
        for template in [self.config.url, self.config.body or "", *self.config.headers.values()]:
            yield from reads_template(template)

    async def run(self, ctx: NodeContext) -> NodeResult:
        assert isinstance(self.config, HttpConfig)
        config = self.config
        url = ctx.pool.render(config.url).strip()
        headers = {k: ctx.pool.render(v) for k, v in config.headers.items()}
        body = ctx.pool.render(config.body).encode() if config.body is not None else None
        response = await guarded_request(
            config.method,
            url,
            allow=ctx.services.http_allow,
            headers=headers,
            content=body,
            timeout_seconds=config.timeout_seconds,
            max_bytes=config.max_response_bytes,
        )
        text = response.content.decode("utf-8", "replace")
        parsed: Any = None
        if "json" in response.headers.get("content-type", ""):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        return NodeResult(
            {
                "status_code": response.status_code,
                "body": text,
                "json": parsed,
                "headers": dict(response.headers),
            }
        )
