"""What the console's community pages need of the API: a Markdown preview rendered exactly as
comments are, and the studio's cards naming who made each app (with a filter by maker)."""

from __future__ import annotations

from tests.community.hostile import HOSTILE, assert_inert
from tests.community.support import People, client
from tests.community.test_studio_and_social import publish, slugs, workflow
from tests.support.server import RunningServer


def test_the_markdown_preview_is_the_comment_renderer(
    community_server: RunningServer, people: People
) -> None:
    key = people.user("cs-writer")
    with client(community_server, key) as http, client(community_server, None) as anonymous:
        shown = http.post("/v1/community/markdown", json={"text": "Hi @cs-writer, **bold**"})
        assert shown.status_code == 200, shown.text
        assert "<strong>bold</strong>" in shown.json()["html"]
        assert 'class="mention"' in shown.json()["html"]
        assert shown.json()["mentions"] == ["cs-writer"]
        for text in HOSTILE:
            html = http.post("/v1/community/markdown", json={"text": text}).json()["html"]
            assert_inert(html)
        assert anonymous.post("/v1/community/markdown", json={"text": "x"}).status_code == 401
        too_long = http.post("/v1/community/markdown", json={"text": "x" * 70_000})
        assert too_long.status_code in (400, 422)


def test_studio_cards_name_their_maker_and_filter_by_them(
    community_server: RunningServer, people: People
) -> None:
    maker_key, other_key = people.user("cs-maker"), people.user("cs-other")
    with client(community_server, maker_key) as maker, client(community_server, other_key) as other:
        mine = publish(maker, workflow("Maker's pick", "Try jasmine"))
        theirs = publish(other, workflow("Other's pick", "Try rooibos"))
        card = other.get(f"/v1/studio/apps/{mine}").json()
        assert (card["created_by"], card["listed"]) == ("cs-maker", True)
        assert slugs(other.get("/v1/studio/apps", params={"author": "CS-Maker"})) == [mine]
        assert slugs(maker.get("/v1/studio/apps", params={"author": "cs-other"})) == [theirs]
        assert slugs(maker.get("/v1/studio/apps", params={"author": "nobody-at-all"})) == []
        hidden = maker.put(f"/v1/studio/apps/{mine}/profile", json={"listed": False})
        assert hidden.json()["listed"] is False
        assert slugs(other.get("/v1/studio/apps", params={"author": "cs-maker"})) == []
        assert maker.get(f"/v1/studio/apps/{mine}").json()["listed"] is False


def test_feed_items_about_apps_name_the_app(
    community_server: RunningServer, people: People
) -> None:
    maker_key, fan_key = people.user("cs-feed-maker"), people.user("cs-feed-fan")
    with client(community_server, maker_key) as maker, client(community_server, fan_key) as fan:
        assert (
            fan.post("/v1/community/following", json={"user": "cs-feed-maker"}).status_code == 201
        )
        slug = publish(maker, workflow("Named in the feed", "Try genmaicha"))
        opened = maker.post(f"/v1/apps/{slug}/discussions", json={"title": "Changelog"})
        assert opened.status_code == 200, opened.text
        feed = fan.get("/v1/community/feed").json()["data"]
        created = [i for i in feed if i["type"] == "discussion.created"]
        assert created and created[0]["target"]["name"] == slug
        assert created[0]["data"]["app_name"] == "Named in the feed"
        assert created[0]["data"]["title"] == "Changelog"
