"""Two users find each other's app in the studio, use it, like it, duplicate it and discuss it;
follows make a feed; apps link the models, datasets and knowledge bases they use."""

from __future__ import annotations

from typing import Any

import httpx
from huggingface_hub import HfApi

from danlu.core.ids import new_id
from danlu.core.tables import Workspace
from danlu.knowledge.tables import KnowledgeBase
from tests.community.support import People, client
from tests.support.server import RunningServer


def workflow(name: str, text: str) -> dict[str, Any]:
    """A workflow without a model: start → template → end."""
    return {
        "schema": "danlu.app/v1",
        "app": {"name": name, "mode": "workflow", "description": f"{name}: {text}"},
        "graph": {
            "nodes": [
                {"id": "start", "type": "start",
                 "config": {"inputs": [{"name": "mood", "type": "string"}]}},
                {"id": "pick", "type": "template",
                 "config": {"template": text + " when you feel {{ start.mood }}."}},
                {"id": "end", "type": "end",
                 "config": {"outputs": [{"name": "tea", "value": "{{ pick.output }}"}]}},
            ],
            "edges": [{"source": "start", "target": "pick"}, {"source": "pick", "target": "end"}],
        },
    }  # fmt: skip


def publish(http: httpx.Client, spec: dict[str, Any]) -> str:
    made = http.post("/v1/apps/import", json=spec)
    assert made.status_code == 201, made.text
    slug = str(made.json()["slug"])
    assert http.post(f"/v1/apps/{slug}/publish").status_code == 200
    return slug


