"""Rate limits: the same conformance suite against the in-process and the Redis limiter.

Both run on a fake clock here (the Redis scripts take ``now`` from the caller when a clock
is injected), so windows expire instantly and deterministically; the tests at the end use
Redis's own clock with short windows. Redis is expected at 127.0.0.1:6379; every test uses
its own key prefix and deletes its keys.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis

from danlu.core.errors import LimitsUnavailable, RateLimited
from danlu.gateway.limits import (
    InProcessLimiter,
    Limiter,
    Permit,
    Policy,
    RedisLimiter,
    open_limiter,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
CLOSED_PORT_URL = "redis://127.0.0.1:1/0"


class Clock:
    """Fake time in seconds; a start far from 0 like a real clock's."""

    def __init__(self, start: float = 1_700_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Backend:
    """Opens limiters of one kind; remembers what to clean up."""

    def __init__(self, kind: str):
        self.kind = kind
        self.prefix = f"{{test-limits-{uuid.uuid4().hex[:12]}}}:"

    def open(self, clock: Callable[[], float] | None = None, **options: Any) -> Limiter:
        if self.kind == "memory":
            return InProcessLimiter(clock=clock or time.monotonic, **options)
        return RedisLimiter(REDIS_URL, prefix=self.prefix, clock=clock, **options)

    def redis_keys(self) -> list[bytes]:
        with redis.Redis.from_url(REDIS_URL) as client:
            return list(client.scan_iter(match=f"{self.prefix}*", count=1000))

    def cleanup(self) -> None:
        if self.kind == "redis":
            keys = self.redis_keys()
            if keys:
                with redis.Redis.from_url(REDIS_URL) as client:
                    client.delete(*keys)


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    made = Backend(request.param)
    yield made
    made.cleanup()


@pytest.fixture
def redis_backend() -> Iterator[Backend]:
    made = Backend("redis")
    yield made
    made.cleanup()


def run_with(
    backend: Backend, body: Callable[[Limiter, Clock], Awaitable[None]], **options: Any
) -> None:
    """Run ``body`` on a fresh limiter with a fake clock, closing the limiter after."""
    clock = Clock()

    async def main() -> None:
        limiter = backend.open(clock, **options)
        try:
            await body(limiter, clock)
        finally:
            await limiter.aclose()

    asyncio.run(main())


async def refused(
    limiter: Limiter, scopes: list[tuple[str, Policy]], tokens: int = 0
) -> RateLimited:
    with pytest.raises(RateLimited) as caught:
        await limiter.acquire(scopes, tokens)
    return caught.value


# --- conformance: both backends ----------------------------------------------------------


def test_rpm_admits_the_limit_then_refuses_until_the_window_moves(backend: Backend) -> None:
    scopes = [("key:k1", Policy(rpm=3))]

    async def body(limiter: Limiter, clock: Clock) -> None:
        for _ in range(3):
            await limiter.acquire(scopes, 0)
        error = await refused(limiter, scopes)
        assert error.message == (
            "this API key's limit of 3 requests per minute is reached; retry in 61 s"
        )
        assert (error.scope, error.limit, error.code) == ("key:k1", "rpm", "rpm_limit_reached")
        assert 60 < error.retry_after <= 61
        clock.advance(30)
        assert 30 < (await refused(limiter, scopes)).retry_after <= 31
        clock.advance(31)  # the three requests are now 61 s old: out of every window
        for _ in range(3):
            await limiter.acquire(scopes, 0)
        await refused(limiter, scopes)

    run_with(backend, body)


def test_tpm_counts_estimates_and_settle_corrects_them(backend: Backend) -> None:
    scopes = [("workspace:w1", Policy(tpm=100))]

    async def body(limiter: Limiter, clock: Clock) -> None:
        first = await limiter.acquire(scopes, 60)
        error = await refused(limiter, scopes, 60)
        assert error.limit == "tpm"
        assert error.message.startswith("this workspace's limit of 100 tokens per minute")
        await first.settle(20)  # 60 estimated, 20 used: 40 come back
        second = await limiter.acquire(scopes, 60)  # 20 + 60 = 80
        await refused(limiter, scopes, 30)
        await second.settle(75)  # used more than estimated: 20 + 75 = 95
        await refused(limiter, scopes, 6)
        await limiter.acquire(scopes, 5)  # exactly 100
        clock.advance(61)
        await limiter.acquire(scopes, 100)

    run_with(backend, body)


def test_settle_is_idempotent(backend: Backend) -> None:
    scopes = [("key:k1", Policy(tpm=100, concurrency=1))]

    async def body(limiter: Limiter, clock: Clock) -> None:
        permit = await limiter.acquire(scopes, 50)
        await permit.settle(10)
        await permit.settle(0)  # neither frees a second slot nor returns more tokens
        again = await limiter.acquire(scopes, 90)  # 10 + 90
        await refused(limiter, scopes, 1)
        await again.settle(90)

    run_with(backend, body)


def test_concurrency_slots_are_taken_and_freed(backend: Backend) -> None:
    scopes = [("user:u1", Policy(concurrency=2))]

    async def body(limiter: Limiter, clock: Clock) -> None:
        first = await limiter.acquire(scopes, 0)
        second = await limiter.acquire(scopes, 0)
        error = await refused(limiter, scopes)
        assert error.message == (
            "this user's limit of 2 concurrent requests is reached; retry in 1 s"
        )
        assert (error.limit, error.retry_after) == ("concurrency", 1.0)
        await first.settle(0)
        third = await limiter.acquire(scopes, 0)
        await refused(limiter, scopes)
        await second.settle(0)
        await third.settle(0)
        await limiter.acquire(scopes, 0)
        await limiter.acquire(scopes, 0)

    run_with(backend, body)


def test_all_or_nothing_across_scopes(backend: Backend) -> None:
    key = ("key:k1", Policy(rpm=2, tpm=1000, concurrency=5))
    workspace = ("workspace:w1", Policy(rpm=1))

    async def body(limiter: Limiter, clock: Clock) -> None:
        await limiter.acquire([key, workspace], 100)
        error = await refused(limiter, [key, workspace], 100)
        assert error.scope == "workspace:w1"
        assert error.message.startswith("this workspace's limit of 1 requests per minute")
        # The refused request charged the key nothing: one request, 100 tokens, no slot.
        await limiter.acquire([key], 900)
        assert (await refused(limiter, [key], 0)).limit == "rpm"

    run_with(backend, body)


def test_all_or_nothing_for_concurrency_too(backend: Backend) -> None:
    key = ("key:k1", Policy(concurrency=1))
    user = ("user:u1", Policy(concurrency=1))

    async def body(limiter: Limiter, clock: Clock) -> None:
        held = await limiter.acquire([user], 0)
        assert (await refused(limiter, [key, user])).scope == "user:u1"
        await limiter.acquire([key], 0)  # the refusal did not keep the key's slot
        await held.settle(0)

    run_with(backend, body)


def test_the_refusal_named_is_the_one_that_binds_longest(backend: Backend) -> None:
    key = ("key:k1", Policy(rpm=1))
    workspace = ("workspace:w1", Policy(tpm=100))

    async def body(limiter: Limiter, clock: Clock) -> None:
        await limiter.acquire([workspace], 100)  # the workspace's tokens are spent at t=0
        clock.advance(30)
        await limiter.acquire([key], 0)  # the key's request, at t=30
        error = await refused(limiter, [key, workspace], 10)
        assert error.scope == "key:k1"  # free at t=91, the workspace at t=61
        assert 60 < error.retry_after <= 61

    run_with(backend, body)


def test_retry_after_is_when_enough_old_requests_leave_the_window(backend: Backend) -> None:
    scopes = [("key:k1", Policy(rpm=3))]

    async def body(limiter: Limiter, clock: Clock) -> None:
        await limiter.acquire(scopes, 0)
        await limiter.acquire(scopes, 0)  # two at t=0
        clock.advance(20)
        await limiter.acquire(scopes, 0)  # one at t=20
        clock.advance(10)
        error = await refused(limiter, scopes)  # at t=30
        assert 30 < error.retry_after <= 31
        clock.advance(error.retry_after)
        await limiter.acquire(scopes, 0)  # the two of t=0 left: room for two
        await limiter.acquire(scopes, 0)
        error = await refused(limiter, scopes)
        assert 19 < error.retry_after <= 21  # the one of t=20 leaves at t=81
        assert error.message.endswith(f"retry in {math.ceil(error.retry_after)} s")

    run_with(backend, body)


def test_a_request_bigger_than_the_tpm_limit_is_never_admitted(backend: Backend) -> None:
    scopes = [("workspace:w1", Policy(tpm=1000))]

    async def body(limiter: Limiter, clock: Clock) -> None:
        error = await refused(limiter, scopes, 1001)
        assert "can never be admitted; lower max_tokens" in error.message
        assert error.retry_after == 60
        await limiter.acquire(scopes, 1000)  # and it charged nothing

    run_with(backend, body)


def test_a_zero_limit_blocks_the_scope(backend: Backend) -> None:
    async def body(limiter: Limiter, clock: Clock) -> None:
        error = await refused(limiter, [("key:k1", Policy(rpm=0))])
        assert error.message == "this API key is blocked: its limit is 0 requests per minute"
        error = await refused(limiter, [("key:k2", Policy(concurrency=0))])
        assert error.message == "this API key is blocked: its limit is 0 concurrent requests"

    run_with(backend, body)


def test_unlimited_scopes_always_admit(backend: Backend) -> None:
    async def body(limiter: Limiter, clock: Clock) -> None:
        for _ in range(50):
            permit = await limiter.acquire([("key:k1", Policy()), ("user:u1", Policy())], 10**9)
            await permit.settle(10**9)

    run_with(backend, body)
    assert backend.redis_keys() == []


def test_invalid_arguments_are_refused(backend: Backend) -> None:
    with pytest.raises(ValueError, match="rpm"):
        Policy(rpm=-1)

    async def body(limiter: Limiter, clock: Clock) -> None:
        with pytest.raises(ValueError, match="tokens"):
            await limiter.acquire([("key:k1", Policy(rpm=1))], -1)
        with pytest.raises(ValueError, match="once"):
            await limiter.acquire([("key:k1", Policy(rpm=1)), ("key:k1", Policy(rpm=2))], 0)

    run_with(backend, body)


def test_excess_of_a_long_request_counts_from_when_it_settles(backend: Backend) -> None:
    scopes = [("key:k1", Policy(tpm=100))]

    async def body(limiter: Limiter, clock: Clock) -> None:
        long = await limiter.acquire(scopes, 50)
        shorter = await limiter.acquire(scopes, 50)
        clock.advance(90)  # both admission buckets have left the window
        await long.settle(80)  # 30 more than estimated: charged now
        await shorter.settle(10)  # 40 less: nothing left to give back
        await limiter.acquire(scopes, 70)
        await refused(limiter, scopes, 1)

    run_with(backend, body)


def test_concurrent_acquires_admit_exactly_the_limit(backend: Backend) -> None:
    scopes = [("key:k1", Policy(rpm=50, concurrency=80))]

    async def body(limiter: Limiter, clock: Clock) -> None:
        async def one() -> Permit | None:
            try:
                return await limiter.acquire(scopes, 0)
            except RateLimited:
                return None

        results = await asyncio.gather(*(one() for _ in range(120)))
        assert sum(result is not None for result in results) == 50

    run_with(backend, body)


@pytest.mark.parametrize(("limit", "cost"), [("rpm", 1), ("tpm", 0)])
def test_no_window_of_60_s_ever_holds_more_than_the_limit(
    backend: Backend, limit: str, cost: int
) -> None:
    """Random traffic; checks the bound documented in danlu.gateway.limits.base.

    Over: no 60 s window holds more than the limit. Under: a request is refused only if
    admitting it would put more than the limit into the last 61 s (window + one bucket).
    """
    rng = random.Random(7)
    cap = 8 if limit == "rpm" else 400
    policy = Policy(rpm=cap) if limit == "rpm" else Policy(tpm=cap)
    scopes = [("key:k1", policy)]
    admitted: list[tuple[float, int]] = []
    outcomes: list[tuple[float, int, bool]] = []

    async def body(limiter: Limiter, clock: Clock) -> None:
        for _ in range(400):
            # Whole milliseconds, as the Redis scripts see them; bursts and lulls.
            clock.advance(rng.choice([0.0, 0.001, 0.2, 1.0, 3.7, 9.0, 20.0]))
            clock.now = round(clock.now, 3)
            tokens = rng.randint(1, 150) if limit == "tpm" else cost
            try:
                permit = await limiter.acquire(scopes, tokens)
            except RateLimited:
                outcomes.append((clock.now, tokens, False))
                continue
            await permit.settle(tokens)
            admitted.append((clock.now, 1 if limit == "rpm" else tokens))
            outcomes.append((clock.now, tokens, True))

    run_with(backend, body)
    amount = 1 if limit == "rpm" else None

    def used(start: float, end: float) -> int:
        return sum(n for at, n in admitted if start < at <= end)

    refusals = 0
    for at, tokens, ok in outcomes:
        need = amount or tokens
        if ok:
            assert used(at - 60, at) <= cap, f"more than {cap} in the 60 s before {at}"
        else:
            refusals += 1
            assert used(at - 61.001, at) + need > cap, f"refused at {at} with room"
    assert refusals > 20 and len(admitted) > 40  # the traffic really hit the limit


# --- in-process specifics ----------------------------------------------------------------


def test_in_process_state_of_idle_scopes_is_forgotten() -> None:
    clock = Clock()

    async def main() -> None:
        limiter = InProcessLimiter(clock=clock)
        for number in range(1000):
            await limiter.acquire([(f"key:k{number}", Policy(rpm=5, tpm=100))], 10)
        held = await limiter.acquire([("user:busy", Policy(concurrency=1))], 0)
        assert limiter.tracked_scopes == 1001
        clock.advance(125)  # two windows on: the next acquire sweeps
        await limiter.acquire([("key:new", Policy(rpm=5))], 0)
        assert limiter.tracked_scopes == 2  # the new one and the one with a request in flight
        await held.settle(0)
        await limiter.aclose()

    asyncio.run(main())


def test_in_process_acquire_takes_microseconds() -> None:
    scopes = [
        ("key:k1", Policy(rpm=10**9, tpm=10**12, concurrency=10**6)),
        ("user:u1", Policy(rpm=10**9, tpm=10**12)),
        ("workspace:w1", Policy(tpm=10**12, concurrency=10**6)),
    ]

    async def main() -> float:
        limiter = InProcessLimiter()
        start = time.perf_counter()
        for _ in range(2000):
            permit = await limiter.acquire(scopes, 500)
            await permit.settle(300)
        return (time.perf_counter() - start) / 2000

    # Generous for a busy shared CI machine; the benchmark reports the real figure.
    assert asyncio.run(main()) < 200e-6


# --- Redis specifics: its own clock, leases, failure -------------------------------------


def test_redis_windows_expire_on_redis_time(redis_backend: Backend) -> None:
    scopes = [("key:k1", Policy(rpm=2, tpm=100))]

    async def main() -> None:
        limiter = RedisLimiter(REDIS_URL, prefix=redis_backend.prefix, window=0.6)
        try:
            await limiter.acquire(scopes, 10)
            await limiter.acquire(scopes, 10)
            error = await refused(limiter, scopes, 10)
            assert 0 < error.retry_after <= 0.62
            await asyncio.sleep(error.retry_after + 0.02)
            await limiter.acquire(scopes, 10)
        finally:
            await limiter.aclose()

    asyncio.run(main())


def test_redis_keys_expire_and_stale_buckets_are_dropped(redis_backend: Backend) -> None:
    scopes = [("key:k1", Policy(rpm=100, tpm=10_000, concurrency=5))]
    clock = Clock()

    async def main() -> None:
        limiter = RedisLimiter(REDIS_URL, prefix=redis_backend.prefix, clock=clock)
        try:
            for _ in range(5):
                clock.advance(7)
                permit = await limiter.acquire(scopes, 10)
                await permit.settle(10)
            clock.advance(120)
            await limiter.acquire(scopes, 10)
        finally:
            await limiter.aclose()

    asyncio.run(main())
    with redis.Redis.from_url(REDIS_URL) as client:
        for suffix in ("r", "t"):
            key = f"{redis_backend.prefix}key:k1:{suffix}"
            assert client.hlen(key) == 1  # only the current bucket is left
            assert 0 < client.pttl(key) <= 62_000
        assert 0 < client.pttl(f"{redis_backend.prefix}key:k1:c") <= 30_000


def test_redis_leases_are_renewed_while_held(redis_backend: Backend) -> None:
    scopes = [("user:u1", Policy(concurrency=1))]

    async def main() -> None:
        holder = RedisLimiter(REDIS_URL, prefix=redis_backend.prefix, lease_ttl=0.6)
        other = RedisLimiter(REDIS_URL, prefix=redis_backend.prefix, lease_ttl=0.6)
        try:
            permit = await holder.acquire(scopes, 0)
            await asyncio.sleep(1.3)  # over twice the lease's life: renewed meanwhile
            await refused(other, scopes)
            await permit.settle(0)
            await (await other.acquire(scopes, 0)).settle(0)
        finally:
            await holder.aclose()
            await other.aclose()

    asyncio.run(main())


def test_redis_lease_of_a_holder_that_stopped_expires(redis_backend: Backend) -> None:
    # A holder that stops renewing (here: closed without settling; a killed process is in
    # test_limits_processes.py) loses its slot after lease_ttl.
    scopes = [("user:u1", Policy(concurrency=1))]

    async def main() -> None:
        holder = RedisLimiter(REDIS_URL, prefix=redis_backend.prefix, lease_ttl=0.5)
        other = RedisLimiter(REDIS_URL, prefix=redis_backend.prefix, lease_ttl=0.5)
        try:
            await holder.acquire(scopes, 0)
            await holder.aclose()
            await refused(other, scopes)
            await asyncio.sleep(0.55)
            await other.acquire(scopes, 0)
        finally:
            await other.aclose()

    asyncio.run(main())


def test_redis_unreachable_fails_closed() -> None:
    async def main() -> None:
        limiter = RedisLimiter(CLOSED_PORT_URL, timeout=0.5)
        try:
            started = time.monotonic()
            with pytest.raises(LimitsUnavailable) as caught:
                await limiter.acquire([("key:k1", Policy(rpm=1000))], 1)
            assert time.monotonic() - started < 2
            assert caught.value.status == 503
            assert "Redis at 127.0.0.1:1 is unreachable or failing" in caught.value.message
            assert "DANLU_REDIS_URL" in caught.value.message
            with pytest.raises(LimitsUnavailable):
                await limiter.ping()
            # Unlimited requests need no Redis, so they are not refused.
            await limiter.acquire([("key:k1", Policy())], 1)
        finally:
            await limiter.aclose()

    asyncio.run(main())


def test_open_limiter_picks_the_backend() -> None:
    async def main() -> None:
        memory = open_limiter("")
        assert isinstance(memory, InProcessLimiter)
        assert isinstance(open_limiter(None), InProcessLimiter)
        shared = open_limiter(REDIS_URL)
        assert isinstance(shared, RedisLimiter)
        await memory.aclose()
        await shared.aclose()

    asyncio.run(main())


def test_a_refusal_becomes_a_429_with_retry_after() -> None:
    from starlette.requests import Request

    from danlu.api.errors import response_for

    async def main() -> RateLimited:
        limiter = InProcessLimiter()
        scopes = [("key:k1", Policy(rpm=1))]
        await limiter.acquire(scopes, 0)
        return await refused(limiter, scopes)

    error = asyncio.run(main())
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}
    response = response_for(Request(scope), error)
    assert response.status_code == 429
    assert response.headers["Retry-After"] in {"60", "61"}  # 60.x s on the real clock
    assert b"this API key's limit of 1 requests per minute" in response.body
