"""The console's pages in a real browser: sign-in, home, hub, playground, keys, knowledge,
refinery, and the switch to 中文."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.console.conftest import nav, shoot, sign_in
from tests.support.server import RunningServer


def test_sign_in_refuses_a_wrong_password_then_lets_the_admin_in(
    page: Page, console_server: RunningServer
) -> None:
    page.goto(console_server.url + "/apps")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong username or password")
    shoot(page, "sign-in")
    sign_in(page, console_server)
    expect(nav(page, "Apps")).to_be_visible()
    shoot(page, "home")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_hub_lists_search_and_a_repo_page(page: Page, console_server: RunningServer) -> None:
    sign_in(page, console_server)
    nav(page, "Models").click()
    expect(page.get_by_test_id("repo-list")).to_contain_text("danlu/smollm2-135m-instruct")
    page.get_by_test_id("hub-search").fill("nothing-like-this")
    page.get_by_test_id("hub-search").press("Enter")
    expect(page.get_by_text("No repos match")).to_be_visible()
    page.get_by_test_id("hub-search").fill("smollm2")
    page.get_by_test_id("hub-search").press("Enter")
    page.get_by_text("danlu/smollm2-135m-instruct").click()
    expect(page.get_by_test_id("repo-title")).to_have_text("danlu/smollm2-135m-instruct")
    shoot(page, "hub-repo-card")
    page.get_by_role("tab", name="Files").click()
    expect(page.get_by_test_id("repo-files")).to_contain_text(".gguf")
    expect(page.get_by_test_id("repo-files")).to_contain_text("MB")
    shoot(page, "hub-repo-files")
    page.get_by_role("tab", name="Commits").click()
    expect(page.locator("table")).to_contain_text("admin")
    page.get_by_role("tab", name="huggingface_hub").click()
    expect(page.locator("pre")).to_contain_text("snapshot_download")


def test_keys_are_created_shown_once_and_work(page: Page, console_server: RunningServer) -> None:
    sign_in(page, console_server)
    nav(page, "Keys & usage").click()
    page.get_by_test_id("new-key").click()
    page.get_by_test_id("key-name").fill("from-the-browser")
    page.get_by_test_id("create-key").click()
    secret = page.get_by_test_id("new-key-secret").inner_text().strip()
    assert secret.startswith("sk-danlu-")
    with httpx.Client(base_url=console_server.url) as http:
        me = http.get("/v1/auth/me", headers={"Authorization": f"Bearer {secret}"})
        assert me.status_code == 200
    page.get_by_role("button", name="Close").click()
    expect(page.get_by_test_id("key-list")).to_contain_text("from-the-browser")
    shoot(page, "keys-and-usage")


def test_knowledge_upload_shows_progress_and_retrieval_finds_it(
    page: Page, console_server: RunningServer, tmp_path: Path
) -> None:
    sign_in(page, console_server)
    nav(page, "Knowledge").click()
    page.get_by_test_id("create-kb").click()
    page.get_by_test_id("kb-name").fill("Tea handbook")
    page.get_by_test_id("kb-create-submit").click()
    expect(page.get_by_role("heading", name="Tea handbook")).to_be_visible()
    doc = tmp_path / "longjing.md"
    doc.write_text(
        "# Longjing\n\nLongjing tea comes from Hangzhou. It is pan-fired by hand.\n\n"
        "# Brewing\n\nBrew green tea at 80 degrees for two minutes.\n"
    )
    page.get_by_test_id("kb-upload").set_input_files(str(doc))
    expect(page.get_by_test_id("doc-status-ready")).to_be_visible(timeout=60_000)
    page.get_by_test_id("kb-query").fill("Where does Longjing tea come from?")
    page.get_by_test_id("kb-retrieve").click()
    expect(page.get_by_test_id("kb-hits")).to_contain_text("Hangzhou")
    shoot(page, "knowledge-base")


def test_refinery_page_lists_jobs_and_explains_the_form(
    page: Page, console_server: RunningServer
) -> None:
    sign_in(page, console_server)
    nav(page, "Refinery").click()
    expect(page.get_by_text("No fine-tuning jobs yet")).to_be_visible()
    page.get_by_test_id("new-job").click()
    expect(page.get_by_test_id("job-base")).to_have_value("danlu/smollm2-135m-instruct")
    page.get_by_test_id("job-dataset").fill("nobody/missing-dataset")
    page.get_by_test_id("job-start").click()
    expect(page.get_by_role("alert")).to_contain_text("missing-dataset")
    shoot(page, "refinery-new-job")


def test_the_language_follows_the_browser_and_can_be_switched(
    page: Page, console_server: RunningServer
) -> None:
    sign_in(page, console_server)
    page.get_by_label("Language").select_option("zh")
    expect(nav(page, "应用")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("欢迎"))).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    shoot(page, "home-zh")
    page.reload()
    expect(nav(page, "知识库")).to_be_visible()
    page.get_by_label("语言").select_option("en")
    expect(nav(page, "Knowledge")).to_be_visible()


def test_a_chinese_browser_gets_chinese_from_the_start(
    browser_zh: Page, console_server: RunningServer
) -> None:
    browser_zh.goto(console_server.url + "/")
    expect(browser_zh.get_by_role("button", name="登录")).to_be_visible()
    shoot(browser_zh, "sign-in-zh")


def test_the_playground_streams_and_compares_two_models(
    page: Page, console_server: RunningServer
) -> None:
    sign_in(page, console_server)
    nav(page, "Playground").click()
    page.get_by_label("Max tokens").fill("12")
    pane = page.get_by_test_id("pane-0")
    pane.get_by_test_id("composer").fill("Name one tea.")
    pane.get_by_test_id("send").click()
    answer = pane.get_by_test_id("turn-assistant").last
    expect(pane.get_by_test_id("send")).to_be_visible(timeout=60_000)
    assert answer.inner_text().strip() not in ("", "…")
    expect(pane).to_contain_text("tokens/s")
    # Side by side: one message goes to both panes.
    page.get_by_test_id("compare").check()
    second = page.get_by_test_id("pane-1")
    expect(second).to_be_visible()
    pane.get_by_test_id("composer").fill("And another?")
    pane.get_by_test_id("send").click()
    expect(second.get_by_test_id("turn-user")).to_have_text("And another?")
    expect(second.get_by_test_id("send")).to_be_visible(timeout=60_000)
    expect(pane.get_by_test_id("send")).to_be_visible(timeout=60_000)
    assert second.get_by_test_id("turn-assistant").last.inner_text().strip() not in ("", "…")
    shoot(page, "playground-compare")
