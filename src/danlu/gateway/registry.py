"""Which models the gateway serves, and from which provider.

Provider *types* come from plugins; provider *instances* come from the
plugins' zero-configuration defaults (the embedded models) plus the providers
file (``DANLU_PROVIDERS_FILE`` or ``HOME/providers.toml``)::

    [[providers]]
    name = "dashscope"
    type = "openai_compatible"
    base_url = "https://dashscope.aliyuncs.com/compatible-mode/v1"
    api_key_env = "DASHSCOPE_API_KEY"
    models = ["qwen-plus", { name = "qwen-fast", upstream = "qwen-turbo" }]

A malformed file stops the server with a message naming the entry; a provider
that fails to load (a missing package, an unreachable upstream) is reported by
``danlu doctor`` and ``/healthz`` and the rest keep serving.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pluggy
from pydantic import BaseModel, Field, ValidationError

from danlu.core.errors import (
    ConfigError,
    Conflict,
    ModelNotFound,
    ModelUnavailable,
    NotFound,
    Unsupported,
)
from danlu.core.settings import Settings
from danlu.gateway.provider import ChatModel, EmbeddingModel, Model, Provider, RerankModel

log = logging.getLogger(__name__)

# Where each kind of model is called, for errors that name the right endpoint.
_ENDPOINT = {"chat": "/v1/chat/completions", "embedding": "/v1/embeddings", "rerank": "/v1/rerank"}


class ProviderConfig(BaseModel):
    """One provider instance: a unique name, a registered type and its options."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    type: str
    options: dict[str, Any] = Field(default_factory=dict)


@dataclass
class ProviderStatus:
    name: str
    type: str
    state: Literal["ready", "unavailable", "failed", "not started"]
    reason: str | None = None
    models: list[str] = field(default_factory=list)


