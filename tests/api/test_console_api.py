"""What the console needs from the API: sign-in, the canvas's checks, and public app pages."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.support.server import RunningServer

ADMIN_PASSWORD = "admin-password-for-tests"


def _client(server: RunningServer, key: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.url, timeout=120, headers=headers)


def _events(response: httpx.Response) -> list[dict[str, Any]]:
    blocks = [b for b in response.text.split("\n\n") if b.startswith("data: ")]
    assert blocks[-1] == "data: [DONE]"
    return [json.loads(b[6:]) for b in blocks[:-1]]


def _published_app(server: RunningServer, template: str) -> str:
    with _client(server, server.admin_key) as http:
        app = http.post("/v1/apps", json={"template": template}).json()
        assert http.post(f"/v1/apps/{app['slug']}/publish").status_code == 200
        return str(app["slug"])


def test_sign_in_gives_a_session_key_that_sign_out_revokes(server: RunningServer) -> None:
    with _client(server) as http:
        wrong = http.post("/v1/auth/login", json={"username": "admin", "password": "nope"})
        assert wrong.status_code == 401
        assert "wrong username or password" in wrong.json()["error"]["message"]
        login = http.post("/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert login.status_code == 200, login.text
        token = login.json()["token"]
        assert token.startswith("sk-danlu-")
    with _client(server, token) as http:
        me = http.get("/v1/auth/me").json()
        assert me["username"] == "admin" and me["is_admin"]
        assert {"slug": "admin", "role": "owner"} in me["workspaces"]
        assert http.post("/v1/auth/logout").status_code == 204
        assert http.get("/v1/auth/me").status_code == 401


def test_password_guessing_is_slowed_down(server: RunningServer) -> None:
    with _client(server) as http:
        body = {"username": "nobody-guessed", "password": "x"}
        codes = [http.post("/v1/auth/login", json=body).status_code for _ in range(11)]
        assert codes[:10] == [401] * 10
        assert codes[10] == 429
        limited = http.post("/v1/auth/login", json=body)
        assert limited.json()["error"]["code"] == "rate_limited"
        assert "try again in" in limited.json()["error"]["message"]


def test_the_canvas_lists_node_types_and_checks_drafts(server: RunningServer) -> None:
    with _client(server, server.admin_key) as http:
        types = {t["type"]: t for t in http.get("/v1/builder/node-types").json()["data"]}
        assert {"start", "llm", "answer", "end", "if_else", "code"} <= set(types)
        assert types["if_else"]["branching"] is True
        assert "properties" in types["llm"]["config_schema"]
        draft = {
            "schema": "danlu.app/v1",
            "app": {"name": "check", "mode": "workflow"},
            "graph": {
                "nodes": [
                    {"id": "start", "type": "start", "config": {"inputs": [{"name": "q"}]}},
                    {"id": "shout", "type": "template", "config": {"template": "{{ start.q }}!"}},
                    {"id": "late", "type": "template", "config": {"template": "{{ end.x }}"}},
                    {
                        "id": "end",
                        "type": "end",
                        "config": {"outputs": [{"name": "a", "value": "{{ shout.output }}"}]},
                    },
                ],
                "edges": [
                    {"source": "start", "target": "shout"},
                    {"source": "shout", "target": "end"},
                    {"source": "start", "target": "late"},
                    {"source": "start", "target": "ghost"},
                ],
            },
        }
        report = http.post("/v1/builder/check", json=draft).json()
        assert report["ok"] is False
        assert report["outputs"]["shout"] == {"output": "string"}
        assert report["outputs"]["start"] == {"q": "string"}
        assert report["upstream"]["end"] == ["shout", "start"]
        assert report["upstream"]["start"] == []
        by_node = {p["node"] for p in report["problems"] if p["node"]}
        assert "late" in by_node
        dangling = [p for p in report["problems"] if p["edge"]]
        assert dangling[0]["edge"] == {"source": "start", "target": "ghost", "handle": None}
        assert "sys" not in report["outputs"] and "query" in report["system"]
        fixed = {**draft, "graph": {**draft["graph"], "edges": draft["graph"]["edges"][:2]}}
        fixed["graph"]["nodes"] = [n for n in draft["graph"]["nodes"] if n["id"] != "late"]
        assert http.post("/v1/builder/check", json=fixed).json() == {
            **http.post("/v1/builder/check", json=fixed).json(),
            "ok": True,
            "problems": [],
        }
        broken = http.post("/v1/builder/check", json={"schema": "danlu.app/v1"})
        assert broken.status_code == 400


def test_a_published_chat_app_is_usable_by_anyone_with_the_link(server: RunningServer) -> None:
    slug = _published_app(server, "blank-chat")
    with _client(server) as http:
        info = http.get(f"/v1/sites/{slug}").json()
        assert info["mode"] == "chat" and info["access"] == "public" and info["version"] == 1
        turn = {"visitor": "visitor-one-123", "query": "Say hello.", "stream": True}
        answer = http.post(f"/v1/sites/{slug}/messages", json=turn)
        assert answer.status_code == 200, answer.text
        events = _events(answer)
        assert events[-1]["event"] == "run_finished"
        conversation = events[0]["conversation_id"]
        assert "".join(e["text"] for e in events if e["event"] == "answer_chunk").strip()
        again = {**turn, "conversation_id": conversation, "stream": False}
        second = http.post(f"/v1/sites/{slug}/messages", json=again).json()
        assert second["conversation_id"] == conversation and second["answer"]
        stranger = {**again, "visitor": "visitor-two-456"}
        assert http.post(f"/v1/sites/{slug}/messages", json=stranger).status_code == 404
        empty = http.post(f"/v1/sites/{slug}/messages", json={**turn, "query": " "})
        assert empty.status_code == 400 and empty.json()["error"]["param"] == "query"
        bad_visitor = http.post(f"/v1/sites/{slug}/messages", json={**turn, "visitor": "x"})
        assert bad_visitor.status_code == 400


def test_site_access_is_enforced_and_only_editors_change_it(server: RunningServer) -> None:
    slug = _published_app(server, "blank-workflow")
    outsider = server.cli("users", "create", "site-outsider", "--password", "pw-outsider-1")
    assert outsider.returncode == 0
    outsider_key = server.create_key("outsider", "--user", "site-outsider")
    with _client(server) as anonymous, _client(server, server.admin_key) as owner:
        run = {"visitor": "visitor-form-789", "inputs": {"text": "hi"}, "stream": False}
        done = anonymous.post(f"/v1/sites/{slug}/messages", json=run).json()
        assert done["status"] == "succeeded" and "result" in done["outputs"]

        assert owner.put(f"/v1/apps/{slug}/site", json={"access": "signed_in"}).status_code == 200
        refused = anonymous.get(f"/v1/sites/{slug}")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "sign_in_required"
        with _client(server, outsider_key) as member_of_nothing:
            assert member_of_nothing.get(f"/v1/sites/{slug}").status_code == 200
            change = member_of_nothing.put(f"/v1/apps/{slug}/site", json={"access": "public"})
            assert change.status_code == 404

        assert owner.put(f"/v1/apps/{slug}/site", json={"access": "off"}).status_code == 200
        assert anonymous.get(f"/v1/sites/{slug}").status_code == 404
        bad = owner.put(f"/v1/apps/{slug}/site", json={"access": "everyone"})
        assert bad.status_code == 400 and "public, signed_in, off" in bad.json()["error"]["message"]

        draft_only = owner.post("/v1/apps", json={"template": "blank-chat"}).json()["slug"]
        assert anonymous.get(f"/v1/sites/{draft_only}").status_code == 404


@pytest.mark.parametrize("path", ["/", "/apps", "/hub/models/danlu/x", "/s/some-app"])
def test_console_pages_are_served_with_safe_headers(server: RunningServer, path: str) -> None:
    with _client(server) as http:
        page = http.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        if path.startswith("/s/"):
            assert "frame-ancestors *" in policy and "x-frame-options" not in page.headers
        else:
            assert "frame-ancestors 'none'" in policy and page.headers["x-frame-options"] == "DENY"


def test_console_assets_widget_and_api_404s(server: RunningServer) -> None:
    with _client(server) as http:
        index = http.get("/").text
        asset = index.split('src="', 1)[1].split('"', 1)[0]
        assert asset.startswith("/assets/")
        assert http.get(asset).status_code == 200
        widget = http.get("/widget.js")
        assert widget.status_code == 200 and "data-app" in widget.text
        assert widget.headers["content-type"].startswith("text/javascript")
        missing = http.get("/v1/no-such-thing")
        assert missing.status_code == 404 and "error" in missing.json()
        assert http.get("/v1/chat/completions").status_code == 405


def test_drafts_are_saved_while_incomplete_and_compile_on_run_and_publish(
    server: RunningServer,
) -> None:
    with _client(server, server.admin_key) as http:
        app = http.post("/v1/apps", json={"template": "blank-workflow"}).json()
        draft = http.get(f"/v1/apps/{app['slug']}/export?format=json").json()
        draft["graph"]["nodes"].append({"id": "loose", "type": "template", "config": {}})
        saved = http.put(f"/v1/apps/{app['slug']}", json=draft)
        assert saved.status_code == 200
        assert {p["node"] for p in saved.json()["problems"]} == {"loose"}
        stored = http.get(f"/v1/apps/{app['slug']}").json()["draft"]
        assert [n["id"] for n in stored["graph"]["nodes"]][-1] == "loose"
        run = http.post(
            f"/v1/apps/{app['slug']}/run", json={"inputs": {"text": "x"}, "draft": True}
        )
        assert run.status_code == 400 and run.json()["error"]["code"] == "compile_error"
        refused = http.post(f"/v1/apps/{app['slug']}/publish")
        assert refused.status_code == 400 and "loose" in refused.json()["error"]["message"]


def test_deleting_an_app_removes_it_everywhere_but_its_analytics(server: RunningServer) -> None:
    import time

    with _client(server, server.admin_key) as http:
        app = http.post("/v1/apps", json={"template": "blank-chat", "name": "Short-lived"}).json()
        slug = app["slug"]
        assert http.post(f"/v1/apps/{slug}/publish").status_code == 200
        app_key = http.post(f"/v1/apps/{slug}/keys", json={"name": "site"}).json()["key"]
        run = http.post(f"/v1/apps/{slug}/chat", json={"query": "Hi", "user": "dora"})
        assert run.json()["status"] == "succeeded"

        def recorded() -> dict[str, Any] | None:
            found = http.get("/v1/workspaces/admin/insight/overview").json()["apps"]
            return next((a for a in found if a["app_id"] == app["id"]), None)

        deadline = time.monotonic() + 30
        while recorded() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert recorded() is not None, "the run never reached the analytics"

        assert http.delete(f"/v1/apps/{slug}").status_code == 204
        assert http.get(f"/v1/apps/{slug}").status_code == 404
        assert http.get(f"/v1/sites/{slug}").status_code == 404
        assert http.delete(f"/v1/apps/{slug}").status_code == 404
        gone = recorded()
        assert gone is not None and gone["deleted"] is True and gone["runs"] >= 1
    with _client(server, app_key) as as_app:
        chat = as_app.post(
            "/v1/chat/completions",
            json={"model": f"app:{slug}", "messages": [{"role": "user", "content": "Hi"}]},
        )
        assert chat.status_code == 401 and chat.json()["error"]["code"] == "revoked_api_key"
