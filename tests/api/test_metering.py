"""The gateway's admission and metering on a real server: limits (in Redis), allow-lists,
prices in yuan, free quota, holds, redemption codes, the usage ledger, /metrics and the
overhead header — with the real openai SDK against a fake upstream provider.
"""

from __future__ import annotations

import csv
import io
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest

from tests.support.fake_upstream import SECRET, FakeUpstream
from tests.support.server import RunningServer, start_server

FREE_QUOTA_UNITS = 1000  # DANLU_FREE_QUOTA=0.001 yuan


@pytest.fixture(scope="module")
def billed(
    tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("danlu-billed")
    (home / "providers.toml").write_text(
        textwrap.dedent(f"""
        [[providers]]
        name = "fake"
        type = "openai_compatible"
        base_url = "{fake_upstream.base_url}"
        api_key = "{SECRET}"
        models = ["fake-chat", "fake-reasoner", "fake-cut", "fake-500",
                  {{ name = "fake-bulk", upstream = "fake-chat" }}]

        [[routes]]
        name = "smart"
        deployments = [{{ model = "fake-500" }}, {{ model = "fake-chat", priority = 1 }}]
        retries = 1
    """)
    )
    server = start_server(
        home,
        {
            "DANLU_BILLING": "1",
            "DANLU_FREE_QUOTA": "0.001",
            "DANLU_REDIS_URL": "redis://127.0.0.1:6379/0",
            "DANLU_EMBEDDED_MODELS": "0",
        },
    )
    server.cli("users", "create", "payer", "--password", "payer-password-123")
    server.keys["payer"] = server.create_key("payer-key", "--user", "payer")
    yield server
    server.stop()


def _admin(server: RunningServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.api, timeout=60, headers={"Authorization": f"Bearer {server.admin_key}"}
    )


def _payer(server: RunningServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.api,
        timeout=60,
        headers={"Authorization": f"Bearer {server.keys['payer']}"},
    )


def _chat(http: httpx.Client, model: str = "fake-chat", **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
    return http.post("/chat/completions", json={**body, **extra})


def _units(funds: dict[str, Any], part: str = "available") -> int:
    return int(funds[part]["units"])


def _wait_for_usage(http: httpx.Client, model: str, requests: int) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        rows = http.get("/billing/usage", params={"by": "model"}).json()["data"]
        row = next((r for r in rows if r["model"] == model), None)
        if row is not None and row["requests"] >= requests:
            return dict(row)
        assert time.monotonic() < deadline, rows
        time.sleep(0.3)


def test_calls_are_charged_exactly_in_yuan(billed: RunningServer) -> None:
    with _admin(billed) as admin, _payer(billed) as payer:
        unpriced = _chat(payer)
        assert unpriced.status_code == 403, unpriced.text
        assert "price" in unpriced.json()["error"]["message"]

        # 2 yuan per million input tokens, 8 per million output.
        price = admin.put("/admin/prices/fake-chat", json={"input": "2", "output": "8"})
        assert price.status_code == 200, price.text
        assert price.json()["input"] == {"units": 2_000_000, "yuan": "2.000000"}
        listed = payer.get("/billing/prices").json()["data"]
        assert [p["model"] for p in listed] == ["fake-chat"]

        before = payer.get("/billing/balance").json()
        assert _units(before, "credit") == FREE_QUOTA_UNITS or _units(before, "credit") == 0

        client = openai.OpenAI(base_url=billed.api, api_key=billed.keys["payer"])
        answer = client.chat.completions.with_raw_response.create(
            model="fake-chat", messages=[{"role": "user", "content": "hi"}], max_tokens=10
        )
        assert float(answer.headers["x-danlu-overhead-ms"]) >= 0
        assert answer.parse().choices[0].message.content == "Hello from upstream"
        after = payer.get("/billing/balance").json()
        # The fake upstream reports 5 prompt and 3 completion tokens: 5*2 + 3*8 = 34 micro-yuan.
        assert _units(after, "credit") == FREE_QUOTA_UNITS - 34
        assert _units(after, "held") == 0
        assert after["grants"][0]["source"] == "free_quota"

        row = _wait_for_usage(payer, "fake-chat", 1)
        assert row["cost"] == {"units": 34, "yuan": "0.000034"}
        assert (row["input_tokens"], row["output_tokens"]) == (5, 3)

        # Streaming is charged the same, from the usage chunk the gateway always asks for.
        # Without max_tokens the hold would assume 4096 output tokens; the free quota is small.
        stream = client.chat.completions.create(
            model="fake-chat",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            max_tokens=10,
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == (
            "Hello from upstream"
        )
        deadline = time.monotonic() + 10
        while _units(payer.get("/billing/balance").json(), "credit") != FREE_QUOTA_UNITS - 68:
            assert time.monotonic() < deadline
            time.sleep(0.2)

        # A call whose worst case does not fit is refused before it reaches the upstream.
        admin.put("/admin/prices/fake-reasoner", json={"input": "1000", "output": "100000"})
        refused = _chat(payer, "fake-reasoner", max_tokens=1000)
        assert refused.status_code == 402, refused.text
        assert refused.json()["error"]["type"] == "insufficient_quota"
        assert "redeem" in refused.json()["error"]["message"].lower()

        # Redemption codes: shown once, redeemed once per workspace.
        made = admin.post("/admin/redemption-codes", json={"amount": "5", "credit_days": 30})
        assert made.status_code == 201, made.text
        code = made.json()["code"]
        assert code not in admin.get("/admin/redemption-codes").text
        redeemed = payer.post("/billing/redeem", json={"code": code})
        assert redeemed.status_code == 200, redeemed.text
        assert redeemed.json()["amount"]["yuan"] == "5.000000"
        assert payer.post("/billing/redeem", json={"code": code}).status_code == 409
        assert payer.post("/billing/redeem", json={"code": "DANLU-NOPE-NOPE"}).status_code == 404
        assert _chat(payer, "fake-reasoner", max_tokens=10).status_code == 200

        report = payer.get("/billing/usage", params={"by": "model", "format": "csv"})
        assert report.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(report.text)))
        assert any(r["model"] == "fake-chat" for r in rows), report.text

        top_up = admin.post("/admin/workspaces/payer/top-up", json={"amount": "1.5"})
        assert top_up.status_code == 200, top_up.text
        assert _units(top_up.json(), "balance") == 1_500_000
        for bad in ({"amount": "1.0000001"}, {"amount": "-1"}, {"amount": 3.2}):
            assert admin.post("/admin/workspaces/payer/top-up", json=bad).status_code == 400
        assert (
            payer.put("/admin/prices/fake-chat", json={"input": "0", "output": "0"}).status_code
            == 403
        )


def test_a_cut_stream_is_still_metered(billed: RunningServer) -> None:
    with _admin(billed) as admin, _payer(billed) as payer:
        admin.put("/admin/prices/fake-cut", json={"input": "1", "output": "1"})
        client = openai.OpenAI(base_url=billed.api, api_key=billed.keys["payer"])
        got = ""
        with pytest.raises(openai.APIError):
            for chunk in client.chat.completions.create(
                model="fake-cut",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                max_tokens=10,
            ):
                got += chunk.choices[0].delta.content or "" if chunk.choices else ""
        assert got == "Hello"
        row = _wait_for_usage(payer, "fake-cut", 1)
        assert row["output_tokens"] >= 1  # estimated from what was streamed
        assert _units(payer.get("/billing/balance").json(), "held") == 0
        records = payer.get("/billing/records.csv").text
        assert "fake-cut" in records


def test_limits_and_allow_lists(billed: RunningServer) -> None:
    with _admin(billed) as admin, _payer(billed) as payer:
        admin.put("/admin/prices/fake-chat", json={"input": "0", "output": "0", "free": True})
        keys = payer.get("/keys").json()["data"]
        key_id = next(k["id"] for k in keys if k["name"] == "payer-key")
        rule = admin.put(f"/admin/limits/key/{key_id}", json={"rpm": 2, "models": ["fake-chat"]})
        assert rule.status_code == 200, rule.text

        assert _chat(payer).status_code == 200
        assert _chat(payer).status_code == 200
        limited = _chat(payer)
        assert limited.status_code == 429, limited.text
        assert int(limited.headers["retry-after"]) >= 1
        assert "2 requests per minute" in limited.json()["error"]["message"]

        other = _chat(payer, "fake-reasoner")
        assert other.status_code == 403 and "may not use model" in other.text

        listed = admin.get("/admin/limits").json()["data"]
        assert {"scope": "key", "subject": key_id} in [
            {"scope": r["scope"], "subject": r["subject"]} for r in listed
        ]
        assert admin.put("/admin/limits/team/x", json={"rpm": 1}).status_code == 400
        assert admin.delete(f"/admin/limits/key/{key_id}").status_code == 204
        assert admin.delete(f"/admin/limits/key/{key_id}").status_code == 404
        assert _chat(payer, "fake-reasoner").status_code in (200, 402)  # no longer forbidden

        metrics = httpx.get(
            f"{billed.url}/metrics", headers={"Authorization": f"Bearer {billed.admin_key}"}
        )
        assert metrics.status_code == 200
        assert 'danlu_gateway_requests_total{kind="chat",model="fake-chat",status="ok"}' in (
            metrics.text
        )
        assert "danlu_gateway_overhead_seconds_bucket" in metrics.text
        assert (
            httpx.get(
                f"{billed.url}/metrics", headers={"Authorization": f"Bearer {billed.keys['payer']}"}
            ).status_code
            == 403
        )


def test_the_ledger_names_the_deployment_that_served(billed: RunningServer) -> None:
    with _admin(billed) as admin, _payer(billed) as payer:
        admin.put("/admin/prices/smart", json={"input": "0", "output": "0", "free": True})
        answer = _chat(payer, "smart")
        assert answer.status_code == 200, answer.text
        _wait_for_usage(payer, "smart", 1)
        rows = list(csv.DictReader(io.StringIO(payer.get("/billing/records.csv").text)))
        served = [r for r in rows if r["model"] == "smart"]
        assert served and served[-1]["deployment"] == "fake-chat", served


def test_concurrent_calls_never_overspend_and_the_ledger_adds_up(billed: RunningServer) -> None:
    billed.cli("users", "create", "spender", "--password", "spender-password-123")
    key = billed.create_key("spender-key", "--user", "spender")
    granted = billed.cli("credits", "grant", "spender", "0.01", "--note", "test").stdout
    assert "¥0.010000" in granted
    with _admin(billed) as admin:
        # 100 yuan per million tokens: the fake's 5 + 3 tokens cost 800 micro-yuan a call.
        admin.put("/admin/prices/fake-bulk", json={"input": "100", "output": "100"})
    with httpx.Client(
        base_url=billed.api, timeout=60, headers={"Authorization": f"Bearer {key}"}
    ) as spender:
        _spend_concurrently(billed, spender)


def _spend_concurrently(billed: RunningServer, spender: httpx.Client) -> None:
    assert _units(spender.get("/billing/balance").json()) == 10_000
    start = 10_000 + FREE_QUOTA_UNITS  # the free quota arrives with the first billed call

    with ThreadPoolExecutor(24) as pool:
        statuses = list(pool.map(lambda _: _chat(spender, "fake-bulk").status_code, range(48)))
    ok = statuses.count(200)
    assert set(statuses) <= {200, 402}, statuses
    assert 0 < ok < 48  # the funds cover some calls, not all

    funds = spender.get("/billing/balance").json()
    assert _units(funds, "held") == 0
    assert _units(funds) == start - 800 * ok >= 0  # charged exactly; never below zero
    deadline = time.monotonic() + 15
    while True:
        rows = spender.get("/usage", params={"group_by": "key"}).json()["data"]
        charged = sum(r["cost"]["units"] for r in rows)
        if charged == 800 * ok or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert charged == 800 * ok
    assert sum(r["requests"] for r in rows) >= ok
    codes = billed.cli("codes", "create", "1.5", "--uses", "2").stdout.strip().splitlines()[-1]
    assert spender.post("/billing/redeem", json={"code": codes}).status_code == 200
    assert "1/2" in billed.cli("codes", "list").stdout
