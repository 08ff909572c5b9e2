"""Rate limits of the gateway: RPM, TPM and concurrency per API key, user and workspace.

``await limiter.acquire([("key:k1", Policy(rpm=60)), ("workspace:w1", Policy(tpm=10_000))],
tokens=estimate)`` admits a request against every scope at once or raises
:class:`~danlu.core.errors.RateLimited` naming the limit; the returned permit's
``settle(actual_tokens)`` corrects TPM and frees the concurrency slot when the request ends.
In-process by default; with ``DANLU_REDIS_URL`` the limits hold across server processes
(:mod:`.redis_backend`). The window and its bound are explained in :mod:`.base`.
"""

from __future__ import annotations

import math

from danlu.core.errors import RateLimited
from danlu.gateway.limits.base import Limiter, Permit, Policy, Scopes
from danlu.gateway.limits.memory import InProcessLimiter
from danlu.gateway.limits.redis_backend import RedisLimiter

__all__ = [
    "InProcessLimiter",
    "Limiter",
    "Permit",
    "Policy",
    "RedisLimiter",
    "Scopes",
    "count_event",
    "open_limiter",
]


def open_limiter(redis_url: str | None) -> Limiter:
    """Redis-backed limits when a URL is given (DANLU_REDIS_URL), else in-process ones.

    Nothing connects yet: the first acquire does, and fails closed if Redis is unreachable.
    """
    if redis_url:
        return RedisLimiter(redis_url)
    return InProcessLimiter()


async def count_event(
    limiter: Limiter, scope: str, per_minute: int, too_fast: str, *, code: str
) -> None:
    """Count one event (a post, a message) against ``per_minute`` for ``scope``, or raise
    :class:`RateLimited` with ``too_fast`` and when to retry. Events that are not model
    calls (community posts, public app pages) use this, so they share the gateway's limits
    engine and hold across servers with Redis."""
    try:
        permit = await limiter.acquire([(scope, Policy(rpm=per_minute))], 0)
    except RateLimited as exc:
        seconds = max(1, math.ceil(exc.retry_after))
        raise RateLimited(
            f"{too_fast}; retry in {seconds} s",
            retry_after=exc.retry_after,
            code=code,
            scope=scope,
            limit="rpm",
        ) from None
    await permit.settle(0)
