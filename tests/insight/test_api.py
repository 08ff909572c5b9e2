"""Insight through a real `danlu serve`: published apps run over HTTP produce events, and
the dashboard's numbers — DAU/MAU, a retention table, cost — match what we count by hand.

The model behind the apps is an outside OpenAI-compatible provider (a real HTTP server on
loopback, tests/support/fake_upstream.py) that reports 5 prompt and 3 completion tokens
per call, priced here at ¥2 and ¥8 per million: ⌈(5×2,000,000 + 3×8,000,000) ÷ 10⁶⌉ = 34
micro-yuan per call.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from huggingface_hub import HfApi

from danlu.refinery.data import load_dataset
from tests.support.fake_upstream import SECRET, FakeUpstream
from tests.support.postgres import scratch_database
from tests.support.server import RunningServer, start_server

COST_PER_CALL = 34


def chat_app(name: str, model: str) -> str:
    return textwrap.dedent(f"""
        schema: danlu.app/v1
        app: {{name: {name}, mode: chat}}
        graph:
          nodes:
            - {{id: start, type: start, config: {{inputs: []}}}}
            - id: llm
              type: llm
              config: {{model: {model}, prompt: [{{role: user, text: "{{{{ sys.query }}}}"}}]}}
            - {{id: reply, type: answer, config: {{text: "{{{{ llm.text }}}}"}}}}
          edges:
            - {{source: start, target: llm}}
            - {{source: llm, target: reply}}
    """)


@pytest.fixture(scope="module", params=["embedded", "postgresql"])
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fake_upstream: FakeUpstream,
) -> Iterator[RunningServer]:
    """SQLite with the DuckDB store, and PostgreSQL with the PostgreSQL store (``auto``)."""
    home = tmp_path_factory.mktemp(f"insight-{request.param}")
    (home / "providers.toml").write_text(
        textwrap.dedent(f"""
        [[providers]]
        name = "fake"
        type = "openai_compatible"
        base_url = "{fake_upstream.base_url}"
        api_key = "{SECRET}"
        models = ["fake-chat", "fake-500"]
    """)
    )
    env = {"DANLU_INSIGHT_FLUSH_SECONDS": "0.1", "DANLU_EMBEDDED_MODELS": "false"}
    with contextlib.ExitStack() as stack:
        if request.param == "postgresql":
            env["DANLU_DATABASE_URL"] = stack.enter_context(scratch_database())
        server = start_server(home, env)
        stack.callback(server.stop)
        yield server


def client(server: RunningServer, key: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=server.api,
        timeout=60,
        headers={"Authorization": f"Bearer {key or server.admin_key}"},
    )


def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.fixture(scope="module")
def traffic(served: RunningServer) -> dict[str, Any]:
    """A published chat app, used by alice (2 messages), bob (1) and an anonymous visitor
    (1); a second app whose model fails, used once by bob."""
    with client(served) as http:
        assert (
            http.put("/admin/prices/fake-chat", json={"input": "2", "output": "8"}).status_code
            == 200
        )
        headers = {"Content-Type": "application/yaml"}
        app = http.post(
            "/apps/import", content=chat_app("Tea bot", "fake-chat"), headers=headers
        ).json()
        broken = http.post(
            "/apps/import", content=chat_app("Broken", "fake-500"), headers=headers
        ).json()
        for made in (app, broken):
            assert http.post(f"/apps/{made['slug']}/publish").status_code == 200
        app_key = http.post(f"/apps/{app['slug']}/keys", json={"name": "web"}).json()["key"]
        # a draft run: not end-user traffic, not counted
        http.post(
            f"/apps/{app['slug']}/chat", json={"query": "draft", "draft": True, "user": "dev"}
        )
    runs: dict[str, str] = {}
    with client(served, app_key) as http:
        first = http.post(
            f"/apps/{app['slug']}/chat",
            json={"query": "I want a refund for my tea", "user": "alice", "stream": True},
        )
        events = [
            json.loads(line[6:]) for line in first.text.split("\n\n") if line.startswith("data: {")
        ]
        runs["alice-1"] = events[0]["run_id"]
        conversation = events[0]["conversation_id"]
        second = http.post(
            f"/apps/{app['slug']}/chat",
            json={"query": "Thanks!", "user": "alice", "conversation_id": conversation},
        ).json()
        runs["alice-2"] = second["run_id"]
        runs["bob"] = http.post(
            f"/apps/{app['slug']}/chat", json={"query": "Green tea?", "user": "bob"}
        ).json()["run_id"]
        anonymous = http.post(f"/apps/{app['slug']}/chat", json={"query": "Hello"}).json()
        runs["anonymous"] = anonymous["run_id"]
    with client(served) as http:
        failed = http.post(
            f"/apps/{broken['slug']}/chat", json={"query": "Hi", "user": "bob"}
        ).json()
        assert failed["status"] == "failed"
        overview = wait_for(
            lambda: (
                (found := http.get(f"/apps/{app['slug']}/insight/overview").json())["metrics"][
                    "runs"
                ]["value"]
                == 4
                and found
            )
        )
        assert overview, "the recorder did not write the runs"
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()
    return {
        "app": app,
        "broken": broken,
        "key": app_key,
        "runs": runs,
        "conversation": conversation,
        "anonymous_conversation": anonymous["conversation_id"],
        "today": str(today),
    }


def test_the_dashboard_matches_a_hand_count(served: RunningServer, traffic: dict[str, Any]) -> None:
    slug = traffic["app"]["slug"]
    with client(served) as http:
        found = http.get(f"/apps/{slug}/insight/overview").json()
    assert found["tz"] == "Asia/Shanghai" and found["to"] == traffic["today"]
    m = {name: shown["value"] for name, shown in found["metrics"].items()}
    assert all(shown["formula"] for shown in found["metrics"].values())
    # alice, bob and one anonymous visitor (standing in for its conversation); no draft
    assert m["dau"] == 3 and m["wau"] == 3 and m["mau"] == 3 and m["active_users"] == 3
    assert m["new_users"] == 3 and m["returning_users"] == 0
    assert m["runs"] == 4 and m["messages"] == 4 and m["failed_runs"] == 0
    assert m["conversations"] == 3 and m["sessions"] == 3
    assert m["messages_per_session"] == round(4 / 3, 2)
    assert m["input_tokens"] == 4 * 5 and m["output_tokens"] == 4 * 3
    assert m["cost"] == 4 * COST_PER_CALL
    assert m["cost_per_user"] == round(4 * COST_PER_CALL / 3, 1)
    assert m["cost_per_conversation"] == round(4 * COST_PER_CALL / 3, 1)
    assert m["latency_p50"] is not None and m["ttft_p50"] is not None
    assert m["ttft_p50"] <= m["latency_p95"]
    assert found["metrics"]["stickiness"]["inputs"]["mau"] == 3


def test_retention_series_and_users(served: RunningServer, traffic: dict[str, Any]) -> None:
    slug, today = traffic["app"]["slug"], traffic["today"]
    with client(served) as http:
        table = http.get(f"/apps/{slug}/insight/retention", params={"days": 7}).json()
        dau = http.get(f"/apps/{slug}/insight/series", params={"metric": "dau"}).json()
        mau = http.get(f"/apps/{slug}/insight/series", params={"metric": "mau"}).json()
        users = http.get(f"/apps/{slug}/insight/users").json()
        bad = http.get(f"/apps/{slug}/insight/series", params={"metric": "vibes"})
        bad_tz = http.get(f"/apps/{slug}/insight/overview", params={"tz": "Mars/Olympus"})
    cohort = table["cohorts"][-1]
    assert cohort["cohort"] == today and cohort["size"] == 3
    assert cohort["classic"] == [1.0, *([None] * 7)]
    assert table["formula"]["classic"] and len(table["cohorts"]) == 30
    assert dau["data"][-1] == {"day": today, "value": 3} and len(dau["data"]) == 30
    assert mau["data"][-1]["value"] == 3 and "MAU(d)" in mau["formula"]
    assert users["summary"] == {
        "active_users": 3,
        "new_users": 3,
        "returning_users": 0,
        "known_users": 2,
        "anonymous_users": 1,
    }
    assert {u["user"] for u in users["data"]} == {
        "alice",
        "bob",
        "anon:" + traffic["anonymous_conversation"],
    }
    assert bad.status_code == 400 and "metric" in bad.json()["error"]["message"]
    assert bad_tz.status_code == 400 and bad_tz.json()["error"]["param"] == "tz"


def test_feedback_from_end_users(served: RunningServer, traffic: dict[str, Any]) -> None:
    slug, runs = traffic["app"]["slug"], traffic["runs"]
    with client(served, traffic["key"]) as http:  # the app's own key, as a web page has
        liked = http.post(f"/apps/{slug}/runs/{runs['alice-1']}/feedback", json={"rating": "like"})
        assert liked.status_code == 202 and liked.json()["user"] == "alice"
        http.post(f"/apps/{slug}/runs/{runs['bob']}/feedback", json={"rating": "like"})
        http.post(f"/apps/{slug}/runs/{runs['bob']}/feedback", json={"rating": "dislike"})
        commented = http.post(
            f"/apps/{slug}/runs/{runs['anonymous']}/feedback", json={"comment": "Too short"}
        )
        assert commented.status_code == 202
        assert (
            http.post(f"/apps/{slug}/runs/run_nope/feedback", json={"rating": "like"}).status_code
            == 404
        )
        assert http.post(f"/apps/{slug}/runs/{runs['bob']}/feedback", json={}).status_code == 400
        # an app key runs its app and gives feedback; it does not read the dashboard
        assert http.get(f"/apps/{slug}/insight/overview").status_code == 403
    with client(served) as http:
        m = wait_for(
            lambda: (
                (
                    found := {
                        k: v["value"]
                        for k, v in http.get(f"/apps/{slug}/insight/overview")
                        .json()["metrics"]
                        .items()
                    }
                )["comments"]
                == 1
                and found
            )
        )
    assert m["likes"] == 1 and m["dislikes"] == 1 and m["comments"] == 1
    assert m["satisfaction"] == 1000 * 1 / 4


def test_conversation_logs_and_run_traces(served: RunningServer, traffic: dict[str, Any]) -> None:
    slug, runs = traffic["app"]["slug"], traffic["runs"]
    with client(served) as http:
        listed = http.get(f"/apps/{slug}/insight/conversations", params={"q": "REFUND"}).json()
        assert [c["id"] for c in listed["data"]] == [traffic["conversation"]]
        assert listed["data"][0]["messages"] == 4 and "refund" in listed["data"][0]["match"]
        assert listed["data"][0]["user"] == "alice"
        everything = http.get(f"/apps/{slug}/insight/conversations").json()["data"]
        assert len(everything) == 4  # logs show draft (debugging) conversations too
        assert {c["user"] for c in everything} == {"alice", "bob", None, "dev"}
        one = http.get(f"/apps/{slug}/insight/conversations/{traffic['conversation']}").json()
        assert [m["role"] for m in one["messages"]] == ["user", "assistant"] * 2
        assert one["messages"][1]["content"] == "Hello from upstream"
        assert one["messages"][1]["feedback"] == {"rating": "like", "comment": None}
        found = http.get(f"/apps/{slug}/insight/runs", params={"q": "green"}).json()["data"]
        assert [r["id"] for r in found] == [runs["bob"]]
        trace = http.get(f"/apps/{slug}/insight/runs/{runs['alice-1']}").json()
        missing = http.get(f"/apps/{slug}/insight/runs/run_missing")
    assert trace["status"] == "succeeded" and trace["recorded"] is True
    assert [n["node_id"] for n in trace["nodes"]] == ["start", "llm", "reply"]
    llm = trace["nodes"][1]
    assert llm["type"] == "llm" and llm["started_ms"] >= trace["nodes"][0]["started_ms"]
    assert llm["elapsed_ms"] >= 0 and llm["outputs"]["text"] == "Hello from upstream"
    assert llm["inputs"] == {"start": trace["nodes"][0]["outputs"]}
    assert trace["insight"]["cost"] == COST_PER_CALL and trace["insight"]["model"] == "fake-chat"
    assert trace["insight"]["input_tokens"] == 5 and trace["insight"]["ttft_ms"] is not None
    assert trace["messages"][0] == {"role": "user", "content": "I want a refund for my tea"}
    assert trace["feedback"]["rating"] == "like"
    assert missing.status_code == 404


def test_annotations_become_saved_replies_and_a_training_dataset(
    served: RunningServer, traffic: dict[str, Any]
) -> None:
    slug, runs = traffic["app"]["slug"], traffic["runs"]
    with client(served) as http:
        made = http.post(
            f"/apps/{slug}/annotations",
            json={
                "run_id": runs["alice-1"],
                "saved_reply": True,
                "training": True,
                "answer": "We refund within 7 days.",
            },
        )
        assert made.status_code == 201, made.text
        assert made.json()["question"] == "I want a refund for my tea"
        http.post(f"/apps/{slug}/annotations", json={"run_id": runs["bob"], "training": True})
        match = http.get(
            f"/apps/{slug}/annotations/match", params={"q": "i want a REFUND  for my tea"}
        )
        assert match.json()["match"]["answer"] == "We refund within 7 days."
        exported = http.post(f"/apps/{slug}/annotations/export", json={"repo": "admin/tea-answers"})
        assert exported.status_code == 200, exported.text
        assert exported.json()["added"] == 2
        again = http.post(f"/apps/{slug}/annotations/export", json={"repo": "admin/tea-answers"})
        assert again.status_code == 400  # nothing new to export
        listed = http.get(f"/apps/{slug}/annotations", params={"training": True}).json()["data"]
        assert all(a["exported_to"] == "admin/tea-answers/annotations.jsonl" for a in listed)
    path = HfApi(endpoint=served.url, token=served.admin_key).hf_hub_download(
        "admin/tea-answers",
        "annotations.jsonl",
        repo_type="dataset",
        cache_dir=str(served.home / "hf-cache"),
    )
    data = Path(path).read_bytes()
    rows = [json.loads(line) for line in data.decode().splitlines()]
    assert rows[0]["messages"] == [
        {"role": "user", "content": "I want a refund for my tea"},
        {"role": "assistant", "content": "We refund within 7 days."},
    ]
    assert (
        len(load_dataset([("annotations.jsonl", data)]).conversations) == 2
    )  # the refinery reads it


def test_csv_exports(served: RunningServer, traffic: dict[str, Any]) -> None:
    slug = traffic["app"]["slug"]
    with client(served) as http:
        overview = http.get(f"/apps/{slug}/insight/overview", params={"format": "csv"})
        retention = http.get(f"/apps/{slug}/insight/retention", params={"format": "csv", "days": 3})
        series = http.get(
            f"/apps/{slug}/insight/series", params={"format": "csv", "metric": "cost"}
        )
    assert overview.headers["content-type"].startswith("text/csv")
    rows = {r["metric"]: r for r in csv.DictReader(io.StringIO(overview.text))}
    assert rows["dau"]["value"] == "3" and rows["dau"]["formula"].startswith("DAU(d)")
    table = list(csv.reader(io.StringIO(retention.text)))
    assert table[0] == ["cohort", "size", "kind", "day 0", "day 1", "day 2", "day 3"]
    assert table[-2][:4] == [traffic["today"], "3", "classic", "1.0"]
    assert list(csv.reader(io.StringIO(series.text)))[-1] == [
        traffic["today"],
        str(4 * COST_PER_CALL),
    ]


def test_the_workspace_dashboard_and_time_zone(
    served: RunningServer, traffic: dict[str, Any]
) -> None:
    with client(served) as http:
        found = http.get("/workspaces/admin/insight/overview").json()
        m = {k: v["value"] for k, v in found["metrics"].items()}
        # both apps: bob used both and counts once; the broken app's run failed
        assert m["dau"] == 3 and m["runs"] == 5 and m["failed_runs"] == 1 and m["error_rate"] == 0.2
        apps = {a["slug"]: a for a in found["apps"]}
        assert apps[traffic["app"]["slug"]]["active_users"] == 3
        assert apps[traffic["broken"]["slug"]]["failed_runs"] == 1
        assert not any(a["deleted"] for a in found["apps"])
        retention = http.get(
            "/workspaces/admin/insight/retention", params={"grain": "week", "days": 2}
        )
        assert retention.json()["cohorts"][-1]["size"] == 3
        assert http.get("/workspaces/nobody-here/insight/overview").status_code == 404
        assert http.get("/workspaces/admin/insight/settings").json()["timezone"] == "Asia/Shanghai"
        assert (
            http.put(
                "/workspaces/admin/insight/settings", json={"timezone": "Nowhere/City"}
            ).status_code
            == 400
        )
        changed = http.put("/workspaces/admin/insight/settings", json={"timezone": "UTC"})
        assert changed.json()["timezone"] == "UTC"
        utc = http.get("/workspaces/admin/insight/overview").json()
        assert utc["tz"] == "UTC" and utc["metrics"]["runs"]["value"] == 5
        http.put("/workspaces/admin/insight/settings", json={"timezone": "Asia/Shanghai"})
        formulas = http.get("/insight/formulas").json()["data"]
        assert {f["metric"] for f in formulas} >= {"dau", "mau", "stickiness", "retention_classic"}


def test_other_users_cannot_see_an_apps_insight(
    served: RunningServer, traffic: dict[str, Any]
) -> None:
    served.cli("users", "create", "mallory", "--password", "mallory-password")
    key = served.create_key("mallory", "--user", "mallory")
    with client(served, key) as http:
        assert http.get(f"/apps/{traffic['app']['slug']}/insight/overview").status_code == 404
        assert http.get("/workspaces/admin/insight/overview").status_code == 404
