"""Fair admission to a model that can only run a few requests at once.

A local llama.cpp model runs one generation at a time. If requests simply
queued in arrival order, one client firing fifty requests would make everyone
else wait behind all fifty. :class:`FairScheduler` keeps one FIFO queue per
owner (API key) and grants free slots round-robin across owners, so each
client's next request waits for at most one request of every other client.
A bounded number may wait; past that, callers get :class:`RateLimited` (429).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque

from danlu.core.errors import RateLimited


class FairScheduler:
    """Round-robin across owners, FIFO within an owner, ``capacity`` at once."""

    def __init__(self, capacity: int = 1, max_waiting: int = 64, *, name: str = "model"):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.max_waiting = max_waiting
        self.name = name
        self.active = 0
        self._queues: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()

    @property
    def waiting(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    async def acquire(self, owner: str) -> None:
        """Wait for a slot. Call :meth:`release` exactly once after success."""
        if self.active < self.capacity and not self._queues:
            self.active += 1
            return
        if self.waiting >= self.max_waiting:
            raise RateLimited(
                f"{self.name} is busy: {self.waiting} requests are already waiting; "
                "retry shortly or raise DANLU_QUEUE_MAX_WAITING",
                retry_after=1.0,
                code="queue_full",
            )
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(owner, deque()).append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                # Granted at the moment we were cancelled: hand the slot on.
                self.release()
            else:
                self._forget(owner, future)
            raise

    def release(self) -> None:
        """Free a slot and grant it to the next owner in turn. Loop thread only."""
        self.active -= 1
        while self.active < self.capacity and self._queues:
            owner, queue = next(iter(self._queues.items()))
            future = queue.popleft()
            # Served: this owner goes to the back of the round.
            del self._queues[owner]
            if queue:
                self._queues[owner] = queue
            if future.done():
                continue
            self.active += 1
            future.set_result(None)

    def _forget(self, owner: str, future: asyncio.Future[None]) -> None:
        queue = self._queues.get(owner)
        if queue is None:
            return
        try:
            queue.remove(future)
        except ValueError:
            return
        if not queue:
            del self._queues[owner]
