"""FairScheduler: round-robin across owners, FIFO within one, bounded waiting."""

from __future__ import annotations

import asyncio

import pytest

from danlu.core.errors import RateLimited
from danlu.gateway.scheduler import FairScheduler


async def _run_order(scheduler: FairScheduler, requests: list[str]) -> list[str]:
    served: list[str] = []

    async def one(owner: str, label: str) -> None:
        await scheduler.acquire(owner)
        served.append(label)
        await asyncio.sleep(0)
        scheduler.release()

    await scheduler.acquire("holder")  # everyone below has to queue
    tasks = []
    for position, owner in enumerate(requests):
        tasks.append(asyncio.create_task(one(owner, f"{owner}{position}")))
        await asyncio.sleep(0)
    scheduler.release()
    await asyncio.gather(*tasks)
    return served


def test_one_greedy_client_does_not_starve_others() -> None:
    order = asyncio.run(_run_order(FairScheduler(1, 100), ["a", "a", "a", "a", "b", "c"]))
    assert order == ["a0", "b4", "c5", "a1", "a2", "a3"]


def test_fifo_within_one_owner() -> None:
    order = asyncio.run(_run_order(FairScheduler(1, 100), ["a", "a", "a"]))
    assert order == ["a0", "a1", "a2"]


def test_bounded_waiting_raises_rate_limited() -> None:
    async def scenario() -> None:
        scheduler = FairScheduler(1, max_waiting=2)
        await scheduler.acquire("x")
        waiters = [asyncio.create_task(scheduler.acquire("y")) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(RateLimited) as error:
            await scheduler.acquire("z")
        assert error.value.retry_after > 0
        scheduler.release()
        scheduler.release()
        scheduler.release()
        await asyncio.gather(*waiters)
        assert scheduler.active == 0 and scheduler.waiting == 0

    asyncio.run(scenario())


def test_cancelled_waiter_gives_up_its_place() -> None:
    async def scenario() -> None:
        scheduler = FairScheduler(1, 10)
        await scheduler.acquire("x")
        waiter = asyncio.create_task(scheduler.acquire("y"))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert scheduler.waiting == 0
        scheduler.release()
        assert scheduler.active == 0
        await scheduler.acquire("z")  # free again at once
        assert scheduler.active == 1

    asyncio.run(scenario())


def test_capacity_above_one() -> None:
    async def scenario() -> None:
        scheduler = FairScheduler(2, 10)
        await scheduler.acquire("a")
        await scheduler.acquire("b")
        third = asyncio.create_task(scheduler.acquire("c"))
        await asyncio.sleep(0)
        assert not third.done() and scheduler.waiting == 1
        scheduler.release()
        await third
        assert scheduler.active == 2

    asyncio.run(scenario())
