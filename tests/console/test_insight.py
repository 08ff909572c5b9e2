"""Insight in a real browser: after hand-made traffic on a published app, its dashboard shows
DAU, MAU, a retention cohort, cost and satisfaction exactly as counted by hand, with the
formulas beside them; a run's trace opens from the logs, a good answer becomes a saved reply
and a training example exported to the hub, the CSV downloads, and the page speaks 中文.

Traffic: alice asks twice, bob and carol once each (four runs, three end users, all today),
and bob likes his answer. The embedded model is priced here at ¥2 (input) and ¥8 (output) per
million tokens, so a run of p prompt and c completion tokens costs ⌈(2,000,000·p +
8,000,000·c) ÷ 1,000,000⌉ = 2p + 8c micro-yuan.
"""

from __future__ import annotations

import re
import textwrap
import time
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import nav, shoot, sign_in
from tests.support.server import RunningServer

MODEL = "smollm2-135m-instruct"
PRICE_IN, PRICE_OUT = 2, 8  # yuan per million tokens

APP = textwrap.dedent(f"""
    schema: danlu.app/v1
    app: {{name: Insight tea bot, mode: chat}}
    graph:
      nodes:
        - {{id: start, type: start, config: {{inputs: []}}}}
        - id: llm
          type: llm
          config:
            model: {MODEL}
            max_tokens: 8
            prompt: [{{role: user, text: "{{{{ sys.query }}}}"}}]
        - {{id: reply, type: answer, config: {{text: "{{{{ llm.text }}}}"}}}}
      edges:
        - {{source: start, target: llm}}
        - {{source: llm, target: reply}}
""")


@pytest.fixture
def http(console_server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=console_server.api,
        timeout=120,
        headers={"Authorization": f"Bearer {console_server.admin_key}"},
    ) as client:
        yield client


@pytest.fixture
def priced(http: httpx.Client) -> Iterator[None]:
    """The embedded model with a price for this test; whatever it had before, after."""
    before = [p for p in http.get("/billing/prices").json()["data"] if p["model"] == MODEL]
    answer = http.put(f"/admin/prices/{MODEL}", json={"input": "2", "output": "8"})
    assert answer.status_code == 200, answer.text
    yield
    if before:
        old = before[0]
        http.put(
            f"/admin/prices/{MODEL}",
            json={
                "input": old["input"]["yuan"],
                "output": old["output"]["yuan"],
                "cached_input": old["cached_input"]["yuan"],
                "free": old["free"],
            },
        )
    else:
        http.delete(f"/admin/prices/{MODEL}")


def _traffic(http: httpx.Client) -> dict[str, Any]:
    app = http.post(
        "/apps/import", content=APP, headers={"Content-Type": "application/yaml"}
    ).json()
    slug = app["slug"]
    assert http.post(f"/apps/{slug}/publish").status_code == 200
    runs: dict[str, list[str]] = {}
    for user in ("alice", "bob", "carol", "alice"):
        answer = http.post(f"/apps/{slug}/chat", json={"query": "Say hi", "user": user}).json()
        assert answer["status"] == "succeeded", answer
        runs.setdefault(user, []).append(answer["run_id"])
    liked = runs["bob"][0]
    feedback = http.post(f"/apps/{slug}/runs/{liked}/feedback", json={"rating": "like"})
    assert feedback.status_code == 202, feedback.text
    # The cost by hand, from each run's tokens as the runtime reported them.
    listed = http.get(f"/apps/{slug}/insight/runs").json()["data"]
    assert len(listed) == 4
    cost = {
        r["id"]: -(
            -(
                r["usage"]["prompt_tokens"] * PRICE_IN * 1_000_000
                + r["usage"]["completion_tokens"] * PRICE_OUT * 1_000_000
            )
            // 1_000_000
        )
        for r in listed
    }
    # Events are written every DANLU_INSIGHT_FLUSH_SECONDS (2 s): wait until they are in.
    deadline = time.monotonic() + 30
    while True:
        overview = http.get(f"/apps/{slug}/insight/overview").json()
        metrics = overview["metrics"]
        if metrics["runs"]["value"] == 4 and metrics["likes"]["value"] == 1:
            break
        assert time.monotonic() < deadline, f"insight never saw the traffic: {metrics}"
        time.sleep(0.3)
    return {"slug": slug, "runs": runs, "liked": liked, "cost": cost, "today": overview["to"]}


def _yuan(micro_yuan: float) -> str:
    """How the console writes micro-yuan: yuan, at least 2 decimals, nothing rounded away."""
    text = f"{Decimal(str(micro_yuan)) / Decimal(1_000_000):f}"
    whole, _, fraction = text.partition(".")
    return f"¥{whole}.{(fraction.rstrip('0') or '').ljust(2, '0')}"


