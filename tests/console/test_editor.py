"""The app editor in a real browser: build from a template, drag and connect a node, undo,
run with live per-node status, publish, and chat on the public page."""

from __future__ import annotations

import functools
import re
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.console.conftest import shoot, sign_in
from tests.support.server import RunningServer


def _create_chat_app(page: Page, name: str) -> str:
    page.get_by_test_id("start-building").click()
    page.get_by_test_id("template-blank-chat").click()
    page.get_by_test_id("app-name").fill(name)
    page.get_by_test_id("create-app-submit").click()
    page.wait_for_url(re.compile(r"/apps/[^/]+/edit$"))
    expect(page.get_by_test_id("node-llm")).to_be_visible()
    return page.url.rstrip("/").split("/")[-2]


def test_build_run_publish_and_chat_on_the_public_page(
    page: Page, console_server: RunningServer
) -> None:
    sign_in(page, console_server)
    slug = _create_chat_app(page, "Browser-built bot")
    nodes = page.locator(".react-flow__node")
    edges = page.locator(".react-flow__edge")
    expect(nodes).to_have_count(3)
    expect(edges).to_have_count(2)
    shoot(page, "editor")

    # Drag a template node from the palette onto the canvas, then connect llm -> it.
    pane = page.locator(".react-flow__pane")
    pane_box, llm_box = pane.bounding_box(), page.get_by_test_id("node-llm").bounding_box()
    assert pane_box and llm_box
    free_spot = {  # below the llm node, clear of every other node
        "x": llm_box["x"] - pane_box["x"] + 20,
        "y": llm_box["y"] - pane_box["y"] + llm_box["height"] + 140,
    }
    page.get_by_test_id("palette-template").drag_to(pane, target_position=free_spot)
    expect(nodes).to_have_count(4)
    added = page.locator(".react-flow__node").filter(has_text=re.compile("template", re.I)).last
    page.locator('[data-testid="node-llm"] .dl-handle-out').first.drag_to(
        added.locator(".dl-handle-in")
    )
    expect(edges).to_have_count(3)
    # Live validation names the empty template on the node itself; filling it in clears it.
    expect(added.locator(".dl-node-problems")).to_contain_text("at least 1 character")
    added.locator(".dl-node-title").click()
    panel = page.get_by_test_id("node-panel")
    panel.get_by_role("textbox", name=re.compile("^template", re.I)).first.fill(
        "Echo: {{ llm.text }}"
    )
    expect(added.locator(".dl-node-problems")).to_have_count(0)
    expect(page.get_by_test_id("save-status")).to_have_attribute("data-state", "saved")
    expect(page.get_by_test_id("save-status")).to_have_text("Saved")

    # Undo takes back the typing, then the edge; redo restores both.
    page.get_by_test_id("undo").click()
    expect(added.locator(".dl-node-problems")).to_contain_text("at least 1 character")
    page.get_by_test_id("undo").click()
    expect(edges).to_have_count(2)
    page.get_by_test_id("redo").click()
    expect(edges).to_have_count(3)
    page.get_by_test_id("redo").click()
    expect(added.locator(".dl-node-problems")).to_have_count(0)
    expect(page.get_by_test_id("save-status")).to_have_text("Saved")
    shoot(page, "editor-added-node")

    # Run the draft: the answer streams and every node shows its status.
    page.get_by_test_id("tab-run").click()
    page.get_by_role("textbox", name=re.compile("message", re.I)).fill("Say hello in one line.")
    page.get_by_test_id("run-submit").click()
    expect(page.get_by_test_id("run-status")).to_have_attribute(
        "data-state", "succeeded", timeout=90_000
    )
    expect(page.locator('[data-testid="node-llm"] .dl-node-run.status-succeeded')).to_be_visible()
    expect(page.locator('[data-testid="node-reply"] .dl-node-run.status-succeeded')).to_be_visible()
    shoot(page, "editor-after-run")

    # Publish, then chat on the public page as a visitor would.
    page.get_by_test_id("publish").click()
    page.get_by_test_id("publish-confirm").click()
    expect(page.get_by_text(f"/s/{slug}").first).to_be_visible()
    shoot(page, "editor-published")

    visitor = page.context.browser.new_context(locale="en-US")  # type: ignore[union-attr]
    try:
        public = visitor.new_page()
        errors: list[str] = []
        public.on("pageerror", lambda error: errors.append(str(error)))
        public.goto(f"{console_server.url}/s/{slug}")
        expect(public.get_by_role("heading", name="Browser-built bot")).to_be_visible()
        public.get_by_test_id("composer").fill("Hello there!")
        public.get_by_test_id("send").click()
        answer = public.get_by_test_id("turn-assistant").last
        expect(answer).not_to_have_text("", timeout=90_000)
        expect(public.get_by_test_id("send")).to_be_visible(timeout=90_000)
        assert answer.inner_text().strip() not in ("", "…")
        shoot(public, "public-app-page")
        assert not errors, errors
    finally:
        visitor.close()


def test_the_widget_script_opens_the_app_in_a_bubble(
    page: Page, console_server: RunningServer, tmp_path: Path
) -> None:
    sign_in(page, console_server)
    slug = _create_chat_app(page, "Bubble bot")
    page.get_by_test_id("publish").click()
    page.get_by_test_id("publish-confirm").click()
    expect(page.get_by_text(f"/s/{slug}").first).to_be_visible()
    # Another site (its own origin) that includes the script gets the bubble.
    (tmp_path / "shop.html").write_text(
        f'<html><body><h1>Shop</h1><script src="{console_server.url}/widget.js" '
        f'data-app="{slug}" defer></script></body></html>'
    )
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as shop:
        threading.Thread(target=shop.serve_forever, daemon=True).start()
        try:
            host = page.context.new_page()
            host.goto(f"http://127.0.0.1:{shop.server_address[1]}/shop.html")
            host.locator('[data-danlu-widget="button"]').click()
            frame = host.frame_locator('[data-danlu-widget="frame"]')
            expect(frame.get_by_test_id("composer")).to_be_visible()
            shoot(host, "widget-bubble")
        finally:
            shop.shutdown()
