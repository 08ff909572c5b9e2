"""A third-party provider plugs in through the same hooks as the built-ins.

The provider below is the example from docs/providers.md, registered on a plugin
manager exactly as an installed entry point would be.
"""

from __future__ import annotations

import types
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient

from danlu.api.app import create_app
from danlu.core.errors import ConfigError
from danlu.core.hookspecs import hookimpl
from danlu.core.plugins import plugin_manager
from danlu.core.settings import load_settings
from danlu.gateway.provider import CallContext, ChatModel, Chunk, Model, Provider, ProviderOptions
from danlu.gateway.registry import ModelRegistry, ProviderConfig
from danlu.gateway.schemas import ChatCompletionRequest


class EchoOptions(ProviderOptions):
    model_name: str = "echo"


class EchoModel(ChatModel):
    async def stream_chat(
        self, request: ChatCompletionRequest, ctx: CallContext
    ) -> AsyncIterator[Chunk]:
        text = request.messages[-1].text()
        yield {
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}
            ]
        }
        yield {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield {
            "choices": [],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }


class EchoProvider(Provider):
    type = "echo"
    Options = EchoOptions

    async def load(self) -> Sequence[Model]:
        assert isinstance(self.options, EchoOptions)
        return [EchoModel(self.options.model_name, owned_by="plugin", provider=self.name)]


def _plugin_module() -> types.ModuleType:
    module = types.ModuleType("danlu_echo_plugin")

    @hookimpl
    def register_provider_types() -> list[type[Provider]]:
        return [EchoProvider]

    @hookimpl
    def default_provider_configs(settings: object) -> list[ProviderConfig]:
        return [ProviderConfig(name="echo", type="echo", options={"model_name": "echo-1"})]

    module.register_provider_types = register_provider_types  # type: ignore[attr-defined]
    module.default_provider_configs = default_provider_configs  # type: ignore[attr-defined]
    return module


def test_a_plugin_provider_is_served_like_a_builtin(tmp_path: Path) -> None:
    settings = load_settings({"DANLU_HOME": str(tmp_path), "DANLU_EMBEDDED_MODELS": "0"})
    manager = plugin_manager(load_entry_points=False)
    manager.register(_plugin_module())
    app = create_app(settings, manager)
    with TestClient(app) as http:
        _, key = app.state.services.keys.create(app.state.services.accounts.user("admin"), "t")
        client = openai.OpenAI(base_url="http://testserver/v1", api_key=key, http_client=http)
        assert [m.id for m in client.models.list()] == ["echo-1"]
        answer = client.chat.completions.create(
            model="echo-1", messages=[{"role": "user", "content": "ping"}]
        )
        assert answer.choices[0].message.content == "ping"
        assert answer.choices[0].finish_reason == "stop"
        assert answer.usage is not None and answer.usage.total_tokens == 2


def test_provider_options_are_strict(tmp_path: Path) -> None:
    settings = load_settings({"DANLU_HOME": str(tmp_path), "DANLU_EMBEDDED_MODELS": "0"})
    types_ = {"echo": EchoProvider}
    with pytest.raises(ConfigError, match="model_nam"):
        ModelRegistry(
            types_, [ProviderConfig(name="e", type="echo", options={"model_nam": "x"})], settings
        )
    with pytest.raises(ConfigError, match="unknown type 'nope'"):
        ModelRegistry(types_, [ProviderConfig(name="e", type="nope")], settings)
    with pytest.raises(ConfigError, match="two providers are named"):
        ModelRegistry(
            types_,
            [ProviderConfig(name="e", type="echo"), ProviderConfig(name="e", type="echo")],
            settings,
        )


def test_two_providers_cannot_serve_the_same_name(tmp_path: Path) -> None:
    import asyncio

    settings = load_settings({"DANLU_HOME": str(tmp_path), "DANLU_EMBEDDED_MODELS": "0"})
    registry = ModelRegistry(
        {"echo": EchoProvider},
        [ProviderConfig(name="a", type="echo"), ProviderConfig(name="b", type="echo")],
        settings,
    )
    with pytest.raises(ConfigError, match="both serve a model named 'echo'"):
        asyncio.run(registry.start())
