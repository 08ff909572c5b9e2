"""Every model call through the gateway: admitted, metered, charged and recorded.

``await meter.admit(...)`` runs before the model is called, in this order, and fails
closed at each step:

1. the caller's limit rules: a model outside an allow-list is a 403;
2. rate limits (RPM, TPM, concurrency) across key, user and workspace: a 429 naming the
   limit, or a 503 if the shared limit store is unreachable;
3. with billing on, the call's worst-case cost is held: a 402 if it does not fit, a 403 for
   a model without a price.

The returned :class:`Call` watches the answer (time to first token, the usage chunk) and
:meth:`Call.finish` settles: the TPM window gets the real token count, the hold becomes
the real cost, and one ledger row records the request (model, deployment, tokens,
latency, TTFT, cost, status), written in batches off the hot path. A stream that is cut
off is still metered: with no usage chunk, tokens are estimated from what was streamed,
and the entry's status says so.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from danlu.billing import Billing, UsageEntry, UsageRecorder
from danlu.billing.holds import Reservation
from danlu.billing.money import split_prompt_tokens
from danlu.core.keys import Principal
from danlu.gateway.limit_rules import LimitRules
from danlu.gateway.limits import Limiter, Permit
from danlu.gateway.metrics import GatewayMetrics
from danlu.gateway.provider import CallContext, Chunk

log = logging.getLogger(__name__)
DEFAULT_MAX_OUTPUT = 4096  # when neither the request nor the model says


def estimate_tokens(payload: Any) -> int:
    """An upper-leaning estimate of a prompt's tokens: one per character of its text.

    Real tokenizers average 1-1.5 characters per token for Chinese and about 4 for
    English, so this over-counts English; it only sizes the hold and the TPM admission,
    both corrected by the real count when the call settles.
    """
    if isinstance(payload, str):
        return len(payload)
    if isinstance(payload, list):
        return sum(estimate_tokens(item) for item in payload) + 2
    if isinstance(payload, dict):
        return sum(estimate_tokens(v) for k, v in payload.items() if k != "role") + 4
    return 0 if payload is None else len(json.dumps(payload, default=str))


@dataclass
class Call:
    """One admitted call, from admission to settlement."""

    meter: Meter
    principal: Principal
    model: str
    kind: str
    request_id: str
    prompt_estimate: int
    permit: Permit
    reservation: Reservation | None
    admitted_at: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    usage: dict[str, Any] | None = None
    streamed_pieces: int = 0
    deployment: str | None = None
    context: CallContext | None = None  # a routed call lists the deployments it tried here
    finished: bool = False

    def observe(self, chunk: Chunk) -> None:
        """Look at a chunk on its way to the client (stream) or at a whole answer."""
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        if chunk.get("deployment"):
            self.deployment = str(chunk["deployment"])
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or choice.get("message") or {}
            said = delta.get("content") or delta.get("reasoning_content") or delta.get("tool_calls")
            if said or choice.get("text"):
                self.streamed_pieces += 1
                if self.first_token_at is None:
                    self.first_token_at = time.perf_counter()

    async def finish(self, status: str = "ok") -> None:
        """Settle limits and money and record the call; safe to call more than once."""
        if self.finished:
            return
        self.finished = True
        if self.deployment is None and self.context is not None and self.context.deployments:
            self.deployment = self.context.deployments[-1]  # the one that served (or failed last)
        usage = self.usage
        if usage is None:
            # Cut off before the usage chunk: count what reached the client.
            usage = {
                "prompt_tokens": self.prompt_estimate,
                "completion_tokens": self.streamed_pieces,
            }
            if status == "ok":
                status = "ok_estimated"
        prompt = int(usage.get("prompt_tokens") or 0)
        output = int(usage.get("completion_tokens") or 0)
        cached = int(((usage.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0)
        fresh, cached = split_prompt_tokens(prompt, cached)
        now = time.perf_counter()
        latency_ms = int((now - self.admitted_at) * 1000)
        ttft_ms = (
            int((self.first_token_at - self.admitted_at) * 1000) if self.first_token_at else None
        )
        try:
            await self.permit.settle(prompt + output)
        except Exception:  # the window corrects itself within a minute; money must not wait
            log.exception("settling rate limits of %s failed", self.request_id)
        cost = 0
        meter = self.meter
        entry: UsageEntry | None = None
        if self.reservation is not None and meter.billing is not None:
            reservation, billing = self.reservation, meter.billing
            if prompt + output == 0 and status not in ("ok", "ok_estimated"):
                entry = await asyncio.to_thread(
                    billing.release,
                    reservation,
                    status,
                    deployment=self.deployment,
                    latency_ms=latency_ms,
                )
            else:
                entry = await asyncio.to_thread(
                    billing.settle,
                    reservation,
                    fresh,
                    cached,
                    output,
                    status,
                    deployment=self.deployment,
                    latency_ms=latency_ms,
                    ttft_ms=ttft_ms,
                )
            cost = entry.cost if entry is not None else 0
        else:
            meter.recorder.add(
                UsageEntry(
                    request_id=self.request_id,
                    workspace_id=self.principal.workspace_id,
                    key_id=self.principal.key_id,
                    user_id=self.principal.user_id,
                    model=self.model,
                    deployment=self.deployment,
                    input_tokens=fresh,
                    cached_tokens=cached,
                    output_tokens=output,
                    cost=0,
                    shortfall=0,
                    status=status,
                    latency_ms=latency_ms,
                    ttft_ms=ttft_ms,
                )
            )
        meter.metrics.observe(
            model=self.model,
            kind=self.kind,
            status=status,
            seconds=now - self.admitted_at,
            ttft=None if ttft_ms is None else ttft_ms / 1000,
            prompt_tokens=prompt,
            output_tokens=output,
            cost=cost,
        )


class Meter:
    """The gateway's admission and metering, one per server process."""

    def __init__(
        self,
        limiter: Limiter,
        rules: LimitRules,
        recorder: UsageRecorder,
        metrics: GatewayMetrics,
        billing: Billing | None = None,
        *,
        free_quota: int = 0,
        free_quota_days: int | None = None,
    ):
        self.limiter = limiter
        self.rules = rules
        self.recorder = recorder
        self.metrics = metrics
        self.billing = billing
        self.free_quota = free_quota
        self.free_quota_days = free_quota_days
        self._settling: set[asyncio.Task[None]] = set()
        self._quota_given: set[str] = set()  # workspaces known to have had their free quota

    async def admit(
        self,
        principal: Principal,
        model: str,
        kind: str,
        request_id: str,
        *,
        prompt: Any,
        max_output: int | None,
    ) -> Call:
        scopes = self.rules.for_call(principal, model)
        estimate = estimate_tokens(prompt)
        output = max_output if max_output is not None else DEFAULT_MAX_OUTPUT
        permit = await self.limiter.acquire(scopes, estimate)
        reservation = None
        if self.billing is not None:
            try:
                await self._free_quota(self.billing, principal.workspace_id)
                reservation = await asyncio.to_thread(
                    self.billing.reserve,
                    principal.workspace_id,
                    model,
                    estimate,
                    output if kind == "chat" else 0,
                    request_id,
                    principal.key_id,
                    user_id=principal.user_id,
                )
            except BaseException:
                await permit.settle(0)
                self.metrics.refused(model=model, kind=kind)
                raise
        return Call(self, principal, model, kind, request_id, estimate, permit, reservation)

    async def _free_quota(self, billing: Billing, workspace_id: str) -> None:
        """A new workspace's free quota, granted once (idempotent in the database too)."""
        if self.free_quota <= 0 or workspace_id in self._quota_given:
            return
        await asyncio.to_thread(
            billing.wallets.grant_free_quota,
            workspace_id,
            self.free_quota,
            valid_days=self.free_quota_days,
        )
        self._quota_given.add(workspace_id)

    def settle_later(self, call: Call, status: str) -> None:
        """Finish a call from a place that must not wait (a stream's last moments)."""
        task = asyncio.get_running_loop().create_task(call.finish(status))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def drain(self) -> None:
        """Wait for settlements in flight (shutdown, tests)."""
        while self._settling:
            await asyncio.gather(*list(self._settling), return_exceptions=True)


async def metered(stream: AsyncIterator[Chunk], call: Call) -> AsyncIterator[Chunk]:
    """Pass a model's chunks through, watching them; settle however the stream ends."""
    status = "ok"
    try:
        async for chunk in stream:
            call.observe(chunk)
            yield chunk
    except (asyncio.CancelledError, GeneratorExit):
        status = "cancelled"
        raise
    except Exception:
        status = "error"
        raise
    finally:
        # Never awaited here: the task may be cancelled (a client gone), and money must settle.
        call.meter.settle_later(call, status)
