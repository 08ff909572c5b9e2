"""Run a compiled app: nodes as soon as their inputs are ready, branches in parallel.

The runtime is a small state machine over edges. Each edge is pending, taken
or skipped. A node becomes ready when none of its incoming edges is pending;
it runs if at least one was taken, and is skipped (skipping its own outgoing
edges) otherwise. Branching nodes take the edges of the handle they chose.
Ready nodes run concurrently as asyncio tasks, so parallel branches overlap
(LLM calls, HTTP, code). Everything observable is an event on one stream:
run and node start/finish with timings, streamed text, and the final result.

Per-run limits (steps, wall time, output size) are enforced here; so are each
node's retries and error strategy (fail the run, use default outputs, or take
the node's "error" branch). Cancelling the consumer cancels every running node.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from danlu.builder.compiler import ERROR_HANDLE, Plan
from danlu.builder.dsl import Edge
from danlu.builder.nodes.base import NodeContext, NodeResult, NodeType
from danlu.builder.nodes.flow import AnswerNode, StartNode
from danlu.builder.ssrf import Network
from danlu.builder.variables import CONVERSATION, VariablePool
from danlu.core.errors import DanluError, InvalidRequest
from danlu.gateway.registry import ModelRegistry


class EdgeState(StrEnum):
    PENDING = "pending"
    TAKEN = "taken"
    SKIPPED = "skipped"


@dataclass
class EngineServices:
    """What nodes may call: models only through the gateway; the outside web behind a guard."""

    models: ModelRegistry
    # Private ranges an admin lets HTTP nodes reach (DANLU_BUILDER_HTTP_ALLOW); empty: none.
    http_allow: list[Network] = field(default_factory=list)
    # The knowledge pillar's retriever (nodes/knowledge.py Retriever); None until it exists.
    retriever: Any = None
    # (calling app id, slug) -> a Tool that runs that published app (set by the app service).
    app_tool: Any = None


@dataclass
class RunEvent:
    event: str
    data: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"event": self.event, **self.data}


class RunFailed(DanluError):
    """A run stopped: a node failed, a limit was hit, or it was cancelled."""


@dataclass
class RunRecord:
    """What a finished run leaves behind (stored by the app service)."""

    run_id: str
    status: str = "running"
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    nodes: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    elapsed_ms: float = 0.0
    variables: dict[str, Any] = field(default_factory=dict)  # conversation variables at the end


class _Execution:
    def __init__(
        self,
        plan: Plan,
        services: EngineServices,
        inputs: dict[str, Any],
        system: dict[str, Any],
        owner: str,
        variables: dict[str, Any] | None = None,
    ):
        self.plan = plan
        self.services = services
        self.owner = owner
        self.run_id = system.get("run_id") or "run_" + os.urandom(8).hex()
        start = plan.start_node
        assert isinstance(start, StartNode)
        checked = start.check_inputs(inputs)  # before anything runs
        self.pool = VariablePool({"timestamp": int(time.time()), **system, "run_id": self.run_id})
        self.pool.set_outputs(plan.start, checked)
        declared = {v.name: v.default for v in plan.spec.variables}
        given = {k: v for k, v in (variables or {}).items() if k in declared}
        self.pool.set_outputs(CONVERSATION, {**declared, **given})
        self.edges: dict[int, EdgeState] = {id(e): EdgeState.PENDING for e in plan.spec.graph.edges}
        self.done: set[str] = set()
        self.queue: asyncio.Queue[RunEvent | None] = asyncio.Queue()
        self.record = RunRecord(self.run_id)
        self.steps = 0
        # LLM node id -> answer nodes that are just its text, streamed token by token.
        self.streamed: dict[str, list[str]] = {}
        for node in plan.nodes.values():
            if isinstance(node, AnswerNode) and (source := node.streams_from()) in plan.nodes:
                self.streamed.setdefault(source, []).append(node.id)

    async def emit(self, event: str, data: dict[str, Any]) -> None:
        await self.queue.put(RunEvent(event, data))
        if event == "text_chunk":
            for answer_id in self.streamed.get(str(data.get("node_id")), []):
                await self.queue.put(
                    RunEvent("answer_chunk", {"node_id": answer_id, "text": data["text"]})
                )

    def _ready(self, node_id: str) -> bool:
        if node_id in self.done:
            return False
        edges = self.plan.incoming.get(node_id, [])
        return all(self.edges[id(e)] != EdgeState.PENDING for e in edges)

    def _settle(self, node_id: str, taken_handle: str | None, *, skipped: bool) -> list[str]:
        """Mark a finished node's outgoing edges; return targets that became ready."""
        self.done.add(node_id)
        node = self.plan.nodes[node_id]
        for edge in self.plan.outgoing.get(node_id, []):
            self.edges[id(edge)] = (
                EdgeState.SKIPPED
                if skipped or not _takes(node, edge, taken_handle)
                else EdgeState.TAKEN
            )
        return sorted(
            {e.target for e in self.plan.outgoing.get(node_id, []) if self._ready(e.target)}
        )

    async def _run_subgraph(self, plan: Plan, inputs: dict[str, Any]) -> RunRecord:
        """A nested graph's run, sharing this run's services, system variables and owner."""
        system = {k: v for k, v in self.pool.outputs("sys").items() if k != "run_id"}
        record, _ = await run_to_end(plan, self.services, inputs, system=system, owner=self.owner)
        return record

    async def _run_node(self, node: NodeType) -> NodeResult:
        strategy = node.node.errors
        attempt = 0
        while True:
            attempt += 1
            try:
                ctx = NodeContext(
                    self.pool,
                    self.services,
                    self.emit,
                    self.run_id,
                    self.owner,
                    run_subgraph=self._run_subgraph,
                )
                return await node.run(ctx)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if attempt < strategy.retry.max_attempts:
                    await self.emit(
                        "node_retry",
                        {"node_id": node.id, "attempt": attempt, "error": _message(exc)},
                    )
                    await asyncio.sleep(strategy.retry.backoff_seconds * 2 ** (attempt - 1))
                    continue
                if strategy.on_error == "default":
                    return NodeResult(dict(strategy.default_outputs), handle=None)
                if strategy.on_error == "branch":
                    return NodeResult({"error": _message(exc)}, handle=ERROR_HANDLE)
                raise

    async def _node_task(self, node_id: str) -> tuple[str, NodeResult | None, bool]:
        """Run (or skip) one node; returns (id, result, skipped)."""
        incoming = self.plan.incoming.get(node_id, [])
        if incoming and not any(self.edges[id(e)] == EdgeState.TAKEN for e in incoming):
            return node_id, None, True
        node = self.plan.nodes[node_id]
        self.steps += 1
        if self.steps > self.plan.spec.limits.max_steps:
            raise RunFailed(
                f"the run took more than {self.plan.spec.limits.max_steps} steps", code="step_limit"
            )
        started = time.perf_counter()
        await self.emit("node_started", {"node_id": node_id, "type": node.type})
        try:
            result = await self._run_node(node)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            elapsed = (time.perf_counter() - started) * 1000
            self.record.nodes.append(
                {
                    "node_id": node_id,
                    "type": node.type,
                    "status": "failed",
                    "elapsed_ms": elapsed,
                    "error": _message(exc),
                }
            )
            await self.emit(
                "node_finished",
                {
                    "node_id": node_id,
                    "status": "failed",
                    "elapsed_ms": round(elapsed, 3),
                    "error": _message(exc),
                },
            )
            raise RunFailed(f"node {node_id} failed: {_message(exc)}", code="node_failed") from exc
        elapsed = (time.perf_counter() - started) * 1000
        self.pool.set_outputs(node_id, result.outputs)
        for key, value in result.usage.items():
            self.record.usage[key] = self.record.usage.get(key, 0) + value
        status = "error_branch" if result.handle == ERROR_HANDLE else "succeeded"
        self.record.nodes.append(
            {
                "node_id": node_id,
                "type": node.type,
                "status": status,
                "elapsed_ms": elapsed,
                "outputs": result.outputs,
                "usage": result.usage,
            }
        )
        await self.emit(
            "node_finished",
            {
                "node_id": node_id,
                "status": status,
                "elapsed_ms": round(elapsed, 3),
                "outputs": result.outputs,
            },
        )
        return node_id, result, False

    async def execute(self) -> None:
        running: dict[asyncio.Task[tuple[str, NodeResult | None, bool]], str] = {}
        ready = [self.plan.start]
        final: dict[str, Any] = {}
        try:
            while ready or running:
                for node_id in ready:
                    running[asyncio.create_task(self._node_task(node_id))] = node_id
                ready = []
                finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    running.pop(task)
                    node_id, result, skipped = task.result()
                    if skipped:
                        await self.emit("node_skipped", {"node_id": node_id})
                    elif self.plan.nodes[node_id].type in {"end", "answer"} and result is not None:
                        final.update(result.outputs)
                    handle = result.handle if result else None
                    ready += [
                        t for t in self._settle(node_id, handle, skipped=skipped) if t not in ready
                    ]
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
        size = len(json.dumps(final, ensure_ascii=False, default=str).encode())
        if size > self.plan.spec.limits.max_output_bytes:
            raise RunFailed(
                f"the outputs are {size} bytes, over the app's limit of "
                f"{self.plan.spec.limits.max_output_bytes}",
                code="output_limit",
            )
        self.record.outputs = final
        self.record.variables = self.pool.outputs(CONVERSATION)


