"""Rate-limit overhead: what admission adds to every gateway request.

What it measures
    For each backend, one request checked against three scopes (API key: RPM, TPM and
    concurrency; user: RPM and TPM; workspace: TPM and concurrency), limits high enough
    that nothing is refused:

    - ``acquire+settle``: mean wall time of one acquire and its settle, sequentially
      (Redis: two round trips, one script each);
    - ``acquire``: the admission alone, the part a request waits for (p50 / p95);
    - ``refused``: an acquire that is refused (the scope's RPM is spent);
    - ``concurrent``: acquire+settle pairs per second with ``--concurrency`` tasks in flight
      on one event loop.

    The Redis backend runs only if ``--redis-url`` answers; its keys use a fresh prefix and
    are deleted afterwards. No pass/fail: it prints the figures.

Run: ``python bench/limits_overhead.py [--runs 20000] [--redis-runs 2000]
[--concurrency 32] [--redis-url redis://127.0.0.1:6379/0]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import uuid

import redis

from danlu.core.errors import RateLimited
from danlu.gateway.limits import InProcessLimiter, Limiter, Policy, RedisLimiter

BIG = 10**12
SCOPES = [
    ("key:bench", Policy(rpm=BIG, tpm=BIG, concurrency=10**6)),
    ("user:bench", Policy(rpm=BIG, tpm=BIG)),
    ("workspace:bench", Policy(tpm=BIG, concurrency=10**6)),
]
SPENT = [("key:spent", Policy(rpm=1))]


async def measure(limiter: Limiter, runs: int, concurrency: int) -> dict[str, float]:
    for _ in range(min(200, runs)):  # warm up: connections, script cache
        await (await limiter.acquire(SCOPES, 500)).settle(300)

    start = time.perf_counter()
    for _ in range(runs):
        permit = await limiter.acquire(SCOPES, 500)
        await permit.settle(300)
    pair = (time.perf_counter() - start) / runs

    admissions: list[float] = []
    for _ in range(runs):
        began = time.perf_counter()
        permit = await limiter.acquire(SCOPES, 500)
        admissions.append(time.perf_counter() - began)
        await permit.settle(300)

    await limiter.acquire(SPENT, 0)
    start = time.perf_counter()
    for _ in range(runs):
        with contextlib.suppress(RateLimited):
            await limiter.acquire(SPENT, 0)
    refused = (time.perf_counter() - start) / runs

    async def worker(count: int) -> None:
        for _ in range(count):
            await (await limiter.acquire(SCOPES, 500)).settle(300)

    start = time.perf_counter()
    await asyncio.gather(*(worker(runs // concurrency) for _ in range(concurrency)))
    per_second = (runs // concurrency * concurrency) / (time.perf_counter() - start)

    quantiles = statistics.quantiles(admissions, n=20)
    return {
        "pair_us": pair * 1e6,
        "acquire_p50_us": statistics.median(admissions) * 1e6,
        "acquire_p95_us": quantiles[18] * 1e6,
        "refused_us": refused * 1e6,
        "concurrent_per_s": per_second,
    }


def report(name: str, figures: dict[str, float]) -> None:
    print(
        f"{name:<10} acquire+settle {figures['pair_us']:8.1f} µs | acquire p50 "
        f"{figures['acquire_p50_us']:7.1f} µs, p95 {figures['acquire_p95_us']:7.1f} µs | "
        f"refused {figures['refused_us']:7.1f} µs | concurrent "
        f"{figures['concurrent_per_s']:9.0f} pairs/s"
    )


async def main(args: argparse.Namespace) -> None:
    memory = InProcessLimiter()
    report("in-process", await measure(memory, args.runs, args.concurrency))
    await memory.aclose()

    prefix = f"{{bench-limits-{uuid.uuid4().hex[:8]}}}:"
    shared = RedisLimiter(args.redis_url, prefix=prefix, max_connections=args.concurrency)
    try:
        await shared.ping()
    except Exception as exc:
        print(f"redis      skipped: {exc}")
        await shared.aclose()
        return
    try:
        report("redis", await measure(shared, args.redis_runs, args.concurrency))
    finally:
        await shared.aclose()
        with redis.Redis.from_url(args.redis_url) as client:
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20000)
    parser.add_argument("--redis-runs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    asyncio.run(main(parser.parse_args()))
