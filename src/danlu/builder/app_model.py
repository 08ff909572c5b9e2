"""Published chat apps as gateway models: ``app:{slug}`` for any OpenAI client.

The request's last user message is the query and the messages before it are
the conversation's memory, so a stateless OpenAI client gets a normal chat.
Access is the app's: its own app key, or a key of its workspace.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from danlu.builder.apps import Apps, RunOptions, execute
from danlu.builder.tables import App
from danlu.core.errors import InvalidRequest, ModelNotFound, NotFound
from danlu.gateway.provider import CallContext, ChatModel, Chunk, Model
from danlu.gateway.schemas import ChatCompletionRequest

PREFIX = "app:"


class AppChatModel(ChatModel):
    def __init__(self, apps: Apps, app: App):
        super().__init__(PREFIX + app.slug, owned_by="app", provider="builder")
        self.apps = apps
        self.app = app

    def describe(self) -> dict[str, object]:
        return {"kind": "app", "app": self.app.name, "mode": self.app.mode}

    async def stream_chat(
        self, request: ChatCompletionRequest, ctx: CallContext
    ) -> AsyncIterator[Chunk]:
        if ctx.principal is None:
            raise InvalidRequest("calling an app needs an API key", param="model")
        app = await asyncio.to_thread(self.apps.get, ctx.principal, self.app.slug)
        messages = [m for m in request.messages if m.role in ("user", "assistant")]
        if not messages or messages[-1].role != "user":
            raise InvalidRequest("the last message must be the user's", param="messages")
        history = [{"role": m.role, "content": m.text()} for m in messages[:-1]]
        query = messages[-1].text()
        options = RunOptions(end_user=request.user)
        yield {
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            ]
        }
        tokens = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        streamed: set[str] = set()
        async for event in execute(
            self.apps, app, {}, options, ctx.owner, query=query, history=history
        ):
            if event.event == "answer_chunk":
                streamed.add(event.data["node_id"])
                yield {
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"content": event.data["text"]},
                            "finish_reason": None,
                        }
                    ]
                }
            elif event.event == "answer" and event.data["node_id"] in streamed:
                continue  # already sent token by token
            elif event.event == "answer":
                yield {
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"content": event.data["text"]},
                            "finish_reason": None,
                        }
                    ]
                }
            elif event.event == "run_failed":
                raise InvalidRequest(f"the app failed: {event.data.get('error')}", param="model")
            elif event.event == "run_finished":
                for key, value in (event.data.get("usage") or {}).items():
                    if key in tokens:
                        tokens[key] = int(value)
        yield {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield {"choices": [], "usage": tokens}


def install(apps: Apps, registry: object) -> None:
    """Let the gateway resolve ``app:{slug}`` to published chat apps."""

    def resolve(name: str) -> Model:
        slug = name[len(PREFIX) :]
        for app in apps.published_chat_apps():
            if app.slug == slug:
                return AppChatModel(apps, app)
        raise ModelNotFound(
            f"no published chat app {slug!r}; publish it first",
            param="model",
            code="model_not_found",
        )

    def listing() -> list[Model]:
        return [AppChatModel(apps, app) for app in apps.published_chat_apps()]

    add = getattr(registry, "add_resolver")  # noqa: B009 - a ModelRegistry, typed loosely here
    add(PREFIX, resolve, listing)


__all__ = ["AppChatModel", "NotFound", "install"]
