"""Code that runs in other processes in the concurrency tests (spawned, so importable)."""

from __future__ import annotations

from typing import Any

from danlu.billing import Billing
from danlu.core.db import Database
from danlu.core.errors import InsufficientBalance

# A barrier shared with the test process, so every worker starts spending at once.
_start: Any = None


def set_start(barrier: Any) -> None:
    """ProcessPoolExecutor initializer: synchronization objects travel only at spawn."""
    global _start
    _start = barrier


def reserve_and_settle_until_refused(
    url: str,
    workspace_id: str,
    model: str,
    max_output: int,
    actual_outputs: list[int],
    start: Any = None,
) -> tuple[int, int]:
    """Its own engine: reserve, settle at the next actual size, until refused.

    Returns (calls that ran, units charged).
    """
    db = Database(url)
    billing = Billing(db)
    calls = charged = 0
    try:
        (start or _start).wait(timeout=60)
        while True:
            try:
                reservation = billing.reserve(workspace_id, model, 0, max_output, "req", None)
            except InsufficientBalance:
                return calls, charged
            output = actual_outputs[calls % len(actual_outputs)]
            charged += billing.settle(reservation, 0, 0, output).charged
            calls += 1
    finally:
        db.dispose()
