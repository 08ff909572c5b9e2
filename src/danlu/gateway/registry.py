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

    [[routes]]
    name = "qwen"
    deployments = [{ model = "qwen-plus", weight = 3 }, { model = "backup-qwen", priority = 1 }]
    fallbacks = ["deepseek-chat"]

A malformed file stops the server with a message naming the entry; a provider
that fails to load (a missing package, an unreachable upstream) is reported by
``danlu doctor`` and ``/healthz`` and the rest keep serving.

Routes (``danlu.gateway.routing``) are resolved once the providers have loaded,
and again whenever providers come or go: a route none of whose deployments is
served, or that mixes kinds of model, is reported like a failed provider (state
``failed``, type ``route``) and serves nothing; one with only some deployments or
fallbacks served serves with those (state ``degraded``, the reason names the
others), and picks the rest up when they appear (a provider added at run time).
"""

from __future__ import annotations

import contextlib
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
    DanluError,
    ModelNotFound,
    ModelUnavailable,
    NotFound,
    Unsupported,
)
from danlu.core.settings import Settings
from danlu.gateway.provider import ChatModel, EmbeddingModel, Model, Provider, RerankModel
from danlu.gateway.routing import Kind, RouteConfig, RoutedModel, build_route

log = logging.getLogger(__name__)

# Where each kind of model is called, for errors that name the right endpoint.
_ENDPOINT = {"chat": "/v1/chat/completions", "embedding": "/v1/embeddings", "rerank": "/v1/rerank"}


class ProviderConfig(BaseModel):
    """One provider instance: a unique name, a registered type and its options."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    type: str
    options: dict[str, Any] = Field(default_factory=dict)


State = Literal["ready", "degraded", "unavailable", "failed", "not started"]


@dataclass
class ProviderStatus:
    name: str
    type: str
    state: State
    reason: str | None = None
    models: list[str] = field(default_factory=list)


# The type of a route's entry in ModelRegistry.statuses (a route is no provider, but
# fails and degrades like one, and people look for both in the same list).
ROUTE = "route"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read providers file {path}: {exc}") from exc


def read_providers_file(path: Path) -> list[ProviderConfig]:
    """Parse a providers TOML file into configs; errors name the bad entry."""
    data = _read_toml(path)
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


