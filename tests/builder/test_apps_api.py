"""The builder over HTTP on a real server: templates, DSL, publish, runs, chat, app keys."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
import yaml

from danlu.builder.templates import TEMPLATES
from tests.support.server import RunningServer


def _http(server: RunningServer, key: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=server.api,
        timeout=120,
        headers={"Authorization": f"Bearer {key or server.admin_key}"},
    )


def _sse(response: httpx.Response) -> list[dict[str, Any]]:
    events = [e for e in response.text.split("\n\n") if e.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    return [json.loads(e[6:]) for e in events[:-1]]


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_template_imports_compiles_runs_and_publishes(
    server: RunningServer, template: str
) -> None:
    with _http(server) as http:
        listed = {t["id"] for t in http.get("/app-templates").json()["data"]}
        assert template in listed
        app = http.post("/apps", json={"template": template}).json()
        slug, mode = app["slug"], app["mode"]
        exported = http.get(f"/apps/{slug}/export").text
        reimported = http.post(
            "/apps/import", content=exported, headers={"Content-Type": "application/yaml"}
        ).json()
        assert reimported["mode"] == mode
        assert http.post(f"/apps/{slug}/publish", json={"note": "v1"}).json()["version"] == 1
        if mode == "workflow":
            inputs = {
                "ai-search": {
                    "question": "What is danlu?",
                    "results": "danlu is a platform\nIt runs offline",
                },
                "audio-assistant": {"transcript": "Host: welcome. Guest: we talk about tea."},
                "blank-workflow": {"text": "Name a green tea."},
            }[template]
            blocking = http.post(f"/apps/{slug}/run", json={"inputs": inputs}).json()
            assert blocking["status"] == "succeeded", blocking
            assert blocking["outputs"] and all(
                isinstance(v, str) for v in blocking["outputs"].values()
            )
            assert all(n["elapsed_ms"] >= 0 for n in blocking["nodes"])
            streamed = _sse(http.post(f"/apps/{slug}/run", json={"inputs": inputs, "stream": True}))
            kinds = [e["event"] for e in streamed]
            assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
            assert "node_started" in kinds and "node_finished" in kinds and "text_chunk" in kinds
        else:
            answer = http.post(
                f"/apps/{slug}/chat", json={"query": "Hello, I want a refund"}
            ).json()
            assert answer["status"] == "succeeded", answer
            assert answer["answer"] and answer["conversation_id"].startswith("conv_")
            streamed = _sse(
                http.post(
                    f"/apps/{slug}/chat",
                    json={
                        "query": "And then?",
                        "conversation_id": answer["conversation_id"],
                        "stream": True,
                    },
                )
            )
            assert streamed[-1]["event"] == "run_finished"
            assert any(e["event"] == "answer" for e in streamed)
        runs = http.get(f"/apps/{slug}/runs").json()["data"]
        assert len(runs) == 2 and all(r["status"] == "succeeded" for r in runs)
        assert runs[0]["usage"].get("completion_tokens", 0) > 0


def test_openai_sdk_chats_with_a_published_app(server: RunningServer) -> None:
    with _http(server) as http:
        app = http.post("/apps", json={"template": "game-npc", "name": "NPC for SDK"}).json()
        http.post(f"/apps/{app['slug']}/publish")
        app_key = http.post(f"/apps/{app['slug']}/keys", json={"name": "game client"}).json()["key"]
    client = openai.OpenAI(base_url=server.api, api_key=app_key, max_retries=0)
    assert f"app:{app['slug']}" in {
        m.id for m in openai.OpenAI(base_url=server.api, api_key=server.admin_key).models.list()
    }
    answer = client.chat.completions.create(
        model=f"app:{app['slug']}", messages=[{"role": "user", "content": "Good evening!"}]
    )
    assert answer.choices[0].message.content
    assert answer.choices[0].finish_reason == "stop"
    chunks = list(
        client.chat.completions.create(
            model=f"app:{app['slug']}",
            stream=True,
            messages=[
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Welcome."},
                {"role": "user", "content": "What tea do you have?"},
            ],
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    # The app key runs its app and nothing else.
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(
            model="smollm2-135m-instruct", messages=[{"role": "user", "content": "x"}]
        )
    with _http(server, app_key) as http:
        own = http.post(f"/apps/{app['slug']}/chat", json={"query": "Hello"})
        assert own.status_code == 200 and own.json()["status"] == "succeeded"
        assert http.get("/apps").status_code == 403
        other = http.post("/apps/import", content=TEMPLATES["ai-search"]["app"]["name"])
        assert other.status_code in (400, 403)


def test_versions_restore_and_drafts(server: RunningServer) -> None:
    with _http(server) as http:
        app = http.post("/apps", json={"template": "ai-search"}).json()
        slug = app["slug"]
        draft = yaml.safe_load(http.get(f"/apps/{slug}/export").text)
        http.post(f"/apps/{slug}/publish")
        draft["graph"]["nodes"][-1]["config"]["outputs"].append({"name": "extra", "value": "v2"})
        assert http.put(f"/apps/{slug}", content=yaml.safe_dump(draft)).status_code == 200
        inputs = {"question": "q", "results": "r"}
        live = http.post(f"/apps/{slug}/run", json={"inputs": inputs}).json()
        assert "extra" not in live["outputs"]  # the published version still runs
        trial = http.post(f"/apps/{slug}/run", json={"inputs": inputs, "draft": True}).json()
        assert trial["outputs"]["extra"] == "v2"
        assert http.post(f"/apps/{slug}/publish").json()["version"] == 2
        assert [v["version"] for v in http.get(f"/apps/{slug}/versions").json()["data"]] == [2, 1]
        http.post(f"/apps/{slug}/versions/1/restore")
        restored = yaml.safe_load(http.get(f"/apps/{slug}/export").text)
        assert all(
            o["name"] != "extra" for o in restored["graph"]["nodes"][-1]["config"]["outputs"]
        )
        old = http.post(f"/apps/{slug}/run", json={"inputs": inputs, "version": 1}).json()
        assert "extra" not in old["outputs"]


def test_bad_dsl_and_bad_runs_are_refused(server: RunningServer) -> None:
    with _http(server) as http:
        cyclic = TEMPLATES["ai-search"] | {
            "graph": {
                "nodes": TEMPLATES["ai-search"]["graph"]["nodes"],
                "edges": TEMPLATES["ai-search"]["graph"]["edges"]
                + [{"source": "answer", "target": "numbered"}],
            }
        }
        response = http.post("/apps/import", json=cyclic)
        assert response.status_code == 400 and "cycle" in response.json()["error"]["message"]
        newer = http.post("/apps/import", json=dict(TEMPLATES["ai-search"], schema="danlu.app/v9"))
        assert newer.status_code == 400 and newer.json()["error"]["code"] == "schema_too_new"
        assert http.post("/apps/import", content=b"").status_code == 400
        assert http.post("/apps", json={"template": "nope"}).status_code == 404
        app = http.post("/apps", json={"template": "ai-search"}).json()
        unpublished = http.post(
            f"/apps/{app['slug']}/run", json={"inputs": {"question": "q", "results": "r"}}
        )
        assert (
            unpublished.status_code == 400
            and "not published" in unpublished.json()["error"]["message"]
        )
        http.post(f"/apps/{app['slug']}/publish")
        missing = http.post(f"/apps/{app['slug']}/run", json={"inputs": {"question": "q"}})
        assert missing.status_code == 400 and "results" in missing.json()["error"]["message"]
        wrong = http.post(
            f"/apps/{app['slug']}/run", json={"inputs": {"question": 3, "results": "r"}}
        )
        assert wrong.status_code == 400 and "must be a string" in wrong.json()["error"]["message"]
        streamed_bad = http.post(f"/apps/{app['slug']}/run", json={"inputs": {}, "stream": True})
        assert streamed_bad.status_code == 400
        assert http.post(f"/apps/{app['slug']}/chat", json={"query": "x"}).status_code == 400
        assert http.get("/apps/app_doesnotexist").status_code == 404
    assert server.health()["status"] == "ok"


def test_chat_apps_keep_conversation_variables(server: RunningServer) -> None:
    counter = {
        "schema": "danlu.app/v1",
        "app": {"name": "counter", "mode": "chat"},
        "variables": [{"name": "turns", "type": "integer", "default": 0}],
        "graph": {
            "nodes": [
                {"id": "start", "type": "start"},
                {
                    "id": "count",
                    "type": "assigner",
                    "config": {"assignments": [{"variable": "turns", "operation": "increment"}]},
                },
                {
                    "id": "reply",
                    "type": "answer",
                    "config": {"text": "turn {{ conv.turns }}: {{ sys.query }}"},
                },
            ],
            "edges": [
                {"source": "start", "target": "count"},
                {"source": "count", "target": "reply"},
            ],
        },
    }
    with _http(server) as http:
        app = http.post("/apps/import", json=counter).json()
        http.post(f"/apps/{app['slug']}/publish")
        first = http.post(f"/apps/{app['slug']}/chat", json={"query": "hello"}).json()
        assert first["answer"] == "turn 1: hello"
        second = http.post(
            f"/apps/{app['slug']}/chat",
            json={"query": "again", "conversation_id": first["conversation_id"]},
        ).json()
        assert second["answer"] == "turn 2: again"
        fresh = http.post(f"/apps/{app['slug']}/chat", json={"query": "new"}).json()
        assert fresh["answer"] == "turn 1: new"
        other = http.post(
            f"/apps/{app['slug']}/chat", json={"query": "x", "conversation_id": "conv_doesnotexist"}
        )
        assert other.status_code == 404
