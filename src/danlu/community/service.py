"""The community's services as a server holds them, and its background loop.

:func:`open_community` builds them; :func:`run_background` delivers webhooks and snapshots
download counters for the trending score.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from danlu.builder.apps import Apps
from danlu.builder.ssrf import Network
from danlu.community.audit import Audit
from danlu.community.discussions import Discussions
from danlu.community.feed import Feed
from danlu.community.notifications import Notifications
from danlu.community.posting import PostingLimit
from danlu.community.social import Social
from danlu.community.studio import Studio
from danlu.community.webhooks import Webhooks
from danlu.core.db import Database
from danlu.core.secretbox import SecretBox
from danlu.gateway.limits import Limiter
from danlu.hub.repos import Repos

log = logging.getLogger(__name__)

DELIVERY_POLL_SECONDS = 1.0
SNAPSHOT_EVERY_SECONDS = 600.0


@dataclass
class Community:
    """The community's services, built once per server."""

    discussions: Discussions
    social: Social
    feed: Feed
    notifications: Notifications
    webhooks: Webhooks
    studio: Studio
    audit: Audit
    posting: PostingLimit
    repos: Repos
    db: Database


def open_community(
    db: Database,
    repos: Repos,
    apps: Apps,
    box: SecretBox,
    limiter: Limiter,
    *,
    posts_per_minute: int,
) -> Community:
    return Community(
        discussions=Discussions(db),
        social=Social(db, anonymous_read=repos.anonymous_read),
        feed=Feed(db, anonymous_read=repos.anonymous_read),
        notifications=Notifications(db),
        webhooks=Webhooks(db, box),
        studio=Studio(db, repos, apps),
        audit=Audit(db),
        posting=PostingLimit(limiter, posts_per_minute),
        repos=repos,
        db=db,
    )


async def run_background(community: Community, allow: Iterable[Network]) -> None:
    """Deliver due webhooks every second; snapshot download counters every ten minutes."""
    allowed = list(allow)
    next_snapshot = 0.0
    while True:
        try:
            await community.webhooks.deliver_due(allowed)
            if time.monotonic() >= next_snapshot:
                await asyncio.to_thread(community.social.snapshot_downloads)
                next_snapshot = time.monotonic() + SNAPSHOT_EVERY_SECONDS
        except Exception:  # a database hiccup must not end the loop
            log.exception("community background work failed")
        await asyncio.sleep(DELIVERY_POLL_SECONDS)
