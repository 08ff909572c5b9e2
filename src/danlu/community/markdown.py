"""Comments as Markdown, rendered on the server to HTML that cannot run anything.

Two layers, so one mistake is not enough:

1. markdown-it-py (CommonMark, plus tables and strikethrough) with raw HTML *off*: a ``<script>``
   in a comment is shown as text, never passed through; its link validator refuses
   ``javascript:``, ``vbscript:``, ``file:`` and most ``data:`` URLs.
2. nh3 (the Rust ``ammonia`` sanitizer) then keeps only an allowlist of tags and attributes
   and only ``http``, ``https`` and ``mailto`` URLs; every link gets
   ``rel="nofollow noopener noreferrer"``.

``@username`` becomes a link to the user (``/users/{name}``, class ``mention``) and is
reported, so the discussion can notify the people mentioned. Mentions inside code, links
and e-mail addresses do not count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline

MAX_COMMENT_CHARS = 65_536
_USERNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,62}[A-Za-z0-9])?")
# What may come right before an "@" that starts a mention (not "a@b.c", not "x/@y").
_BEFORE_MENTION = frozenset(" \t\n\r([{\"'*_~,;:!?")

TAGS = frozenset(
    {
        "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
        "hr", "img", "li", "ol", "p", "pre", "s", "strong", "table", "tbody", "td", "th",
        "thead", "tr", "ul",
    }
)  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})


@dataclass(frozen=True)
class Rendered:
    html: str
    mentions: list[str] = field(default_factory=list)  # usernames, in order, each once


def _mention(state: StateInline, silent: bool) -> bool:
    start = state.pos
    if state.src[start] != "@" or getattr(state, "linkLevel", 0) > 0:
        return False
    if start > 0 and state.src[start - 1] not in _BEFORE_MENTION:
        return False
    match = _USERNAME.match(state.src, start + 1)
    if match is None:
        return False
    name = match.group(0)
    if not silent:
        opening = state.push("link_open", "a", 1)
        opening.attrs = {"href": f"/users/{name}", "class": "mention"}
        text = state.push("text", "", 0)
        text.content = f"@{name}"
        state.push("link_close", "a", -1)
        mentions: list[str] = state.env.setdefault("mentions", [])
        if name.lower() not in {m.lower() for m in mentions}:
            mentions.append(name)
    state.pos = match.end()
    return True


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.inline.ruler.before("emphasis", "mention", _mention)
    return md


_MD = _parser()


def sanitize(html: str) -> str:
    """Keep only harmless tags, attributes and URLs (nh3/ammonia)."""
    return nh3.clean(
        html,
        tags=set(TAGS),
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="nofollow noopener noreferrer",
        strip_comments=True,
        allowed_classes={"a": {"mention"}},
    )


def render(raw: str) -> Rendered:
    """Markdown → sanitized HTML, and the users it mentions."""
    env: dict[str, Any] = {}
    html = _MD.render(raw, env)
    return Rendered(sanitize(html), list(env.get("mentions", [])))