def slugs(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [card["slug"] for card in answer.json()["data"]]


def test_two_users_find_use_like_duplicate_and_discuss_an_app(
    community_server: RunningServer, people: People
) -> None:
    alice_key, bob_key = people.user("st-alice"), people.user("st-bob")
    with (
        client(community_server, alice_key) as alice,
        client(community_server, bob_key) as bob,
        client(community_server, None) as anonymous,
    ):
        tea = publish(alice, workflow("Tea guide", "Try oolong"))
        coffee = publish(alice, workflow("Coffee guide", "Try espresso"))
        profile = alice.put(
            f"/v1/studio/apps/{tea}/profile",
            json={"cover_url": "https://img.example/tea.png", "tags": ["Tea", "drinks"],
                  "description": "Which tea for which mood"},
        )  # fmt: skip
        assert profile.status_code == 200, profile.text
        assert profile.json()["tags"] == ["tea", "drinks"]
        assert bob.put(f"/v1/studio/apps/{tea}/profile", json={"tags": ["x"]}).status_code == 403
        bad = alice.put(f"/v1/studio/apps/{tea}/profile", json={"cover_url": "javascript:x()"})
        assert bad.status_code == 400

        # Bob finds it: by search, by tag, and anyone sees a public app.
        assert slugs(bob.get("/v1/studio/apps", params={"search": "which tea"})) == [tea]
        assert slugs(bob.get("/v1/studio/apps", params={"tag": "tea"})) == [tea]
        assert {tea, coffee} <= set(slugs(anonymous.get("/v1/studio/apps")))
        card = bob.get(f"/v1/studio/apps/{tea}").json()
        assert card["cover_url"] == "https://img.example/tea.png"
        assert (card["page"], card["likes"], card["runs"], card["liked"]) == (
            f"/s/{tea}", 0, 0, False
        )  # fmt: skip
        assert bob.get("/v1/studio/tags").json()["data"][0] == {"tag": "drinks", "apps": 1}

        # Bob uses it on its page's API, at once.
        ran = bob.post(
            f"/v1/sites/{tea}/messages",
            json={"visitor": "bob-browser-1", "inputs": {"mood": "calm"}, "stream": False},
        )
        assert ran.status_code == 200, ran.text
        assert ran.json()["outputs"]["tea"] == "Try oolong when you feel calm."

        # Likes and run counts feed the card and the sorts.
        assert bob.post(f"/v1/apps/{tea}/like").json() == {"likes": 1}
        assert bob.post(f"/v1/apps/{tea}/like").json() == {"likes": 1}  # idempotent
        card = bob.get(f"/v1/studio/apps/{tea}").json()
        assert (card["likes"], card["runs"], card["liked"]) == (1, 1, True)
        assert card["trending"] == 4.0  # 3 for the like, 1 for the run, both today
        assert [u["user"] for u in alice.get(f"/v1/apps/{tea}/likers").json()["data"]] == ["st-bob"]
        assert slugs(bob.get("/v1/studio/apps", params={"sort": "likes", "search": "guide"}))[
            :2
        ] == [tea, coffee]
        assert slugs(bob.get("/v1/studio/apps", params={"sort": "new", "search": "guide"}))[:2] == [
            coffee,
            tea,
        ]
        trending = bob.get("/v1/community/trending", params={"type": "app"}).json()["data"]
        assert trending[0]["name"] == tea

        # Bob duplicates it into his workspace: a draft of his own, secrets and all left behind.
        copied = bob.post(f"/v1/studio/apps/{tea}/duplicate", json={"name": "My tea guide"})
        assert copied.status_code == 201, copied.text
        copy = copied.json()
        assert copy["slug"] != tea and copy["published_version"] is None
        assert copy["name"] == "My tea guide"
        assert bob.get(f"/v1/apps/{copy['slug']}").status_code == 200
        assert alice.get(f"/v1/apps/{copy['slug']}").status_code == 404
        assert bob.get(f"/v1/studio/apps/{copy['slug']}").json()["duplicated_from"] == tea
        assert copy["slug"] not in slugs(alice.get("/v1/studio/apps"))  # a draft: not listed

        # …and discusses it; Alice answers; both are told.
        opened = bob.post(
            f"/v1/apps/{tea}/discussions",
            json={"title": "Green tea too?", "description": "Love it, @st-alice!"},
        )
        assert opened.status_code == 200, opened.text
        first = opened.json()["events"][0]
        assert first["author"]["roles"] == ["author"]
        mentions = alice.get("/v1/notifications").json()
        assert mentions["unread"] == 1 and mentions["data"][0]["kind"] == "mention"
        assert mentions["data"][0]["data"]["path"] == f"apps/{tea}"
        reply = alice.post(
            f"/v1/apps/{tea}/discussions/1/comment",
            json={"comment": "Added **sencha**.", "parent": first["id"]},
        ).json()["newMessage"]
        assert reply["parent"] == first["id"] and reply["author"]["roles"] == ["maintainer"]
        closed = alice.post(f"/v1/apps/{tea}/discussions/1/status", json={"status": "closed"})
        assert closed.status_code == 200, closed.text
        told = bob.get("/v1/notifications", params={"unread": True}).json()
        assert [n["kind"] for n in told["data"]] == ["status", "reply"]
        assert told["data"][1]["actor"] == "st-alice"
        assert bob.post("/v1/notifications/read", json={}).json() == {"marked": 2}
        assert bob.get("/v1/notifications").json()["unread"] == 0
        listed = anonymous.get(f"/v1/apps/{tea}/discussions").json()
        assert [(d["num"], d["status"], d["numComments"]) for d in listed["discussions"]] == [
            (1, "closed", 2)
        ]


def test_closed_and_unpublished_apps_and_their_discussions_stay_inside(
    community_server: RunningServer, people: People
) -> None:
    owner_key, other_key = people.user("st-owner"), people.user("st-other")
    with client(community_server, owner_key) as owner, client(community_server, other_key) as other:
        draft = owner.post("/v1/apps/import", json=workflow("Draft", "Try water")).json()["slug"]
        shut = publish(owner, workflow("Shut", "Try nothing"))
        assert owner.put(f"/v1/apps/{shut}/site", json={"access": "off"}).status_code == 200
        for slug in (draft, shut):
            assert (
                owner.post(
                    f"/v1/apps/{slug}/discussions", json={"title": "Internal", "description": "x"}
                ).status_code
                == 200
            )
            assert slug not in slugs(other.get("/v1/studio/apps"))
            for path in (f"/v1/studio/apps/{slug}", f"/v1/apps/{slug}/discussions",
                         f"/v1/apps/{slug}/discussions/1"):  # fmt: skip
                answer = other.get(path)
                assert answer.status_code == 404, (path, answer.text)
                assert answer.json()["error"]["type"] == "not_found_error"
            assert other.post(f"/v1/apps/{slug}/like").status_code == 404
            assert other.post(f"/v1/studio/apps/{slug}/duplicate").status_code == 404
        # Signed-in only: users see it, anonymous callers do not.
        inner = publish(owner, workflow("Inner", "Try mint"))
        assert owner.put(f"/v1/apps/{inner}/site", json={"access": "signed_in"}).status_code == 200
        assert inner in slugs(other.get("/v1/studio/apps"))
        with client(community_server, None) as anonymous:
            assert inner not in slugs(anonymous.get("/v1/studio/apps"))
            assert anonymous.get(f"/v1/apps/{inner}/discussions").status_code == 404


def test_follows_make_a_feed_of_what_they_did(
    community_server: RunningServer, people: People
) -> None:
    maker_key, fan_key = people.user("st-maker"), people.user("st-fan")
    people.join("st-guild", "st-maker")
    maker = HfApi(endpoint=community_server.url, token=maker_key)
    with client(community_server, maker_key) as http, client(community_server, fan_key) as fan:
        assert fan.post("/v1/community/following", json={"user": "st-maker"}).status_code == 201
        assert (
            fan.post("/v1/community/following", json={"workspace": "st-guild"}).status_code == 201
        )
        assert fan.post("/v1/community/following", json={"user": "st-fan"}).status_code == 409
        assert [f["name"] for f in fan.get("/v1/community/following").json()["data"]] == [
            "st-guild", "st-maker"
        ]  # fmt: skip
        maker.create_repo("st-maker/public-model")
        maker.create_repo("st-maker/hidden-model", private=True)
        maker.create_repo("st-guild/team-data", repo_type="dataset")
        app = publish(http, workflow("Maker app", "Try pu-erh"))
        maker.create_discussion("st-maker/public-model", "Roadmap")

        feed = fan.get("/v1/community/feed").json()["data"]
        seen = [(item["type"], (item["target"] or {}).get("name")) for item in feed]
        assert ("discussion.created", "st-maker/public-model") in seen
        assert ("app.published", app) in seen
        assert ("repo.created", "st-maker/public-model") in seen
        assert ("repo.created", "st-guild/team-data") in seen
        assert all(name != "st-maker/hidden-model" for _, name in seen)
        times = [item["created_at"] for item in feed]
        assert times == sorted(times, reverse=True)
        older = fan.get("/v1/community/feed", params={"before": times[1], "limit": 100}).json()
        assert [i["id"] for i in older["data"]] == [i["id"] for i in feed[2:]]

        profile = http.get("/v1/community/users/st-maker").json()
        assert profile["followers"] == 1
        followers = http.get("/v1/community/workspaces/st-guild/followers").json()["data"]
        assert followers == [{"user": "st-fan"}]
        assert fan.delete("/v1/community/following/user/st-maker").status_code == 200
        assert http.get("/v1/community/users/st-maker").json()["followers"] == 0
        # The maker's own feed follows no one.
        assert http.get("/v1/community/feed").json()["data"] == []


def test_apps_link_what_they_use_and_those_link_back(
    community_server: RunningServer, people: People
) -> None:
    key, outsider_key = people.user("st-linker"), people.user("st-stranger")
    hub = HfApi(endpoint=community_server.url, token=key)
    hub.create_repo("st-linker/tea-model")
    hub.create_repo("st-linker/tea-chats", repo_type="dataset")
    hub.create_repo("st-linker/secret-data", repo_type="dataset", private=True)
    with people.db.write() as session:
        space = session.query(Workspace).filter_by(slug="st-linker").one()
        kb_id = new_id("kb")
        session.add(
            KnowledgeBase(id=kb_id, workspace_id=space.id, name="Tea notes", embedding_model="e5")
        )
    scholar = {
        "schema": "danlu.app/v1",
        "app": {"name": "Tea scholar", "mode": "chat"},
        "graph": {
            "nodes": [
                {"id": "start", "type": "start", "config": {"inputs": []}},
                {"id": "kb", "type": "knowledge_retrieval", "config": {"knowledge_bases": [kb_id]}},
                {"id": "llm", "type": "llm", "config": {
                    "model": "st-linker/tea-model",
                    "prompt": [{"role": "user", "text": "{{ kb.context }} {{ sys.query }}"}]}},
                {"id": "reply", "type": "answer", "config": {"text": "{{ llm.text }}"}},
            ],
            "edges": [{"source": "start", "target": "kb"}, {"source": "kb", "target": "llm"},
                      {"source": "llm", "target": "reply"}],
        },
    }  # fmt: skip
    with client(community_server, key) as owner, client(community_server, outsider_key) as other:
        app = publish(owner, scholar)
        added = owner.post(
            f"/v1/studio/apps/{app}/links", json={"kind": "dataset", "ref": "st-linker/tea-chats"}
        )
        assert added.status_code == 200, added.text
        private = owner.post(
            f"/v1/studio/apps/{app}/links", json={"kind": "dataset", "ref": "st-linker/secret-data"}
        )
        assert private.status_code == 200
        assert (
            other.post(
                f"/v1/studio/apps/{app}/links",
                json={"kind": "dataset", "ref": "st-linker/tea-chats"},
            ).status_code
            == 403
        )
        shown = owner.get(f"/v1/studio/apps/{app}").json()["links"]
        links = {(link["kind"], link["ref"]): link for link in shown}
        assert links[("model", "st-linker/tea-model")]["repo"] == "st-linker/tea-model"
        assert links[("model", "st-linker/tea-model")]["source"] == "dsl"
        assert links[("knowledge_base", kb_id)]["knowledge_base"] == "Tea notes"
        assert links[("dataset", "st-linker/tea-chats")]["source"] == "manual"
        assert ("dataset", "st-linker/secret-data") in links
        # An outsider sees the public links, not the knowledge base or the private dataset.
        seen = [
            (link["kind"], link["ref"])
            for link in other.get(f"/v1/studio/apps/{app}").json()["links"]
        ]
        assert ("model", "st-linker/tea-model") in seen and ("knowledge_base", None) in seen
        assert ("dataset", "st-linker/secret-data") not in seen
        # The model, the dataset and the knowledge base link back to the app.
        for query in ({"model": "st-linker/tea-model"}, {"dataset": "st-linker/tea-chats"},
                      {"knowledge_base": kb_id}):  # fmt: skip
            assert slugs(other.get("/v1/studio/used-by", params=query)) == [app], query
        assert (
            other.get("/v1/studio/used-by", params={"dataset": "st-linker/secret-data"}).status_code
            == 404
        )
        removed = owner.delete(f"/v1/studio/apps/{app}/links/dataset/st-linker/tea-chats")
        assert removed.status_code == 200
        assert (
            slugs(other.get("/v1/studio/used-by", params={"dataset": "st-linker/tea-chats"})) == []
        )