def _takes(node: NodeType, edge: Edge, handle: str | None) -> bool:
    if handle == ERROR_HANDLE:
        return edge.handle == ERROR_HANDLE
    if edge.handle == ERROR_HANDLE:
        return False
    return not node.branching or edge.handle == handle


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, DanluError) else f"{type(exc).__name__}: {exc}"


async def run_app(
    plan: Plan,
    services: EngineServices,
    inputs: dict[str, Any],
    *,
    system: dict[str, Any] | None = None,
    owner: str = "builder",
    variables: dict[str, Any] | None = None,
) -> AsyncGenerator[RunEvent, None]:
    """Run ``plan``, yielding events; the last is ``run_finished`` or ``run_failed``.

    ``variables`` are the conversation's variables going in; ``run_finished`` carries them out.

    Bad inputs raise :class:`InvalidRequest` before the first event. Closing the
    iterator (a client going away) cancels every running node.
    """
    execution = _Execution(plan, services, inputs, system or {}, owner, variables)
    started = time.perf_counter()
    limits = plan.spec.limits

    async def drive() -> None:
        try:
            async with asyncio.timeout(limits.wall_seconds):
                await execution.execute()
            execution.record.status = "succeeded"
        except TimeoutError:
            execution.record.status = "failed"
            execution.record.error = f"the run took longer than {limits.wall_seconds} s"
        except RunFailed as exc:
            execution.record.status = "failed"
            execution.record.error = exc.message
        except InvalidRequest as exc:
            execution.record.status = "failed"
            execution.record.error = exc.message
        finally:
            execution.record.elapsed_ms = (time.perf_counter() - started) * 1000
            await execution.queue.put(None)

    yield RunEvent("run_started", {"run_id": execution.run_id, "app": plan.spec.app.name})
    driver = asyncio.create_task(drive())
    try:
        while (event := await execution.queue.get()) is not None:
            yield event
        await driver
        record = execution.record
        if record.status == "succeeded":
            yield RunEvent(
                "run_finished",
                {
                    "run_id": record.run_id,
                    "outputs": record.outputs,
                    "elapsed_ms": round(record.elapsed_ms, 3),
                    "usage": record.usage,
                    "variables": record.variables,
                },
            )
        else:
            yield RunEvent(
                "run_failed",
                {
                    "run_id": record.run_id,
                    "error": record.error,
                    "elapsed_ms": round(record.elapsed_ms, 3),
                },
            )
    finally:
        if not driver.done():
            driver.cancel()
            await asyncio.gather(driver, return_exceptions=True)


async def run_to_end(
    plan: Plan, services: EngineServices, inputs: dict[str, Any], **kwargs: Any
) -> tuple[RunRecord, list[RunEvent]]:
    """Run to completion (blocking mode); the record and every event."""
    events = [event async for event in run_app(plan, services, inputs, **kwargs)]
    last = events[-1]
    record = RunRecord(
        last.data["run_id"],
        status="succeeded" if last.event == "run_finished" else "failed",
        outputs=last.data.get("outputs", {}),
        error=last.data.get("error"),
        elapsed_ms=last.data.get("elapsed_ms", 0.0),
    )
    record.nodes = [e.data for e in events if e.event == "node_finished"]
    record.usage = last.data.get("usage", {})
    return record, events


__all__ = ["EngineServices", "InvalidRequest", "RunEvent", "RunRecord", "run_app", "run_to_end"]
