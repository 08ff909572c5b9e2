"""Streaming from a local model's own thread: what the llama.cpp and transformers providers share.

Generation is blocking and CPU-bound, so it runs on the model's executor; tokens cross back
to the event loop through a queue. The fair scheduler's slot is held until the thread is
done, whatever happens to the caller, and a caller that stops listening sets ``cancel``,
which the thread checks between tokens.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import TypeVar

from danlu.gateway.scheduler import FairScheduler

T = TypeVar("T")
Emit = Callable[[object], None]


async def stream_from_thread(
    scheduler: FairScheduler,
    executor: Executor,
    owner: str,
    work: Callable[[Emit, threading.Event], None],
    is_last: Callable[[T], bool],
) -> AsyncIterator[T]:
    """Run ``work(emit, cancel)`` on ``executor`` once admitted; yield what it emits.

    An emitted exception is raised here; the stream ends after an item ``is_last`` accepts.
    """
    await scheduler.acquire(owner)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    cancel = threading.Event()

    def emit(item: object) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    try:
        future = loop.run_in_executor(executor, work, emit, cancel)
    except BaseException:
        scheduler.release()
        raise
    future.add_done_callback(lambda _: scheduler.release())
    try:
        while True:
            item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]  # work emits T or exceptions only
            if is_last(item):  # type: ignore[arg-type]
                return
    finally:
        cancel.set()
