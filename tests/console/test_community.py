"""The community in a real browser, with two users in two browsers: Alice publishes an app;
Bob finds it in the studio, uses it, likes it, follows Alice, discusses it with hostile
Markdown that stays inert, and duplicates it; Alice is notified and replies; Bob sees the
reply, and his feed shows what Alice did. One screenshot in 中文."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.console.conftest import nav, new_page, shoot, sign_in
from tests.support.server import RunningServer

PASSWORD = "community-password-1"
HOSTILE = (
    "Hi @alice, does it know **green tea**?\n\n"
    '<img src=x onerror="window.__pwned=1">\n\n'
    "[x](javascript:window.__pwned=2)\n\n"
    "<script>window.__pwned=3</script>\n\n"
    '<a href="javascript:window.__pwned=4" onclick="window.__pwned=5">y</a>'
)


@pytest.fixture
def two_pages(browser: Browser) -> Iterator[tuple[Page, Page]]:
    """Alice's and Bob's browsers (separate contexts); script errors on either fail the test."""
    pages = (new_page(browser), new_page(browser))
    errors: list[str] = []
    for opened in pages:
        opened.on("pageerror", lambda error: errors.append(str(error)))
    yield pages
    for opened in pages:
        opened.context.close()
    assert not errors, f"script errors in the console: {errors}"


def _publish_as(server: RunningServer, username: str, name: str) -> str:
    """Through the API, as the user would from the Apps page: blank chat app, published."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        login = http.post("/v1/auth/login", json={"username": username, "password": PASSWORD})
        assert login.status_code == 200, login.text
        http.headers["Authorization"] = f"Bearer {login.json()['token']}"
        made = http.post("/v1/apps", json={"template": "blank-chat", "name": name})
        assert made.status_code == 201, made.text
        slug = str(made.json()["slug"])
        assert http.post(f"/v1/apps/{slug}/publish").status_code == 200
        profile = http.put(
            f"/v1/studio/apps/{slug}/profile",
            json={"description": "Which tea for which mood, in one line.", "tags": ["tea"]},
        )
        assert profile.status_code == 200, profile.text
        return slug


def _assert_inert(page: Page, comment: Locator) -> None:
    """No script, no event handler, no javascript: URL made it into the comment's DOM."""
    page.wait_for_timeout(300)  # an onerror would have fired by now
    assert page.evaluate("window.__pwned") is None
    assert comment.locator("script, iframe, object, embed, [onerror], [onclick]").count() == 0
    bad = comment.evaluate(
        """(root) => [root, ...root.querySelectorAll('*')].flatMap((el) =>
            [...el.attributes]
              .filter((a) => a.name.startsWith('on')
                             || /^\\s*(javascript|data|vbscript):/i.test(a.value))
              .map((a) => el.tagName + ' ' + a.name + '=' + a.value))"""
    )
    assert bad == [], bad


