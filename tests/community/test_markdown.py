"""Hostile Markdown renders inert: nothing that can run, load a script or carry an event handler."""

from __future__ import annotations

import pytest

from danlu.community.markdown import render, sanitize
from tests.community.hostile import HOSTILE, assert_inert


@pytest.mark.parametrize("raw", HOSTILE)
def test_hostile_markdown_is_rendered_inert(raw: str) -> None:
    assert_inert(render(raw).html)


@pytest.mark.parametrize("raw", HOSTILE)
def test_the_sanitizer_alone_also_holds(raw: str) -> None:
    # The second layer must hold even if the Markdown layer let raw HTML through.
    assert_inert(sanitize(raw))


def test_markdown_still_renders_and_links_are_marked() -> None:
    html = render(
        "# Title\n\n**bold** _it_ ~~gone~~ `code` [site](https://example.com)\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nprint('<b>')\n```"
    ).html
    assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html and "<s>gone</s>" in html
    assert '<a href="https://example.com" rel="nofollow noopener noreferrer">site</a>' in html
    assert "<table>" in html and "<td>1</td>" in html
    assert "print(&#39;&lt;b&gt;&#39;)" in html or "print('&lt;b&gt;')" in html


def test_mentions_are_links_and_are_reported_once() -> None:
    rendered = render(
        "Thanks @alice and @Bob.dev! cc @alice, not a@b.com, not `@carol`, "
        "not [@dave](https://x.example)"
    )
    assert rendered.mentions == ["alice", "Bob.dev"]
    assert '<a href="/users/alice" class="mention"' in rendered.html
    assert "@carol" in rendered.html and "/users/carol" not in rendered.html
    assert "/users/dave" not in rendered.html