def test_the_dashboard_matches_hand_computed_traffic(
    page: Page, console_server: RunningServer, http: httpx.Client, priced: None
) -> None:
    traffic = _traffic(http)
    slug, today = traffic["slug"], traffic["today"]
    users = {"alice", "bob", "carol"}
    total_cost = sum(traffic["cost"].values())
    assert total_cost > 0
    satisfaction = 1000 * 1 / 4  # likes per 1,000 answers: one like over four answers

    sign_in(page, console_server)
    nav(page, "Apps").click()
    page.get_by_test_id(f"analytics-{slug}").click()
    expect(page.get_by_role("heading", name="Insight tea bot")).to_be_visible()

    def tile(name: str) -> Any:
        return page.get_by_test_id(f"metric-{name}")

    expect(tile("dau").locator(".metric-value")).to_have_text(str(len(users)))
    expect(tile("mau").locator(".metric-value")).to_have_text(str(len(users)))
    expect(tile("runs").locator(".metric-value")).to_have_text("4")
    expect(tile("cost")).to_have_attribute("data-value", str(total_cost))
    expect(tile("cost").locator(".metric-value")).to_have_text(_yuan(total_cost))
    expect(tile("cost_per_user").locator(".metric-value")).to_have_text(
        _yuan(round(total_cost / len(users), 1))
    )
    expect(tile("satisfaction").locator(".metric-value")).to_have_text(f"{satisfaction:g}")
    # The formula is in the page: hidden until asked for, then shown beside the number.
    formula = tile("dau").get_by_test_id("formula")
    expect(formula).to_have_class("visually-hidden")
    tile("dau").get_by_role("button", name="Formula of DAU").click()
    expect(formula).to_be_visible()
    expect(formula).to_contain_text("distinct end users with at least one run on day d")
    # Today's cohort: three new users, all active on day 0.
    expect(page.get_by_test_id(f"cohort-{today}").locator("td").first).to_have_text("3")
    expect(page.get_by_test_id(f"cell-{today}-0")).to_have_text("100%")
    expect(page.get_by_test_id("chart-active")).to_be_visible()
    shoot(page, "insight-app")
    page.get_by_test_id("metric-cost").scroll_into_view_if_needed()
    shoot(page, "insight-app-cost")
    page.get_by_test_id("retention-table").scroll_into_view_if_needed()
    shoot(page, "insight-app-retention")

    with page.expect_download() as downloaded:
        page.get_by_test_id("overview-csv").click()
    assert downloaded.value.suggested_filename.endswith(".csv")
    csv_text = Path(downloaded.value.path()).read_text(encoding="utf-8")
    assert f"\ndau,{len(users)}," in csv_text
    assert f"\ncost,{total_cost}," in csv_text

    # Logs: bob's run, its trace, and his answer kept as a reply and a training example.
    page.get_by_role("tab", name="Logs").click()
    page.get_by_test_id("run-list").get_by_role("button").filter(
        has=page.locator("strong", has_text=re.compile(r"^bob$"))
    ).click()
    trace = page.get_by_test_id("trace")
    expect(trace.get_by_test_id("waterfall").get_by_test_id("span-llm")).to_be_visible()
    expect(trace.get_by_test_id("trace-cost")).to_have_text(
        _yuan(traffic["cost"][traffic["liked"]])
    )
    expect(trace.get_by_test_id("feedback")).to_contain_text("like")
    trace.get_by_test_id("save-as-reply").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Training example").check()
    dialog.get_by_test_id("annotation-save").click()
    expect(trace.get_by_role("status").filter(has_text="Annotation saved")).to_be_visible()
    shoot(page, "insight-trace")
    saved = http.get(f"/apps/{slug}/annotations").json()["data"]
    assert [(a["run_id"], a["saved_reply"], a["training"]) for a in saved] == [
        (traffic["liked"], True, True)
    ]

    page.get_by_role("tab", name="Annotations").click()
    expect(page.get_by_test_id("annotation-list")).to_contain_text("Saved reply")
    page.get_by_test_id("export-training").click()
    page.get_by_test_id("export-repo").fill("admin/insight-answers")
    page.get_by_test_id("export-submit").click()
    expect(page.get_by_test_id("export-done")).to_contain_text(
        "Exported to admin/insight-answers: 1 new"
    )
    shoot(page, "insight-annotations")
    page.get_by_role("button", name="Close").click()

    # The workspace's page lists the app, linked to its own page.
    nav(page, "Insight").click()
    expect(
        page.get_by_test_id("apps-table").get_by_role("link", name="Insight tea bot")
    ).to_be_visible()
    expect(page.get_by_test_id("window")).to_contain_text("Asia/Shanghai")
    # A 7-day window ends today too, and the previous 7 days are the comparison.
    page.get_by_role("button", name="Last 7 days").click()
    week_start = (date.fromisoformat(today) - timedelta(days=6)).isoformat()
    expect(page.get_by_test_id("window")).to_contain_text(f"{week_start} – {today}")
    # The workspace counts everyone who used any of its apps (other tests share this server).
    workspace_dau = http.get(
        "/workspaces/admin/insight/overview", params={"from": week_start, "to": today}
    ).json()["metrics"]["dau"]["value"]
    assert workspace_dau >= len(users)
    expect(tile("dau").locator(".metric-value")).to_have_text(str(workspace_dau))
    # Owners and admins set the time zone the days are counted in.
    page.get_by_test_id("tz-setting").locator("summary").click()
    expect(page.get_by_test_id("tz-input")).to_have_value("Asia/Shanghai")
    page.get_by_test_id("tz-setting").get_by_role("button", name="Save").click()
    expect(page.get_by_text("Time zone saved.")).to_be_visible()
    shoot(page, "insight-workspace")
    page.get_by_test_id("apps-table").scroll_into_view_if_needed()
    shoot(page, "insight-workspace-apps")

    page.get_by_label("Language").select_option("zh")
    expect(nav(page, "数据洞察")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("数据洞察"))).to_be_visible()
    page.get_by_test_id("apps-table").get_by_role("link", name="Insight tea bot").click()
    expect(page.get_by_role("tab", name="看板")).to_be_visible()
    expect(tile("dau")).to_contain_text("日活（DAU）")
    tile("dau").get_by_role("button", name="日活（DAU）的计算公式").click()
    expect(tile("dau").get_by_test_id("formula")).to_contain_text("至少运行过一次的不同终端用户数")
    shoot(page, "insight-app-zh")
    page.get_by_label("语言").select_option("en")
