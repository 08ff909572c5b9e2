"""The code node: user Python, run in the sandbox (a separate, locked-down process)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field

from danlu.builder.nodes.base import NodeConfig, NodeContext, NodeResult, NodeType, reads_selector
from danlu.builder.sandbox import SandboxLimits, run_code
from danlu.builder.variables import VarType, compatible, type_of
from danlu.core.errors import InvalidRequest


class CodeInput(NodeConfig):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    selector: str


class CodeConfig(NodeConfig):
    code: str = Field(min_length=1, max_length=100_000)
    inputs: list[CodeInput] = Field(default_factory=list)
    outputs: dict[
        str, Literal["string", "number", "integer", "boolean", "object", "array", "any"]
    ] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=10, gt=0, le=120)
    memory_mb: int = Field(default=256, ge=32, le=4096)


class CodeNode(NodeType):
    """``def main(**inputs) -> dict``, checked against the declared outputs."""

    type = "code"
    Config = CodeConfig

    def outputs(self) -> dict[str, VarType]:
        assert isinstance(self.config, CodeConfig)
        return dict(self.config.outputs)

    def reads(self) -> Iterator[tuple[str, str, VarType]]:
        assert isinstance(self.config, CodeConfig)
        for item in self.config.inputs:
            yield from reads_selector(item.selector)

    async def run(self, ctx: NodeContext) -> NodeResult:
        assert isinstance(self.config, CodeConfig)
        config = self.config
        inputs = {item.name: ctx.pool.get(item.selector) for item in config.inputs}
        limits = SandboxLimits(
            wall_seconds=config.timeout_seconds,
            cpu_seconds=max(1, int(config.timeout_seconds)),
            memory_bytes=config.memory_mb * 1024 * 1024,
        )
        result = await run_code(config.code, inputs, limits)
        outputs = result.outputs
        missing = sorted(set(config.outputs) - set(outputs))
        if missing:
            raise InvalidRequest(f"{self.id}: main() did not return {missing}")
        for name, wanted in config.outputs.items():
            actual = type_of(outputs[name])
            if not compatible(actual, wanted):
                raise InvalidRequest(f"{self.id}: output {name!r} is a {actual}, declared {wanted}")
        if result.stdout:
            await ctx.emit("node_log", {"node_id": self.id, "stdout": result.stdout})
        return NodeResult({name: outputs[name] for name in config.outputs})
