"""Notifications (replies, mentions, status changes, finished jobs), the workspace webhook
delivered to a real HTTP server, and moderation with its audit log."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

from huggingface_hub import HfApi

from danlu.community.webhooks import sign
from danlu.core.accounts import Accounts
from danlu.core.ids import new_id
from danlu.core.tables import Workspace
from danlu.hub.repos import Repos
from danlu.refinery.job_tables import FineTune
from danlu.refinery.jobs import FineTunes
from tests.community.support import People, Receiver, client
from tests.support.server import RunningServer


def wait_for(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_webhook_gets_signed_events_off_the_request_path(
    community_server: RunningServer, people: People, receiver: Receiver
) -> None:
    owner_key, visitor_key = people.user("nt-owner"), people.user("nt-visitor")
    HfApi(endpoint=community_server.url, token=owner_key).create_repo("nt-owner/model")
    with (
        client(community_server, owner_key) as owner,
        client(community_server, visitor_key) as visitor,
    ):
        assert owner.get("/v1/workspaces/nt-owner/webhook").json()["webhook"] is None
        made = owner.put("/v1/workspaces/nt-owner/webhook", json={"url": receiver.url})
        assert made.status_code == 200, made.text
        secret = made.json()["webhook"]["secret"]
        assert secret.startswith("whsec_")
        again = owner.put("/v1/workspaces/nt-owner/webhook", json={"url": receiver.url})
        assert "secret" not in again.json()["webhook"]  # shown once

        # Only the workspace's owners and admins, and only public addresses (or allowed ones).
        assert visitor.get("/v1/workspaces/nt-owner/webhook").status_code == 404
        blocked = owner.put("/v1/workspaces/nt-owner/webhook", json={"url": "http://10.1.2.3/x"})
        assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "ssrf_blocked"
        assert "webhooks may not reach" in blocked.json()["error"]["message"]
        scheme = owner.put("/v1/workspaces/nt-owner/webhook", json={"url": "ftp://example.com/"})
        assert scheme.status_code == 400

        assert owner.post("/v1/workspaces/nt-owner/webhook/ping").status_code == 202
        opened = visitor.post(
            "/api/models/nt-owner/model/discussions", json={"title": "Hello", "description": "Hi"}
        )
        assert opened.status_code == 200
        visitor.post("/api/models/nt-owner/model/discussions/1/comment", json={"comment": "More"})
        wait_for(lambda: len(receiver.received) >= 3)

    ping = receiver.events("ping")[0]
    assert ping["headers"]["X-Danlu-Event"] == "ping"
    expected = "sha256=" + hmac.new(secret.encode(), ping["raw"], hashlib.sha256).hexdigest()
    assert ping["headers"]["X-Danlu-Signature-256"] == expected == sign(secret, ping["raw"])
    created = receiver.events("discussion.created")[0]["json"]
    assert created["workspace"] == "nt-owner"
    assert created["data"]["author"] == "nt-visitor" and created["data"]["num"] == 1
    assert receiver.events("discussion.comment")[0]["json"]["data"]["title"] == "Hello"
    with client(community_server, owner_key) as owner:
        deliveries = owner.get("/v1/workspaces/nt-owner/webhook/deliveries").json()["data"]
    assert {d["status"] for d in deliveries} == {"delivered"}
    assert {d["event"] for d in deliveries} == {"ping", "discussion.created", "discussion.comment"}


def test_a_failing_receiver_is_retried_and_a_finished_job_notifies(
    community_server: RunningServer, people: People, receiver: Receiver
) -> None:
    key = people.user("nt-trainer")
    receiver.status = 500
    with client(community_server, key) as http:
        put = http.put(
            "/v1/workspaces/nt-trainer/webhook",
            json={"url": receiver.url, "events": ["job.finished"]},
        )
        assert put.status_code == 200, put.text

        # A worker finishing a job (here: FineTunes.finish, as the refinery's worker calls it).
        with people.db.read() as session:
            space = session.query(Workspace).filter_by(slug="nt-trainer").one()
        user = Accounts(people.db).user("nt-trainer")
        job_id = new_id("ft")
        with people.db.write() as session:
            session.add(
                FineTune(
                    id=job_id, workspace_id=space.id, user_id=user.id, base_model="danlu/x",
                    base_revision="0" * 40, dataset="nt-trainer/d", dataset_revision="0" * 40,
                    output_repo="nt-trainer/out", status="running", method="lora",
                )
            )  # fmt: skip
        FineTunes(people.db, Repos(people.db)).finish(job_id, "succeeded")

        told = http.get("/v1/notifications").json()
        assert told["unread"] == 1
        assert told["data"][0]["kind"] == "job_finished"
        assert told["data"][0]["data"] == {
            "job": job_id, "status": "succeeded", "output_repo": "nt-trainer/out", "error": None
        }  # fmt: skip
        assert "published nt-trainer/out" in told["data"][0]["title"]

        # The receiver fails: the delivery is kept, to be tried again with backoff.
        wait_for(lambda: len(receiver.received) >= 1)
        first = http.get("/v1/workspaces/nt-trainer/webhook/deliveries").json()["data"][0]
        wait_for(
            lambda: (
                http.get("/v1/workspaces/nt-trainer/webhook/deliveries").json()["data"][0]["status"]
                == "pending"
            )
        )
        assert first["event"] == "job.finished" and first["attempts"] == 1
        failed = http.get("/v1/workspaces/nt-trainer/webhook/deliveries").json()["data"][0]
        assert failed["error"] == "the receiver answered 500" and failed["response_status"] == 500
    assert receiver.events("job.finished")[0]["json"]["data"]["job"] == job_id


def test_moderation_is_audited_and_limited_to_maintainers(
    community_server: RunningServer, people: People
) -> None:
    boss_key = people.user("md-boss")
    keeper_key = people.user("md-keeper")
    troll_key = people.user("md-troll")
    people.join("md-team", "md-boss", ("md-keeper", "member"))
    HfApi(endpoint=community_server.url, token=boss_key).create_repo("md-team/model")
    base = "/api/models/md-team/model/discussions"
    with (
        client(community_server, boss_key) as boss,
        client(community_server, keeper_key) as keeper,
        client(community_server, troll_key) as troll,
        client(community_server, community_server.admin_key) as admin,
    ):
        assert (
            troll.post(base, json={"title": "Buy my stuff", "description": "spam"}).status_code
            == 200
        )
        bad = troll.post(f"{base}/1/comment", json={"comment": "more spam"}).json()["newMessage"]
        assert troll.post(f"{base}/1/pin", json={"pinned": True}).status_code == 403
        assert troll.post(f"{base}/1/comment/{bad['id']}/hide").status_code == 200  # one's own
        other = troll.post(f"{base}/1/comment", json={"comment": "and more"}).json()["newMessage"]
        assert (
            keeper.post(f"{base}/1/comment/{other['id']}/edit", json={"content": "x"}).status_code
            == 403
        )

        hidden = keeper.post(f"{base}/1/comment/{other['id']}/hide", json={"reason": "spam"})
        assert hidden.status_code == 200
        assert hidden.json()["updatedComment"]["data"]["hiddenBy"] == "md-keeper"
        pinned = keeper.post(f"{base}/1/pin", json={"pinned": True})
        assert pinned.status_code == 200 and pinned.json()["pinned"] is True
        assert keeper.post(f"{base}/1/title", json={"title": "Off-topic"}).status_code == 200
        assert keeper.post(f"{base}/1/status", json={"status": "closed"}).status_code == 200
        assert troll.post(f"{base}/1/status", json={"status": "closed"}).status_code == 409

        events = boss.get(f"{base}/1").json()["events"]
        assert [e["type"] for e in events] == [
            "comment", "comment", "comment", "pin", "title-change", "status-change"
        ]  # fmt: skip
        assert events[2]["data"]["hidden"] and events[2]["data"]["latest"]["raw"] == ""

        audit = boss.get("/v1/community/audit", params={"workspace": "md-team"})
        assert audit.status_code == 200, audit.text
        entries = [(e["actor"], e["action"], e["target"]) for e in audit.json()["data"]]
        assert entries == [
            ("md-keeper", "discussion.close", "models/md-team/model#1"),
            ("md-keeper", "discussion.rename", "models/md-team/model#1"),
            ("md-keeper", "discussion.pin", "models/md-team/model#1"),
            ("md-keeper", "comment.hide", "models/md-team/model#1"),
        ]  # the troll hiding their own comment is not moderation
        assert audit.json()["data"][-1]["data"] == {
            "comment": other["id"], "author": "md-troll", "reason": "spam"
        }  # fmt: skip
        assert keeper.get("/v1/community/audit", params={"workspace": "md-team"}).status_code == 403
        assert troll.get("/v1/community/audit").json()["data"] == []
        everything = admin.get("/v1/community/audit", params={"limit": 200}).json()["data"]
        assert {"comment.hide", "discussion.pin"} <= {e["action"] for e in everything}