def read_providers_file(path: Path) -> list[ProviderConfig]:
    """Parse a providers TOML file into configs; errors name the bad entry."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read providers file {path}: {exc}") from exc
    entries = data.get("providers", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: 'providers' must be an array of tables ([[providers]])")
    configs = []
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: providers[{position}] must be a table")
        entry = dict(entry)
        try:
            configs.append(
                ProviderConfig(
                    name=entry.pop("name", ""), type=entry.pop("type", ""), options=entry
                )
            )
        except ValidationError as exc:
            raise ConfigError(f"{path}: providers[{position}]: {_first_error(exc)}") from exc
    return configs


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


class ModelRegistry:
    """Loads providers and answers "which model serves this name?"."""

    def __init__(
        self,
        types: dict[str, type[Provider]],
        configs: Iterable[ProviderConfig],
        settings: Settings,
    ):
        self.settings = settings
        self.types = types
        self._providers: list[Provider] = []
        self._models: dict[str, Model] = {}
        self.statuses: list[ProviderStatus] = []
        self._resolvers: dict[str, tuple[Callable[[str], Model], Callable[[], list[Model]]]] = {}
        self._pending: list[tuple[ProviderConfig, Provider | None, str | None]] = []
        names: set[str] = set()
        for config in configs:
            if config.name in names:
                raise ConfigError(f"two providers are named {config.name!r}; names must be unique")
            names.add(config.name)
            self._pending.append(self._instantiate(config))

    @classmethod
    def from_plugins(cls, manager: pluggy.PluginManager, settings: Settings) -> ModelRegistry:
        types: dict[str, type[Provider]] = {}
        for batch in manager.hook.register_provider_types():
            for provider_type in batch:
                if provider_type.type in types:
                    raise ConfigError(
                        f"two plugins register the provider type {provider_type.type!r}"
                    )
                types[provider_type.type] = provider_type
        configs = [
            c for batch in manager.hook.default_provider_configs(settings=settings) for c in batch
        ]
        providers_file = settings.resolved_providers_file
        if providers_file is not None:
            if not providers_file.is_file():
                raise ConfigError(f"providers file {providers_file} does not exist")
            configs.extend(read_providers_file(providers_file))
        return cls(types, configs, settings)

    def _instantiate(
        self, config: ProviderConfig
    ) -> tuple[ProviderConfig, Provider | None, str | None]:
        provider_type = self.types.get(config.type)
        if provider_type is None:
            raise ConfigError(
                f"provider {config.name!r} has unknown type {config.type!r}; known types: "
                f"{', '.join(sorted(self.types))}"
            )
        try:
            options = provider_type.Options.model_validate(config.options)
        except ValidationError as exc:
            raise ConfigError(f"provider {config.name!r}: {_first_error(exc)}") from exc
        reason = provider_type.unavailable_reason(options)
        provider = provider_type(config.name, options, self.settings)
        provider.registry = self
        return config, provider, reason

    def check(self) -> list[ProviderStatus]:
        """What would load, without loading anything (for ``danlu doctor``)."""
        return [
            ProviderStatus(
                config.name, config.type, "unavailable" if reason else "not started", reason
            )
            for config, _, reason in self._pending
        ]

    async def start(self) -> None:
        """Load every available provider; record, but survive, failures."""
        for config, provider, reason in self._pending:
            if reason or provider is None:
                log.warning("provider %s unavailable: %s", config.name, reason)
                self.statuses.append(
                    ProviderStatus(config.name, config.type, "unavailable", reason)
                )
                continue
            try:
                models = await provider.load()
            except Exception as exc:
                log.exception("provider %s failed to load", config.name)
                self.statuses.append(ProviderStatus(config.name, config.type, "failed", str(exc)))
                await provider.aclose()
                continue
            self._providers.append(provider)
            for model in models:
                if model.id in self._models:
                    other = self._models[model.id].provider
                    raise ConfigError(
                        f"providers {other!r} and {config.name!r} both serve a model named "
                        f"{model.id!r}; rename one (models = [{{ name = ..., upstream = ... }}])"
                    )
                self._models[model.id] = model
            self.statuses.append(
                ProviderStatus(config.name, config.type, "ready", models=[m.id for m in models])
            )
        self._pending = []

    async def add(self, config: ProviderConfig) -> list[Model]:
        """Load one more provider while serving (a hub repo, say); its models appear at once."""
        if any(status.name == config.name for status in self.statuses):
            raise ConfigError(f"a provider named {config.name!r} is already loaded")
        _, provider, reason = self._instantiate(config)
        if reason or provider is None:
            raise ModelUnavailable(f"cannot serve {config.name!r}: {reason}")
        models = list(await provider.load())
        clash = [m.id for m in models if m.id in self._models]
        if clash:
            await provider.aclose()
            raise Conflict(f"a model named {clash[0]!r} is already served", param="name")
        self._providers.append(provider)
        for model in models:
            self._models[model.id] = model
        self.statuses.append(
            ProviderStatus(config.name, config.type, "ready", models=[m.id for m in models])
        )
        return models

    async def remove(self, name: str) -> None:
        """Stop serving a provider added with :meth:`add` (or any other)."""
        provider = next((p for p in self._providers if p.name == name), None)
        if provider is None:
            raise NotFound(f"no provider named {name!r} is loaded")
        self._providers.remove(provider)
        self._models = {k: m for k, m in self._models.items() if m.provider != name}
        self.statuses = [s for s in self.statuses if s.name != name]
        await provider.aclose()

    async def aclose(self) -> None:
        for provider in self._providers:
            await provider.aclose()
        self._providers = []
        self._models = {}

    def add_resolver(
        self, prefix: str, resolve: Callable[[str], Model], listing: Callable[[], list[Model]]
    ) -> None:
        """Serve a family of models named ``prefix…`` that exist outside providers (apps)."""
        self._resolvers[prefix] = (resolve, listing)

    def models(self) -> list[Model]:
        extra = [m for _, listing in self._resolvers.values() for m in listing()]
        return list(self._models.values()) + extra

    def get(self, name: str) -> Model:
        for prefix, (resolve, _) in self._resolvers.items():
            if name.startswith(prefix):
                return resolve(name)
        model = self._models.get(name)
        if model is None:
            served = ", ".join(sorted(self._models)) or "none"
            raise ModelNotFound(
                f"the model {name!r} does not exist; models served here: {served}",
                param="model",
                code="model_not_found",
            )
        return model

    def chat(self, name: str) -> ChatModel:
        model = self.get(name)
        if not isinstance(model, ChatModel):
            raise _wrong_kind(name, model, "it cannot chat")
        return model

    def embedding(self, name: str) -> EmbeddingModel:
        model = self.get(name)
        if not isinstance(model, EmbeddingModel):
            raise _wrong_kind(name, model, "it cannot make embeddings")
        return model

    def rerank(self, name: str) -> RerankModel:
        model = self.get(name)
        if not isinstance(model, RerankModel):
            raise _wrong_kind(name, model, "it cannot rerank")
        return model


def _wrong_kind(name: str, model: Model, cannot: str) -> Unsupported:
    article = "an" if model.kind[0] in "aeiou" else "a"
    return Unsupported(
        f"{name!r} is {article} {model.kind} model; {cannot}: use {_ENDPOINT[model.kind]}",
        param="model",
    )