def read_routes_file(path: Path) -> list[RouteConfig]:
    """The ``[[routes]]`` of a providers TOML file; errors name the bad entry."""
    entries = _read_toml(path).get("routes", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: 'routes' must be an array of tables ([[routes]])")
    configs = []
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: routes[{position}] must be a table")
        named = (
            f"routes[{position}] ({entry['name']!r})" if "name" in entry else f"routes[{position}]"
        )
        try:
            configs.append(RouteConfig.model_validate(entry))
        except ValidationError as exc:
            raise ConfigError(f"{path}: {named}: {_first_error(exc)}") from exc
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
        routes: Iterable[RouteConfig] = (),
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
        # Every configured route, served or not (yet), by name; and those being served.
        self._route_configs: dict[str, RouteConfig] = {}
        self._routes: dict[str, RoutedModel] = {}
        for route in routes:
            if route.name in self._route_configs:
                raise ConfigError(f"two routes are named {route.name!r}; names must be unique")
            self._route_configs[route.name] = route

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
        routes: list[RouteConfig] = []
        if providers_file is not None:
            if not providers_file.is_file():
                raise ConfigError(f"providers file {providers_file} does not exist")
            configs.extend(read_providers_file(providers_file))
            routes = read_routes_file(providers_file)
        return cls(types, configs, settings, routes)

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
        ] + [ProviderStatus(name, ROUTE, "not started") for name in self._route_configs]

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
        self._resolve_routes()

    async def add(self, config: ProviderConfig) -> list[Model]:
        """Load one more provider while serving (a hub repo, say); its models appear at once."""
        if any(s.name == config.name and s.type != ROUTE for s in self.statuses):
            raise ConfigError(f"a provider named {config.name!r} is already loaded")
        _, provider, reason = self._instantiate(config)
        if reason or provider is None:
            raise ModelUnavailable(f"cannot serve {config.name!r}: {reason}")
        models = list(await provider.load())
        clash = [m.id for m in models if m.id in self._models or m.id in self._route_configs]
        if clash:
            await provider.aclose()
            raise Conflict(f"a model named {clash[0]!r} is already served", param="name")
        self._providers.append(provider)
        for model in models:
            self._models[model.id] = model
        self.statuses.append(
            ProviderStatus(config.name, config.type, "ready", models=[m.id for m in models])
        )
        self._resolve_routes()
        return models

    async def remove(self, name: str) -> None:
        """Stop serving a provider added with :meth:`add` (or any other)."""
        provider = next((p for p in self._providers if p.name == name), None)
        if provider is None:
            raise NotFound(f"no provider named {name!r} is loaded")
        self._providers.remove(provider)
        self._models = {k: m for k, m in self._models.items() if m.provider != name}
        self.statuses = [s for s in self.statuses if s.name != name or s.type == ROUTE]
        await provider.aclose()
        self._resolve_routes()

    async def aclose(self) -> None:
        for routed in self._routes.values():
            await routed.router.stop()
        self._routes = {}
        for provider in self._providers:
            await provider.aclose()
        self._providers = []
        self._models = {}

    # -- routes ----------------------------------------------------------------------

    async def add_route(self, config: RouteConfig) -> Model:
        """Serve a route while running (an admin's request); it must be right now.

        Unlike routes from the providers file, every deployment and fallback must be
        served already: whoever adds it hears at once about a typo.
        """
        if config.name in self._route_configs:
            raise Conflict(f"a route named {config.name!r} already exists", param="name")
        kind, problems = self._check_route(config)
        if problems:
            raise ConfigError(f"route {config.name!r}: {'; '.join(problems)}")
        self._route_configs[config.name] = config
        routed = self._activate(config, kind)
        self._set_route_status(config.name, "ready", None)
        return routed

    async def remove_route(self, name: str) -> None:
        """Stop serving a route (from the file or :meth:`add_route`); its deployments stay."""
        if self._route_configs.pop(name, None) is None:
            raise NotFound(f"no route named {name!r}")
        routed = self._routes.pop(name, None)
        self.statuses = [s for s in self.statuses if not (s.type == ROUTE and s.name == name)]
        if routed is not None:
            await routed.router.stop()

    def route_configs(self) -> list[RouteConfig]:
        """Every configured route, served or not."""
        return list(self._route_configs.values())

    def served_model(self, name: str) -> Model | None:
        """A provider's model by name, routes excepted (what a route's deployments name)."""
        return self._models.get(name)

    def _resolve_routes(self) -> None:
        """Serve the routes that can be served now; refresh every route's status."""
        # Serve first, report after: a route may fall back on one listed after it.
        for config in self._route_configs.values():
            if config.name not in self._routes:
                with contextlib.suppress(DanluError):
                    self._activate(config, self._check_route(config)[0])
        for config in self._route_configs.values():
            served = config.name in self._routes
            try:
                _, problems = self._check_route(config)
            except DanluError as exc:
                # Served already, its deployments changed since: it keeps serving what
                # is left (the router skips models of the wrong kind).
                if not served:
                    log.error("route %s cannot be served: %s", config.name, exc.message)
                self._set_route_status(config.name, "degraded" if served else "failed", exc.message)
                continue
            if problems:
                log.warning("route %s serves without: %s", config.name, "; ".join(problems))
            self._set_route_status(
                config.name, "degraded" if problems else "ready", "; ".join(problems) or None
            )

    def _activate(self, config: RouteConfig, kind: Kind) -> Model:
        routed = build_route(config, kind, self)
        self._routes[config.name] = routed
        routed.router.start()
        return routed

    def _set_route_status(self, name: str, state: State, reason: str | None) -> None:
        served = [name] if name in self._routes else []
        status = ProviderStatus(name, ROUTE, state, reason, served)
        for index, old in enumerate(self.statuses):
            if old.type == ROUTE and old.name == name:
                self.statuses[index] = status
                return
        self.statuses.append(status)

    def _kind_of(self, name: str) -> str | None:
        """The kind of whatever ``name`` serves now (model, route or app), or None."""
        if name in self._models:
            return self._models[name].kind
        if name in self._routes:
            return self._routes[name].kind
        if any(name.startswith(prefix) for prefix in self._resolvers):
            try:
                return self.get(name).kind
            except DanluError:
                return None
        return None

    def _check_route(self, config: RouteConfig) -> tuple[Kind, list[str]]:
        """The route's kind and what it lacks now; raises if it cannot be served at all."""
        name = config.name
        if name in self._models:
            raise Conflict(
                f"route {name!r}: provider {self._models[name].provider!r} serves a model of "
                "that name; give the route a name of its own",
                param="name",
            )
        if any(name.startswith(prefix) for prefix in self._resolvers):
            raise ConfigError(f"route {name!r}: names starting {name.split(':')[0]!r} are taken")
        kinds: dict[str, Kind] = {}
        problems: list[str] = []
        for deployment in config.deployments:
            model = self._models.get(deployment.model)
            if model is None and deployment.model in self._route_configs:
                raise ConfigError(
                    f"route {name!r}: deployment {deployment.model!r} is a route; deployments "
                    "are models of providers (chain routes with `fallbacks`)"
                )
            if model is None:
                problems.append(f"deployment {deployment.model!r} is not served")
            else:
                kinds[deployment.model] = model.kind
        if len(set(kinds.values())) > 1:
            mixed = ", ".join(f"{model!r} is {kind}" for model, kind in kinds.items())
            raise ConfigError(
                f"route {name!r} mixes kinds of model ({mixed}); a route's deployments must "
                "all be chat, all embedding or all rerank models"
            )
        if not kinds:
            missing = ", ".join(repr(d.model) for d in config.deployments)
            raise ConfigError(
                f"route {name!r}: none of its deployments ({missing}) is served; check the "
                "names against /v1/models and the providers in /healthz"
            )
        kind = next(iter(kinds.values()))
        for fallback in config.fallbacks:
            fallback_kind = self._kind_of(fallback)
            if fallback_kind is None:
                problems.append(f"fallback {fallback!r} is not served")
            elif fallback_kind != kind:
                article = "an" if fallback_kind[0] in "aeiou" else "a"
                raise ConfigError(
                    f"route {name!r} serves {kind} models, but its fallback {fallback!r} is "
                    f"{article} {fallback_kind} model"
                )
        return kind, problems

    def add_resolver(
        self, prefix: str, resolve: Callable[[str], Model], listing: Callable[[], list[Model]]
    ) -> None:
        """Serve a family of models named ``prefix…`` that exist outside providers (apps)."""
        self._resolvers[prefix] = (resolve, listing)

    def models(self) -> list[Model]:
        extra = [m for _, listing in self._resolvers.values() for m in listing()]
        return [*self._models.values(), *self._routes.values(), *extra]

    def get(self, name: str) -> Model:
        for prefix, (resolve, _) in self._resolvers.items():
            if name.startswith(prefix):
                return resolve(name)
        model = self._models.get(name) or self._routes.get(name)
        if model is None:
            served = ", ".join(sorted([*self._models, *self._routes])) or "none"
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