def test_two_users_meet_in_the_studio(
    two_pages: tuple[Page, Page], console_server: RunningServer
) -> None:
    alice, bob = two_pages
    for name in ("alice", "bob"):
        console_server.cli("users", "create", name, "--password", PASSWORD)
    slug = _publish_as(console_server, "alice", "Tea helper")

    # Bob finds Alice's app in the studio.
    sign_in(bob, console_server, "bob", PASSWORD)
    nav(bob, "Studio").click()
    expect(bob.get_by_role("heading", name="Studio")).to_be_visible()
    bob.get_by_test_id("studio-search").fill("which tea")
    bob.get_by_test_id("studio-search").press("Enter")
    card = bob.locator(f'[data-testid="studio-card"][data-slug="{slug}"]')
    expect(card).to_contain_text("Tea helper")
    expect(card).to_contain_text("#tea")
    shoot(bob, "community-studio")
    card.click()
    expect(bob.get_by_test_id("studio-app-name")).to_have_text("Tea helper")
    expect(bob.get_by_test_id("studio-links")).to_contain_text("smollm2")

    # …uses it right there (the embedded model: one short message)…
    frame = bob.frame_locator('[data-testid="studio-frame"]')
    frame.get_by_test_id("composer").fill("Hi!")
    frame.get_by_test_id("send").click()
    answer = frame.get_by_test_id("turn-assistant").last
    expect(answer).not_to_have_text(re.compile(r"^(…)?$"), timeout=90_000)
    expect(frame.get_by_test_id("send")).to_be_visible(timeout=90_000)
    shoot(bob, "community-studio-app")

    # …likes it and follows Alice; the numbers hold after a reload.
    bob.get_by_test_id("like").click()
    expect(bob.get_by_test_id("like-count")).to_have_text("1")
    expect(bob.get_by_test_id("like")).to_have_attribute("aria-pressed", "true")
    bob.get_by_test_id("follow-user").click()
    expect(bob.get_by_test_id("follow-user")).to_have_attribute("aria-pressed", "true")
    bob.reload()
    expect(bob.get_by_test_id("like-count")).to_have_text("1")
    expect(bob.get_by_test_id("stat-runs")).to_have_text("1")

    # …opens a discussion whose Markdown is hostile: the preview and the comment are inert.
    bob.get_by_test_id("tab-discussions").click()
    expect(bob.get_by_text("No discussions yet")).to_be_visible()
    bob.get_by_test_id("new-discussion").click()
    bob.get_by_test_id("discussion-title").fill("Green tea too?")
    bob.get_by_test_id("discussion-body").fill(HOSTILE)
    bob.get_by_test_id("discussion-body-preview").click()
    preview = bob.locator(".md-preview")
    expect(preview).to_contain_text("green tea")
    _assert_inert(bob, preview)
    bob.get_by_test_id("discussion-submit").click()
    expect(bob.get_by_test_id("discussion-heading")).to_contain_text("Green tea too?")
    first = bob.get_by_test_id("comment-html").first
    expect(first.locator("strong")).to_have_text("green tea")
    expect(first.locator("a.mention")).to_have_attribute("href", "/u/alice")
    expect(first).to_contain_text("<script>window.__pwned=3</script>")  # shown as text
    _assert_inert(bob, first)
    expect(bob.get_by_test_id("comment").first.get_by_test_id("role-author")).to_be_visible()
    shoot(bob, "community-discussion")

    # …and duplicates it: a draft of his own, in the editor.
    bob.get_by_test_id("tab-use").click()
    bob.get_by_test_id("duplicate").click()
    bob.get_by_test_id("duplicate-name").fill("Bob's tea helper")
    bob.get_by_test_id("duplicate-confirm").click()
    bob.wait_for_url(re.compile(r"/apps/[^/]+/edit$"))
    expect(bob.get_by_test_id("node-llm")).to_be_visible()
    copy = bob.url.rstrip("/").split("/")[-2]
    assert copy != slug
    bob.goto(console_server.url + "/apps")
    row = bob.get_by_test_id("app-list").locator("tr", has_text="Bob's tea helper")
    expect(row).to_contain_text("Draft")

    # Alice is told (the mention), opens the thread from the notification and replies.
    sign_in(alice, console_server, "alice", PASSWORD)
    expect(alice.get_by_test_id("bell-count")).to_have_text("1")
    alice.get_by_test_id("notification-bell").click()
    mention = alice.get_by_test_id("notification-mention").first
    expect(mention).to_contain_text("bob mentioned you")
    shoot(alice, "community-notifications")
    mention.get_by_role("button", name=re.compile("bob mentioned you")).click()
    expect(alice.get_by_test_id("discussion-heading")).to_contain_text("Green tea too?")
    expect(alice.get_by_test_id("bell-count")).to_have_count(0)
    _assert_inert(alice, alice.get_by_test_id("comment-html").first)
    alice.get_by_test_id("reply").first.click()
    alice.get_by_test_id("reply-body").fill("Yes — *sencha* works well.")
    alice.get_by_test_id("reply-submit").click()
    reply = alice.locator(".replies [data-testid=comment]").first
    expect(reply).to_contain_text("sencha works well")
    expect(reply.get_by_test_id("role-maintainer")).to_be_visible()
    # As a maintainer she may pin it; that is audited, and her workspace has a webhook form.
    alice.get_by_test_id("pin-discussion").click()
    expect(alice.locator(".thread-head")).to_contain_text("Pinned")
    alice.goto(console_server.url + "/notifications?tab=audit")
    expect(alice.get_by_test_id("audit-log")).to_contain_text("discussion.pin")
    expect(alice.get_by_test_id("audit-log")).to_contain_text(f"apps/{slug}#1")
    shoot(alice, "community-audit")
    alice.get_by_test_id("tab-webhook").click()
    expect(alice.get_by_test_id("webhook-form")).to_be_visible()
    expect(alice.get_by_test_id("webhook-form")).to_contain_text("discussion.comment")
    shoot(alice, "community-webhook")

    # Bob sees the reply through his notifications.
    bob.goto(console_server.url + "/")
    expect(bob.get_by_test_id("bell-count")).to_have_text("1")
    bob.get_by_test_id("notification-bell").click()
    told = bob.get_by_test_id("notification-reply").first
    expect(told).to_contain_text("alice")
    told.locator(".notification-title").click()
    nested = bob.locator(".replies [data-testid=comment]").first
    expect(nested).to_contain_text("sencha works well")
    expect(nested.locator("em")).to_have_text("sencha")
    shoot(bob, "community-reply")

    # He edits his comment (its history is kept), then posts and hides a second one.
    bob.get_by_test_id("edit-comment").first.click()
    bob.get_by_test_id("edit-body").fill("Hi @alice, does it know **green tea**? And oolong?")
    bob.get_by_test_id("edit-submit").click()
    bob.get_by_test_id("comment-edited").first.click()
    expect(bob.get_by_test_id("comment-history").locator("li")).to_have_count(2)
    expect(bob.get_by_test_id("comment-html").first).to_contain_text("And oolong?")
    bob.get_by_test_id("comment-body").fill("Never mind, found it.")
    bob.get_by_test_id("comment-submit").click()
    last = bob.get_by_test_id("comment").last
    expect(last).to_contain_text("Never mind")
    bob.once("dialog", lambda dialog: dialog.accept())
    last.get_by_test_id("hide-comment").click()
    expect(last).to_contain_text("hidden by bob")
    expect(last).not_to_contain_text("Never mind")
    shoot(bob, "community-thread-edited")
    bob.get_by_test_id("back-to-discussions").click()
    expect(bob.get_by_test_id("discussion-1")).to_contain_text("Pinned")
    expect(bob.get_by_test_id("discussion-1")).to_contain_text("Green tea too?")
    shoot(bob, "community-discussions")

    # His feed shows what Alice, whom he follows, did; her profile shows her app.
    nav(bob, "Feed").click()
    feed = bob.get_by_test_id("feed")
    expect(feed.locator('[data-type="app.published"]')).to_contain_text("Tea helper")
    expect(feed.locator('[data-type="discussion.comment"]').first).to_contain_text("alice")
    expect(bob.get_by_test_id("following-list")).to_contain_text("alice")
    shoot(bob, "community-feed")
    feed.locator('[data-type="app.published"]').first.get_by_role("link", name="alice").click()
    expect(bob.get_by_test_id("profile-name")).to_have_text("alice")
    expect(bob.get_by_test_id("profile-followers")).to_contain_text("1")
    expect(bob.get_by_test_id("user-apps")).to_contain_text("Tea helper")
    shoot(bob, "community-profile")

    # The model the app uses links back to it, and has discussions of its own.
    bob.goto(console_server.url + "/hub/models/danlu/smollm2-135m-instruct?tab=discussions")
    expect(bob.get_by_test_id("used-by")).to_contain_text("Tea helper")
    expect(bob.get_by_test_id("discussions")).to_be_visible()
    shoot(bob, "community-hub-discussions")

    # 中文.
    bob.get_by_label("Language").select_option("zh")
    nav(bob, "创空间").click()
    expect(bob.get_by_role("heading", name="创空间")).to_be_visible()
    expect(bob.locator(f'[data-testid="studio-card"][data-slug="{slug}"]')).to_be_visible()
    shoot(bob, "community-studio-zh")
