"""Turning provider chunks into OpenAI's wire objects (ids, objects, usage)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from danlu.gateway.provider import Chunk

Kind = Literal["chat", "text"]
_PREFIX = {"chat": "chatcmpl-", "text": "cmpl-"}
_OBJECT = {
    "chat": ("chat.completion", "chat.completion.chunk"),
    "text": ("text_completion", "text_completion"),
}


@dataclass
class Stamp:
    """One response's identity: every chunk of a stream shares it."""

    kind: Kind
    model: str
    include_usage: bool = False
    id: str = ""
    created: int = field(default_factory=lambda: int(time.time()))

    def __post_init__(self) -> None:
        if not self.id:
            self.id = _PREFIX[self.kind] + os.urandom(12).hex()

    def chunk(self, body: Chunk) -> dict[str, Any] | None:
        """The wire chunk for ``body``, or None if the client should not see it."""
        is_usage = not body.get("choices") and body.get("usage") is not None
        if is_usage and not self.include_usage:
            return None
        if not is_usage and not body.get("choices") and len(body) <= 1:
            return None  # an empty keep-alive chunk from an upstream
        wire: dict[str, Any] = {
            "id": self.id,
            "object": _OBJECT[self.kind][1],
            "created": self.created,
            "model": self.model,
        }
        wire.update(body)
        wire.setdefault("system_fingerprint", None)
        if self.include_usage:
            wire.setdefault("usage", None)
        else:
            wire.pop("usage", None)
        return wire

    def whole(self, body: Chunk) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "id": self.id,
            "object": _OBJECT[self.kind][0],
            "created": self.created,
            "model": self.model,
        }
        wire.update(body)
        wire.setdefault("system_fingerprint", None)
        if wire.get("usage") is None:
            wire["usage"] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        return wire
