"""Limits held in this process: one server, or tests.

Everything runs on the event loop thread with no ``await`` between check and charge, so
an acquire is atomic without a lock. Per call the cost is a few dict and deque operations
per scope (microseconds). Memory stays bounded: buckets older than the window are dropped
as scopes are touched, and once per window a sweep forgets scopes that have nothing left
in their windows and nothing in flight.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from danlu.core.errors import RateLimited
from danlu.gateway.limits.base import (
    BUCKETS,
    CONCURRENCY,
    CONCURRENCY_RETRY,
    RPM,
    TPM,
    WINDOW_SECONDS,
    Permit,
    Refusal,
    Scopes,
    check_request,
    check_window,
    worst,
)


class _Window:
    """Counts per bucket over the last ``BUCKETS + 1`` buckets of one limit of one scope."""

    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()  # [bucket index, count], oldest first
        self.total = 0

    def expire(self, current: int) -> None:
        buckets = self.buckets
        while buckets and buckets[0][0] < current - BUCKETS:
            self.total -= buckets.popleft()[1]

    def add(self, current: int, amount: int) -> None:
        buckets = self.buckets
        if buckets and buckets[-1][0] == current:
            buckets[-1][1] += amount
        else:
            buckets.append([current, amount])
        self.total += amount

    def correct(self, bucket: int, current: int, delta: int) -> None:
        """Move ``bucket`` by ``delta``; excess of a bucket already gone counts from now."""
        if bucket >= current - BUCKETS:
            for entry in reversed(self.buckets):  # the bucket is recent: found near the end
                if entry[0] == bucket:
                    change = max(delta, -entry[1])
                    entry[1] += change
                    self.total += change
                    return
                if entry[0] < bucket:
                    break
        if delta > 0:
            self.add(current, delta)

    def wait(self, cost: int, limit: int, now: float, width: float) -> float | None:
        """Seconds until ``cost`` more fits under ``limit``; ``None`` if it never can."""
        if cost > limit:
            return None
        excess = self.total + cost - limit
        for index, count in self.buckets:
            excess -= count
            if excess <= 0:
                # Bucket ``index`` stops counting once the current bucket is BUCKETS + 1 on.
                return (index + BUCKETS + 1) * width - now
        return width  # unreachable while total is consistent


class _Scope:
    __slots__ = ("inflight", "requests", "tokens")

    def __init__(self) -> None:
        self.requests = _Window()
        self.tokens = _Window()
        self.inflight = 0

    def idle(self, current: int) -> bool:
        self.requests.expire(current)
        self.tokens.expire(current)
        return not (self.inflight or self.requests.buckets or self.tokens.buckets)


class InProcessLimiter:
    """A :class:`~danlu.gateway.limits.Limiter` for one process (asyncio, one event loop).

    ``clock`` (seconds, monotonic) and ``window`` exist for tests; the policies are always
    per minute.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, window: float = WINDOW_SECONDS
    ):
        check_window(window)
        self._clock = clock
        self._window = window
        self._width = window / BUCKETS
        self._scopes: dict[str, _Scope] = {}
        self._next_sweep = clock() + window

    async def acquire(self, scopes: Scopes, tokens: int) -> Permit:
        check_request(scopes, tokens)
        now = self._clock()
        current = math.floor(now / self._width)
        if now >= self._next_sweep:
            self._sweep(current, now)
        refusals: list[Refusal] = []
        states: list[tuple[str, _Scope, bool, bool, bool]] = []
        for name, policy in scopes:
            if policy.unlimited:
                continue
            state = self._scopes.get(name)
            if state is None:
                state = self._scopes[name] = _Scope()
            rpm, tpm, concurrency = policy.rpm, policy.tpm, policy.concurrency
            if rpm is not None:
                state.requests.expire(current)
                if state.requests.total + 1 > rpm:
                    wait = state.requests.wait(1, rpm, now, self._width)
                    refusals.append(Refusal(name, RPM, rpm, wait))
            if tpm is not None:
                state.tokens.expire(current)
                if state.tokens.total + tokens > tpm:
                    wait = state.tokens.wait(tokens, tpm, now, self._width)
                    refusals.append(Refusal(name, TPM, tpm, wait, tokens))
            if concurrency is not None and state.inflight >= concurrency:
                wait = CONCURRENCY_RETRY if concurrency else None
                refusals.append(Refusal(name, CONCURRENCY, concurrency, wait))
            states.append((name, state, rpm is not None, tpm is not None, concurrency is not None))
        if refusals:
            raise self._refuse(refusals)
        # Every limit has room: charge them all (no await since the checks).
        charged: list[tuple[str, bool, bool]] = []
        for name, state, rpm_on, tpm_on, concurrency_on in states:
            if rpm_on:
                state.requests.add(current, 1)
            if tpm_on and tokens:
                state.tokens.add(current, tokens)
            if concurrency_on:
                state.inflight += 1
            charged.append((name, tpm_on, concurrency_on))
        return _Permit(self, charged, current, tokens)

    def _refuse(self, refusals: list[Refusal]) -> RateLimited:
        return worst(refusals).error(self._window)

    def _settle(self, charged: list[tuple[str, bool, bool]], bucket: int, delta: int) -> None:
        current = math.floor(self._clock() / self._width)
        for name, tpm_on, concurrency_on in charged:
            state = self._scopes.get(name)
            if state is None:  # swept: nothing of it is left to correct or free
                if not (tpm_on and delta > 0):
                    continue
                state = self._scopes[name] = _Scope()
            if tpm_on and delta:
                state.tokens.expire(current)
                state.tokens.correct(bucket, current, delta)
            if concurrency_on and state.inflight:
                state.inflight -= 1

    def _sweep(self, current: int, now: float) -> None:
        """Forget scopes with empty windows and nothing in flight (once per window)."""
        for name in [name for name, state in self._scopes.items() if state.idle(current)]:
            del self._scopes[name]
        self._next_sweep = now + self._window

    @property
    def tracked_scopes(self) -> int:
        """How many scopes have state (for tests and metrics)."""
        return len(self._scopes)

    async def aclose(self) -> None:
        self._scopes.clear()


class _Permit:
    __slots__ = ("_bucket", "_charged", "_estimate", "_limiter")

    def __init__(
        self,
        limiter: InProcessLimiter,
        charged: list[tuple[str, bool, bool]],
        bucket: int,
        estimate: int,
    ):
        self._limiter: InProcessLimiter | None = limiter
        self._charged = charged
        self._bucket = bucket
        self._estimate = estimate

    async def settle(self, actual_tokens: int) -> None:
        limiter, self._limiter = self._limiter, None
        if limiter is None:
            return
        limiter._settle(self._charged, self._bucket, max(actual_tokens, 0) - self._estimate)
