"""The community's storage on both metadata backends (the `db` fixture: SQLite and PostgreSQL):
discussions, trending per day, the feed's queries, the webhook outbox, notifications."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from danlu.builder.tables import App, AppRun, AppVersion
from danlu.community.discussions import Discussions
from danlu.community.feed import Feed
from danlu.community.notifications import Notifications
from danlu.community.social import Social, app_counts, decay, repo_trending
from danlu.community.tables import AppLike, DownloadDay, WebhookDelivery
from danlu.community.targets import repo_target, target_of_app
from danlu.community.webhooks import CLAIM_TIMEOUT, Webhooks, enqueue
from danlu.core.accounts import Accounts
from danlu.core.db import Database
from danlu.core.ids import new_id
from danlu.core.keys import ApiKeys, Principal, Scope
from danlu.core.secretbox import SecretBox
from danlu.core.tables import utcnow
from danlu.hub.repos import Repos
from danlu.hub.tables import Repo, RepoType


class World:
    def __init__(self, db: Database):
        self.db = db
        self.accounts = Accounts(db)
        self.keys = ApiKeys(db)
        self.repos = Repos(db)
        for name in ("ann", "ben", "cat"):
            self.accounts.create_user(name)

    def principal(self, username: str) -> Principal:
        user = self.accounts.user(username)
        _, secret = self.keys.create(user, "t", scopes=list(Scope.DEFAULT))
        return self.keys.authenticate(secret)

    def app(self, owner: str, *, published: bool = True, access: str = "public") -> App:
        workspace = self.accounts.workspace(owner)
        with self.db.write() as session:
            app = App(
                id=new_id("app"), slug=new_id("s").lower(), workspace_id=workspace.id,
                name="An app", mode="workflow", draft={}, created_by=owner,
                published_version=1 if published else None, site_access=access,
            )  # fmt: skip
            session.add(app)
            session.flush()
            if published:
                session.add(AppVersion(app_id=app.id, version=1, spec={}, created_by=owner))
            return app


@pytest.fixture
def world(db: Database) -> World:
    return World(db)


def test_discussions_counts_replies_mentions_and_pins(world: World) -> None:
    ann, ben = world.principal("ann"), world.principal("ben")
    repo = world.repos.create(ann, RepoType.MODEL, "ann/m", private=False, url="u")
    target = repo_target(world.repos, ben, RepoType.MODEL, "ann/m")
    discussions = Discussions(world.db)
    first = discussions.create(ben, target, "First one", "hello @ann and @nobody")
    second = discussions.create(ann, target, "Second one", "")
    reply = discussions.comment(ann, target, 1, "hi @ben", parent_id=first.events[0].id)
    assert reply.parent_id == first.events[0].id and reply.author.roles == ("maintainer",)
    discussions.pin(ann, target, 1, True)
    page = discussions.listing(target)
    assert [(d.num, d.pinned, d.num_comments) for d in page.items] == [(1, True, 2), (2, False, 0)]
    assert (page.total, second.num) == (2, 2)
    assert [d.author.roles for d in page.items] == [("author",), ("author", "maintainer")]
    assert [d.num for d in discussions.listing(target, author="BEN").items] == [1]
    assert [d.num for d in discussions.listing(target, search="second").items] == [2]
    kinds = {
        who: [n.kind for n in Notifications(world.db).listing(p)[0]]
        for who, p in (("ann", ann), ("ben", ben))
    }
    assert kinds == {"ann": ["mention"], "ben": ["mention"]}  # a reply that mentions: told once
    assert repo.id == target.id


def test_trending_decays_per_day_on_every_backend(world: World) -> None:
    app = world.app("ann")
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    user_ids = [world.accounts.user(n).id for n in ("ann", "ben", "cat")]
    with world.db.write() as session:
        session.add(AppLike(user_id=user_ids[0], app_id=app.id, created_at=today))
        session.add(
            AppLike(user_id=user_ids[1], app_id=app.id, created_at=today - timedelta(days=3))
        )
        # Too old to count, and a draft run that never counts.
        session.add(
            AppLike(user_id=user_ids[2], app_id=app.id, created_at=today - timedelta(days=40))
        )
        for days, version in ((0, 1), (0, 1), (6, 1), (0, None)):
            session.add(_run(app.id, version, today - timedelta(days=days)))
    with world.db.read() as session:
        counts = app_counts(session, [app.id])[app.id]
    expected = 3 + 3 * decay(3) + 2 + decay(6)
    assert (counts.likes, counts.runs) == (3, 3)
    assert counts.trending == pytest.approx(expected, abs=1e-3)

    repo = world.repos.create(
        world.principal("ann"), RepoType.MODEL, "ann/dl", private=False, url="u"
    )
    social = Social(world.db)
    with world.db.write() as session:
        session.query(Repo).filter_by(id=repo.id).update({"downloads": 12})
        for days, total in ((2, 2), (1, 7)):  # 5 downloads the day before yesterday → yesterday
            day = (today - timedelta(days=days)).date().isoformat()
            session.add(DownloadDay(repo_id=repo.id, day=day, total=total))
    assert social.snapshot_downloads() >= 1  # today: 12, so 5 more today
    assert social.snapshot_downloads() == 0
    with world.db.read() as session:
        score = repo_trending(session, [repo.id])[repo.id]
    assert score == pytest.approx(5 * decay(1) + 5, abs=1e-3)
    top = social.trending_repos(None, RepoType.MODEL)
    assert top[0].target.name == "ann/dl" and top[0].downloads == 12


def _run(app_id: str, version: int | None, when: datetime) -> AppRun:
    return AppRun(
        id=new_id("run"), app_id=app_id, version=version, status="succeeded", inputs={},
        outputs={}, nodes=[], usage={}, elapsed_ms=1.0, created_at=when,
    )  # fmt: skip


def test_the_feed_shows_only_what_the_reader_may_see(world: World) -> None:
    ann, ben = world.principal("ann"), world.principal("ben")
    Social(world.db).follow(ben, "user", "ann")
    world.repos.create(ann, RepoType.MODEL, "ann/open", private=False, url="u")
    world.repos.create(ann, RepoType.MODEL, "ann/closed", private=True, url="u")
    shown = world.app("ann")
    hidden = world.app("ann", access="off")
    items = Feed(world.db).items(ben)
    seen = {(i.verb, (i.target or {}).get("name")) for i in items}
    assert ("repo.created", "ann/open") in seen and ("app.published", shown.slug) in seen
    assert all(name not in ("ann/closed", hidden.slug) for _, name in seen)
    assert Feed(world.db).items(ann) == []  # she follows no one
    with world.db.read() as session:
        assert target_of_app(session, hidden).private


def test_the_webhook_outbox_hands_each_delivery_to_one_sender(world: World) -> None:
    ann = world.principal("ann")
    hooks = Webhooks(world.db, SecretBox(b"k" * 32))
    hooks.set(ann, "ann", url="https://example.com/hook", events=None)
    workspace = world.accounts.workspace("ann")
    with world.db.write() as session:
        assert enqueue(session, workspace.id, "discussion.created", {"n": 1})
        assert not enqueue(session, new_id("ws"), "discussion.created", {})  # no webhook there
    claimed = hooks.claim()
    assert [d.event for d in claimed] == ["discussion.created"] and claimed[0].attempts == 1
    assert hooks.claim() == []  # taken
    with world.db.write() as session:  # its sender died long ago: it is due again
        session.query(WebhookDelivery).update(
            {"claimed_at": utcnow() - CLAIM_TIMEOUT - timedelta(seconds=1)}
        )
    again = hooks.claim()
    assert [d.attempts for d in again] == [2]
    hooks._settle(again[0], ok=False, status=503, error="down")
    views = {d.id: d for d in hooks.deliveries(ann, "ann")}
    assert views[again[0].id].status == "pending" and hooks.claim() == []  # backing off
    hooks._settle(again[0], ok=True, status=200, error=None)
    assert hooks.deliveries(ann, "ann")[0].status == "delivered"


def test_notifications_read_marks(world: World) -> None:
    ann, ben = world.principal("ann"), world.principal("ben")
    repo = world.repos.create(ann, RepoType.MODEL, "ann/n", private=False, url="u")
    target = repo_target(world.repos, ben, RepoType.MODEL, repo.repo_id)
    discussions = Discussions(world.db)
    discussions.create(ben, target, "Question", "?")
    for text in ("one", "two", "three"):
        discussions.comment(ann, target, 1, text)
    notes = Notifications(world.db)
    items, unread = notes.listing(ben)
    assert (len(items), unread) == (3, 3)
    assert notes.mark_read(ben, [items[0].id]) == 1
    assert notes.listing(ben, unread_only=True)[1] == 2
    assert notes.mark_read(ann, None) == 0  # not hers
    assert notes.mark_read(ben, None) == 2
    page: Any = notes.listing(ben, before=items[0].id, limit=1)[0]
    assert [n.id for n in page] == [items[1].id]
