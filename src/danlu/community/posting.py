"""Rate limits on posting: discussions, comments and edits per user per minute.

They count in the gateway's limiter (:mod:`danlu.gateway.limits`) under their own scope,
``community-user:{id}``, so with ``DANLU_REDIS_URL`` they hold across server processes, and
if Redis is unreachable posting gets 503 instead of passing unchecked. Site admins are not
limited: they moderate. ``DANLU_COMMUNITY_POSTS_PER_MINUTE=0`` turns the limit off.
"""

from __future__ import annotations

from danlu.core.keys import Principal
from danlu.gateway.limits import Limiter, count_event


class PostingLimit:
    def __init__(self, limiter: Limiter, per_minute: int):
        self.limiter = limiter
        self.per_minute = per_minute

    async def check(self, principal: Principal) -> None:
        """Count one post, or raise :class:`RateLimited` saying when to try again."""
        if principal.is_admin or self.per_minute <= 0:
            return
        await count_event(
            self.limiter,
            f"community-user:{principal.user_id}",
            self.per_minute,
            f"you are posting too fast: at most {self.per_minute} posts (discussions, "
            "comments, edits) a minute",
            code="posting_rate_limited",
        )
