"""Redis limits across separate server processes: shared totals, and a holder that dies."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from danlu.core.errors import RateLimited
from danlu.gateway.limits import Policy, RedisLimiter

REDIS_URL = "redis://127.0.0.1:6379/0"

# Each worker process: wait for the common start, then fire 40 requests at once against
# an RPM of 50 and 5 against a concurrency of 4 (held, never settled); print what it got.
BURST = """
import asyncio, json, sys, time
from danlu.core.errors import RateLimited
from danlu.gateway.limits import Policy, RedisLimiter

url, prefix, start = sys.argv[1], sys.argv[2], float(sys.argv[3])

async def attempt(limiter, scopes):
    try:
        return await limiter.acquire(scopes, 0)
    except RateLimited:
        return None

async def main():
    limiter = RedisLimiter(url, prefix=prefix)
    await limiter.ping()  # connect before the start, so all fire together
    await asyncio.sleep(max(0.0, start - time.time()))
    rpm = [("key:k1", Policy(rpm=50))]
    slots = [("workspace:w1", Policy(concurrency=4))]
    results = await asyncio.gather(
        *(attempt(limiter, rpm) for _ in range(40)), *(attempt(limiter, slots) for _ in range(5))
    )
    admitted = [result is not None for result in results]
    print(json.dumps({"rpm": sum(admitted[:40]), "concurrency": sum(admitted[40:])}))
    await limiter.aclose()

asyncio.run(main())
"""

# Takes the only slot with a short lease, says so, and waits to be killed.
HOLD = """
import asyncio, sys
from danlu.gateway.limits import Policy, RedisLimiter

async def main():
    limiter = RedisLimiter(sys.argv[1], prefix=sys.argv[2], lease_ttl=0.6)
    await limiter.acquire([("user:u1", Policy(concurrency=1))], 0)
    print("held", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"{{test-limits-{uuid.uuid4().hex[:12]}}}:"
    yield name
    with redis.Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"{name}*"))
        if keys:
            client.delete(*keys)


def test_processes_sharing_redis_never_admit_more_than_the_limit(prefix: str) -> None:
    start = time.time() + 1.5  # after the workers have imported and connected (mostly)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", BURST, REDIS_URL, prefix, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=30)
        assert worker.returncode == 0, err
        reports.append(json.loads(out))
    # Counting per process would admit 40 + 40 + 40 and 4 + 4 + 4.
    assert sum(report["rpm"] for report in reports) == 50, reports
    assert sum(report["concurrency"] for report in reports) == 4, reports


def test_the_slot_of_a_killed_process_frees_itself(prefix: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, REDIS_URL, prefix],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
    except BaseException:
        holder.kill()
        raise
    scopes = [("user:u1", Policy(concurrency=1))]

    async def main() -> float:
        limiter = RedisLimiter(REDIS_URL, prefix=prefix)
        try:
            await asyncio.sleep(0.8)  # past one lease life: the live holder has renewed it
            with pytest.raises(RateLimited):
                await limiter.acquire(scopes, 0)
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(timeout=10)
            killed = time.monotonic()
            while True:
                try:
                    await limiter.acquire(scopes, 0)
                    return time.monotonic() - killed
                except RateLimited:
                    assert time.monotonic() - killed < 3, "the dead holder's lease never expired"
                    await asyncio.sleep(0.05)
        finally:
            await limiter.aclose()

    try:
        freed_after = asyncio.run(main())
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.communicate()
    assert freed_after <= 0.6 + 0.5  # at most one lease life (plus polling and scheduling)
