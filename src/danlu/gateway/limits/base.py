"""What every limiter shares: policies, the contract, the window's shape, refusals.

The window (both backends)
    Each limit counts in buckets of ``window / BUCKETS`` (one second for the one-minute
    window). A check sums the current bucket and the ``BUCKETS`` before it, so it always
    looks back *at least* a full window (60 to 61 s). Why this and not the alternatives:

    - a sliding log is exact but keeps one entry per request (per token for TPM, or a
      weighted entry that settle has to find again): memory grows with the limit;
    - two fixed windows weighted by overlap assume requests were spread evenly over the
      previous minute, so a burst at its end can be followed by nearly the limit again:
      up to twice the limit within 60 s;
    - a token bucket with capacity = limit admits the burst plus the refill: also up to 2x.

    Looking back 60-61 s instead costs at most ``BUCKETS + 1`` counters per scope and limit,
    and gives the bound the tests check: **no 60-second window ever holds more than the
    limit** (of requests; of *estimated* tokens for TPM), and a request is refused only if
    the limit was really reached within the last 61 s. So a client at the limit waits at
    most one bucket (1 s) longer than an exact sliding log would make it wait; at a steady
    rate the throughput is at least 60/61 of the limit.

    TPM is charged the estimate at admission; ``settle`` moves the admission bucket by
    ``actual - estimate`` (or, if that bucket has left the window, charges any excess to the
    current one). Real usage can exceed the limit only by what requests used beyond their
    estimates, which admission cannot know.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from danlu.core.errors import RateLimited

WINDOW_SECONDS = 60.0
BUCKETS = 60  # per window; the check looks back BUCKETS + 1 buckets


@dataclass(frozen=True)
class Policy:
    """The limits of one scope; ``None`` means unlimited, 0 blocks the scope."""

    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None

    def __post_init__(self) -> None:
        for name in ("rpm", "tpm", "concurrency"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"Policy.{name} must be None (unlimited) or >= 0, got {value}")

    @property
    def unlimited(self) -> bool:
        return self.rpm is None and self.tpm is None and self.concurrency is None


Scopes = Sequence[tuple[str, Policy]]


class Permit(Protocol):
    """One admitted request. Call :meth:`settle` exactly once it ends (extra calls are no-ops)."""

    async def settle(self, actual_tokens: int) -> None:
        """Correct TPM by ``actual_tokens - estimate`` and free the concurrency slot."""
        ...


class Limiter(Protocol):
    """Admission against per-scope RPM, TPM and concurrency, all scopes or none."""

    async def acquire(self, scopes: Scopes, tokens: int) -> Permit:
        """Admit a request of ``tokens`` estimated tokens, or raise :class:`RateLimited`.

        Either every limit of every scope has room and all are charged, or nothing is
        charged and the refusal names the limit to wait for.
        """
        ...

    async def aclose(self) -> None: ...


def check_request(scopes: Scopes, tokens: int) -> None:
    if tokens < 0:
        raise ValueError(f"tokens must be >= 0, got {tokens}")
    names = [name for name, _ in scopes]
    if len(set(names)) != len(names):
        raise ValueError(f"each scope may appear once: {names}")


def check_window(window: float) -> None:
    if window <= 0:
        raise ValueError(f"window must be positive, got {window}")


# What a refusal names, by limit kind.
RPM, TPM, CONCURRENCY = "rpm", "tpm", "concurrency"
_UNITS = {RPM: "requests per minute", TPM: "tokens per minute", CONCURRENCY: "concurrent requests"}
_WHO = {"key": "this API key", "user": "this user", "workspace": "this workspace"}
# How long a refused concurrent request is told to wait: slots free when requests end,
# which no one can predict; a second is what OpenAI-style clients back off by anyway.
CONCURRENCY_RETRY = 1.0


def _whose(scope: str) -> str:
    kind = scope.split(":", 1)[0]
    return _WHO.get(kind, f"this {kind}")


@dataclass(frozen=True)
class Refusal:
    """One limit without room: which, and how long until it has room (``None``: never)."""

    scope: str
    kind: str
    limit: int
    wait: float | None
    tokens: int = 0

    def rank(self) -> float:
        # The refusal to report is the one that binds longest; "never" binds longest.
        return math.inf if self.wait is None else self.wait

    def error(self, window: float) -> RateLimited:
        whose, unit = _whose(self.scope), _UNITS[self.kind]
        if self.wait is None:
            message = (
                f"this request's estimated {self.tokens} tokens exceed {whose}'s limit of "
                f"{self.limit} {unit}, so it can never be admitted; lower max_tokens or "
                "shorten the prompt"
            )
            if self.kind == RPM or self.limit == 0:
                message = f"{whose} is blocked: its limit is 0 {unit}"
            retry_after = window
        else:
            retry_after = max(self.wait, 0.001)
            seconds = max(1, math.ceil(retry_after))
            message = f"{whose}'s limit of {self.limit} {unit} is reached; retry in {seconds} s"
        return RateLimited(
            message,
            retry_after=retry_after,
            code=f"{self.kind}_limit_reached",
            scope=self.scope,
            limit=self.kind,
        )


class _Unlimited:
    """The permit of a request that no scope limits: nothing to settle."""

    async def settle(self, actual_tokens: int) -> None:
        return None


NO_PERMIT: Permit = _Unlimited()


def worst(refusals: Sequence[Refusal]) -> Refusal:
    return max(refusals, key=Refusal.rank)
