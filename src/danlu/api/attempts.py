"""A sliding window of failed attempts per subject, in this process: sign-in failures.

Not the gateway's limiter (danlu.gateway.limits, which counts every event in a one-minute
window): this counts only failures, over fifteen minutes, and forgets them on success.
"""

from __future__ import annotations

import time
from collections import deque

from danlu.core.errors import RateLimited


class AttemptWindow:
    """At most ``limit`` attempts per subject in any ``seconds``-long window."""

    def __init__(self, limit: int, seconds: float, max_subjects: int = 100_000):
        self.limit = limit
        self.seconds = seconds
        self.max_subjects = max_subjects
        self._seen: dict[str, deque[float]] = {}

    def _recent(self, subject: str, now: float) -> deque[float]:
        times = self._seen.get(subject)
        if times is None:
            if len(self._seen) >= self.max_subjects:
                self._seen.clear()  # rare; forgetting only makes the window lenient once
            times = self._seen[subject] = deque()
        while times and times[0] <= now - self.seconds:
            times.popleft()
        return times

    def check(self, subject: str, message: str) -> None:
        """Raise :class:`RateLimited` if the subject has used up its window."""
        now = time.monotonic()
        times = self._recent(subject, now)
        if len(times) >= self.limit:
            retry_after = max(1.0, times[0] + self.seconds - now)
            raise RateLimited(
                f"{message}; try again in {retry_after:.0f} s",
                retry_after=retry_after,
                code="rate_limited",
            )

    def add(self, subject: str) -> None:
        now = time.monotonic()
        self._recent(subject, now).append(now)

    def clear(self, subject: str) -> None:
        self._seen.pop(subject, None)
