"""Routes: one public model name served by several deployments, with failover.

A *route* (``[[routes]]`` in the providers file, or :meth:`ModelRegistry.add_route`)
maps a public name to *deployments*: models the registry already serves from
providers (``dashscope-qwen-plus``, ``backup-qwen``), each with a ``weight`` and a
``priority``. A call picks, among the deployments that are not cooling down or
failing their health check, the best (lowest) priority group, and in it one
deployment at random in proportion to the weights. An alias is a route with one
deployment.

What a failure does:

- **Retried** (on another deployment when there is one, after a backoff): what
  another try may cure — connection errors, timeouts, upstream 408/429/5xx, a full
  local queue (``RateLimited``), a model that cannot serve now. A call makes at most
  ``1 + retries`` attempts on the route's deployments, preferring ones it has not
  tried yet, then tries the ``fallbacks`` (other public names, routes or plain
  models) in order, each once (a route with its own retries).
- **Passed on at once**: everything else, above all the client's own mistakes
  (upstream 4xx such as a bad parameter, ``InvalidRequest``, ``Unsupported``): no
  other deployment would answer differently.
- **Only before the first chunk.** A stream is retried only until its first chunk
  is in hand: after that the client may already hold part of an answer, and a
  second answer spliced onto it would be a different, corrupt one. A failure
  mid-stream is passed on (the client sees an error event) and counts against the
  deployment. Non-streamed calls have no first chunk before the whole answer, so
  they are retried on any retryable failure.

``timeout`` bounds each attempt's wait for its first chunk (for non-streamed calls,
the whole answer); the provider's own timeouts still apply on top.

A deployment that fails ``allowed_fails`` times in a row cools down for
``cooldown`` seconds: calls skip it. After the cooldown one failure is enough to
cool it down again (it is on probation) until a success resets its count. An
upstream asking to wait longer (``Retry-After``) than ``backoff_max`` cools that
deployment down for as long as it asked; a shorter one is waited out before the
next attempt. Health checks (``health_check_interval`` > 0) call each deployment's
:meth:`Model.probe` in the background and skip deployments whose last probe
failed, until a probe or a call succeeds.

Each call records the models it tried on ``CallContext.deployments`` (the last one
served it, or failed last), and embeddings, which get no context, on
``EmbeddingResult.deployment``: the least invasive way for the request log to know
which deployment served, as neither leaks into what the client receives.

State (failure counts, cooldowns) lives in this process: replicas each learn on
their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, Protocol, TypeGuard, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from danlu.core.errors import (
    DanluError,
    ModelUnavailable,
    RateLimited,
    Unsupported,
    UpstreamError,
    UpstreamTimeout,
)
from danlu.gateway.provider import (
    CallContext,
    ChatModel,
    Chunk,
    EmbeddingModel,
    EmbeddingResult,
    Model,
    RerankModel,
    RerankResult,
)
from danlu.gateway.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest

log = logging.getLogger(__name__)

# What routed models give as their provider (Model.provider names a provider instance).
ROUTES = "routes"
# How long a health check may take when the route sets no timeout.
PROBE_TIMEOUT = 10.0

Kind = Literal["chat", "embedding", "rerank"]
M = TypeVar("M", bound=Model)
T = TypeVar("T")


class DeploymentConfig(BaseModel):
    """One model behind a route: a name the registry serves, its share and its rank."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    weight: float = Field(default=1.0, gt=0)
    priority: int = 0  # lower is tried first; higher ones are standbys


class RouteConfig(BaseModel):
    """A public model name served by deployments (see the module's docstring)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_./-]*$")
    deployments: list[DeploymentConfig] = Field(min_length=1)
    fallbacks: list[str] = Field(default_factory=list)
    retries: int = Field(default=2, ge=0, le=10)
    timeout: float | None = Field(default=None, gt=0)
    allowed_fails: int = Field(default=3, ge=1)
    cooldown: float = Field(default=30.0, ge=0)
    health_check_interval: float = Field(default=0.0, ge=0)
    backoff: float = Field(default=0.2, ge=0)
    backoff_max: float = Field(default=5.0, ge=0)

    @field_validator("deployments", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # deployments = ["a", { model = "b", weight = 2 }], as providers' `models` allow.
        if isinstance(value, list):
            return [{"model": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RouteConfig:
        names = [d.model for d in self.deployments]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"route {self.name!r} lists deployment {twice[0]!r} twice")
        if self.name in names:
            raise ValueError(f"route {self.name!r} cannot be one of its own deployments")
        if self.name in self.fallbacks:
            raise ValueError(f"route {self.name!r} cannot be its own fallback")
        if len(set(self.fallbacks)) != len(self.fallbacks):
            raise ValueError(f"route {self.name!r} lists a fallback twice")
        return self


class RouteLookup(Protocol):
    """What a route asks of the registry, at call time (served models can change)."""

    def served_model(self, name: str) -> Model | None:
        """A provider's model by name (not a route), or None if none is served."""
        ...

    def get(self, name: str) -> Model:
        """Any served name (a route, a model, an app); raises ``ModelNotFound``."""
        ...


@dataclass
class DeploymentState:
    """What one route has learned about one of its deployments."""

    failures: int = 0  # in a row; a success resets it
    total_failures: int = 0
    served: int = 0
    cooling_until: float = 0.0  # on the route's monotonic clock
    unhealthy: bool = False  # its last health check failed
    last_error: str | None = None
    last_error_at: float | None = None  # wall clock, for people

    def available(self, now: float) -> bool:
        return not self.unhealthy and now >= self.cooling_until


@dataclass(frozen=True)
class Need:
    """What a call needs of a model (tools, streaming …), to skip those that cannot."""

    test: Callable[[Model], bool]
    what: str  # "stream", for "no deployment of route 'x' can stream"
    param: str | None = None


_ANYTHING = Need(lambda _: True, "serve")


def retryable(exc: BaseException) -> bool:
    """Whether another try (maybe elsewhere) could succeed where ``exc`` failed."""
    if isinstance(exc, UpstreamError):  # before ConnectionError, which it is
        return exc.status in (408, 429) or exc.status >= 500
    return isinstance(exc, RateLimited | ModelUnavailable | ConnectionError | TimeoutError)


def retry_after(exc: BaseException | None) -> float | None:
    """Seconds a failure asked us to wait (``RateLimited``, or an upstream's Retry-After)."""
    if isinstance(exc, RateLimited):
        return exc.retry_after
    if isinstance(exc, DanluError):
        value = exc.extra.get("retry_after")
        if isinstance(value, int | float):
            return float(value)
    return None


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def _message(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, DanluError) else str(exc)
    return (text or exc.__class__.__name__)[:500]


async def _within(seconds: float | None, what: str, work: Awaitable[T]) -> T:
    """``await work``, or raise :class:`UpstreamTimeout` after ``seconds`` (None: no limit)."""
    scope = asyncio.timeout(seconds)
    try:
        async with scope:
            return await work
    except TimeoutError:
        if scope.expired():
            raise UpstreamTimeout(
                f"{what} sent nothing within {seconds:g} s (the route's timeout)", status=504
            ) from None
        raise


async def _close(chunks: AsyncIterator[Chunk]) -> None:
    if isinstance(chunks, AsyncGenerator):
        await chunks.aclose()


class Router(Generic[M]):
    """The policy and the learned state of one route; the routed models delegate here."""

    def __init__(
        self,
        config: RouteConfig,
        kind: Kind,
        accepts: Callable[[Model], TypeGuard[M]],
        lookup: RouteLookup,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ):
        self.config = config
        self.name = config.name
        self.kind = kind
        self.accepts = accepts  # is this served model of the route's kind?
        self._lookup = lookup
        self._clock = clock
        self._random = rng or random.Random()  # noqa: S311 - load spreading, not secrecy
        self.states = {d.model: DeploymentState() for d in config.deployments}
        self._health: asyncio.Task[None] | None = None

    # -- which model serves ----------------------------------------------------------

    def _model(self, deployment: DeploymentConfig) -> M | None:
        model = self._lookup.served_model(deployment.model)
        return model if model is not None and self.accepts(model) else None

    def served(self) -> list[tuple[DeploymentConfig, M]]:
        """The deployments whose models are served now (with the right kind)."""
        found = ((d, self._model(d)) for d in self.config.deployments)
        return [(d, m) for d, m in found if m is not None]

    def pick(self, need: Need, tried: set[str]) -> tuple[DeploymentConfig, M] | None:
        """The next deployment to try, or None if no served deployment can do this."""
        served = [(d, m) for d, m in self.served() if need.test(m)]
        if not served:
            return None
        now = self._clock()
        healthy = [pair for pair in served if self.states[pair[0].model].available(now)]
        # Untried healthy ones first, then healthy ones again; when every deployment is
        # cooling down or unhealthy, try them anyway rather than fail without trying:
        # cooldown is a guess from past failures, the upstream may be back, and failing
        # fast would turn a short blip on a one-deployment alias into `cooldown` seconds
        # of certain errors. The cost is one more attempt, bounded by timeout and retries.
        pools = (
            [pair for pair in healthy if pair[0].model not in tried],
            healthy,
            [pair for pair in served if pair[0].model not in tried],
            served,
        )
        pool = next(p for p in pools if p)
        best = min(d.priority for d, _ in pool)
        group = [pair for pair in pool if pair[0].priority == best]
        return self._random.choices(group, weights=[d.weight for d, _ in group])[0]

    def _fallbacks(self, need: Need, visited: frozenset[str]) -> list[Model]:
        found: list[Model] = []
        for name in self.config.fallbacks:
            if name in visited:
                continue  # a cycle of fallbacks (a → b → a): each route is tried once
            try:
                model = self._lookup.get(name)
            except DanluError:
                continue  # not served (now): /healthz shows the route as degraded
            if self.accepts(model) and need.test(model):
                found.append(model)
        return found

    def _check_possible(self, need: Need, visited: frozenset[str]) -> None:
        if any(need.test(m) for _, m in self.served()) or self._fallbacks(need, visited):
            return
        if need is _ANYTHING or not self.served():
            return  # nothing served at all: ModelUnavailable, from the attempt loop
        raise Unsupported(
            f"no deployment or fallback of route {self.name!r} can {need.what}", param=need.param
        )

    # -- what calls teach ------------------------------------------------------------

    def _failed(self, deployment: DeploymentConfig, exc: BaseException) -> None:
        state = self.states[deployment.model]
        state.failures += 1
        state.total_failures += 1
        state.last_error = _message(exc)
        state.last_error_at = time.time()
        now = self._clock()
        if state.failures >= self.config.allowed_fails and self.config.cooldown > 0:
            if now >= state.cooling_until:
                log.warning(
                    "route %s: %s failed %d time(s) in a row; cooling down for %g s: %s",
                    self.name,
                    deployment.model,
                    state.failures,
                    self.config.cooldown,
                    state.last_error,
                )
            state.cooling_until = max(state.cooling_until, now + self.config.cooldown)
        wait = retry_after(exc)
        if wait is not None and wait > self.config.backoff_max:
            # Told to come back later than we would wait: skip it until then.
            state.cooling_until = max(state.cooling_until, now + wait)

    def _succeeded(self, deployment: DeploymentConfig) -> None:
        state = self.states[deployment.model]
        state.served += 1
        state.failures = 0
        state.cooling_until = 0.0
        state.unhealthy = False

    def _delay(self, retry: int, last: BaseException | None) -> float:
        """Exponential backoff with jitter before retry number ``retry`` (1, 2, …)."""
        ceiling = min(self.config.backoff_max, self.config.backoff * 2.0 ** (retry - 1))
        delay = ceiling / 2 + self._random.uniform(0, ceiling / 2)
        asked = retry_after(last)
        if asked is not None and asked <= self.config.backoff_max:
            delay = max(delay, asked)
        return delay

    def _exhausted(self, last: Exception | None, attempts: list[str]) -> Exception:
        if last is None:
            missing = [d.model for d in self.config.deployments]
            return ModelUnavailable(
                f"route {self.name!r} has nothing to serve it now: none of its deployments "
                f"({', '.join(missing)}) nor fallbacks is served; see /healthz"
            )
        tried = ", ".join(dict.fromkeys(attempts))
        if isinstance(last, DanluError):
            # The last failure keeps its class and status (a 429 stays a 429); the
            # message says that it was not the only one.
            last.message = (
                f"route {self.name!r}: every attempt failed ({len(attempts)} on {tried}); "
                f"the last: {last.message}"
            )
            last.args = (last.message,)
        return last

    # -- the attempt loops -------------------------------------------------------------

    async def call(
        self,
        invoke: Callable[[M], Awaitable[T]],
        need: Need,
        trace: list[str],
        visited: frozenset[str] = frozenset(),
    ) -> T:
        """A whole answer (non-streamed chat, embeddings, rerank), with failover."""
        self._check_possible(need, visited)
        last: Exception | None = None
        tried: set[str] = set()
        attempts: list[str] = []
        for attempt in range(self.config.retries + 1):
            picked = self.pick(need, tried)
            if picked is None:
                break
            deployment, model = picked
            if attempt:
                await asyncio.sleep(self._delay(attempt, last))
            trace.append(model.id)
            attempts.append(model.id)
            try:
                result = await _within(self.config.timeout, repr(model.id), invoke(model))
            except Exception as exc:
                if not retryable(exc):
                    raise
                self._failed(deployment, exc)
                tried.add(deployment.model)
                last = exc
                continue
            self._succeeded(deployment)
            return result
        for fallback in self._fallbacks(need, visited | {self.name}):
            try:
                if isinstance(fallback, RoutedModel):
                    routed: Router[M] = fallback.router
                    return await routed.call(invoke, need, trace, visited | {self.name})
                assert self.accepts(fallback)
                trace.append(fallback.id)
                attempts.append(fallback.id)
                return await _within(self.config.timeout, repr(fallback.id), invoke(fallback))
            except Exception as exc:
                if not retryable(exc):
                    raise
                last = exc
        raise self._exhausted(last, attempts)

    async def stream(
        self,
        open_stream: Callable[[M], AsyncIterator[Chunk]],
        need: Need,
        trace: list[str],
        visited: frozenset[str] = frozenset(),
    ) -> AsyncIterator[Chunk]:
        """A stream, with failover until its first chunk and none after it."""
        self._check_possible(need, visited)
        last: Exception | None = None
        tried: set[str] = set()
        attempts: list[str] = []
        for attempt in range(self.config.retries + 1):
            picked = self.pick(need, tried)
            if picked is None:
                break
            deployment, model = picked
            if attempt:
                await asyncio.sleep(self._delay(attempt, last))
            trace.append(model.id)
            attempts.append(model.id)
            chunks = open_stream(model)
            try:
                first = await _within(self.config.timeout, repr(model.id), anext(chunks))
            except StopAsyncIteration:
                self._succeeded(deployment)
                return
            except Exception as exc:
                await _close(chunks)
                if not retryable(exc):
                    raise
                self._failed(deployment, exc)
                tried.add(deployment.model)
                last = exc
                continue
            except BaseException:
                await _close(chunks)
                raise
            # The first chunk is in hand: from here on nothing is retried (see above).
            try:
                yield first
                async for chunk in chunks:
                    yield chunk
            except Exception as exc:
                if retryable(exc):
                    self._failed(deployment, exc)
                raise
            else:
                self._succeeded(deployment)
            finally:
                await _close(chunks)
            return
        for fallback in self._fallbacks(need, visited | {self.name}):
            if isinstance(fallback, RoutedModel):
                routed: Router[M] = fallback.router
                chunks = routed.stream(open_stream, need, trace, visited | {self.name})
                deadline = None  # the route applies its own timeout per attempt
            else:
                assert self.accepts(fallback)
                trace.append(fallback.id)
                attempts.append(fallback.id)
                chunks = open_stream(fallback)
                deadline = self.config.timeout
            try:
                first = await _within(deadline, repr(fallback.id), anext(chunks))
            except StopAsyncIteration:
                return
            except Exception as exc:
                await _close(chunks)
                if not retryable(exc):
                    raise
                last = exc
                continue
            except BaseException:
                await _close(chunks)
                raise
            try:
                yield first
                async for chunk in chunks:
                    yield chunk
            finally:
                await _close(chunks)
            return
        raise self._exhausted(last, attempts)

    # -- health checks ---------------------------------------------------------------

    def start(self) -> None:
        """Start background health checks, if the route wants them (needs a running loop)."""
        if self.config.health_check_interval > 0 and self._health is None:
            self._health = asyncio.get_running_loop().create_task(
                self._check_forever(), name=f"danlu-route-health-{self.name}"
            )

    async def stop(self) -> None:
        task, self._health = self._health, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _check_forever(self) -> None:
        while True:
            try:
                await self.check_health()
            except Exception:  # a bug in one probe must not end the checks
                log.exception("route %s: health check failed", self.name)
            await asyncio.sleep(self.config.health_check_interval)

    async def check_health(self) -> None:
        """Probe every served deployment once, concurrently; mark each healthy or not."""
        await asyncio.gather(*(self._probe(d, m) for d, m in self.served()))

    async def _probe(self, deployment: DeploymentConfig, model: M) -> None:
        state = self.states[deployment.model]
        try:
            await _within(self.config.timeout or PROBE_TIMEOUT, repr(model.id), model.probe())
        except Exception as exc:
            if not state.unhealthy:
                log.warning(
                    "route %s: %s failed its health check: %s",
                    self.name,
                    deployment.model,
                    _message(exc),
                )
            state.unhealthy = True
            state.last_error = f"health check: {_message(exc)}"
            state.last_error_at = time.time()
        else:
            if state.unhealthy:
                log.info("route %s: %s passes its health check again", self.name, deployment.model)
            state.unhealthy = False

    # -- what /v1/models and /healthz show ---------------------------------------------

    def context_length(self) -> int | None:
        # The smallest of the deployments': a prompt that fits it fits whichever serves.
        lengths = [m.context_length for _, m in self.served() if m.context_length is not None]
        return min(lengths) if lengths else None

    def describe(self) -> dict[str, Any]:
        return {
            "deployments": [d.model_dump() for d in self.config.deployments],
            "fallbacks": list(self.config.fallbacks),
        }

    def stats(self) -> dict[str, Any]:
        now = self._clock()
        served = {d.model for d, _ in self.served()}
        deployments: dict[str, Any] = {}
        for deployment in self.config.deployments:
            state = self.states[deployment.model]
            if deployment.model not in served:
                status = "missing"
            elif now < state.cooling_until:
                status = "cooling"
            elif state.unhealthy:
                status = "unhealthy"
            else:
                status = "healthy"
            at = state.last_error_at
            deployments[deployment.model] = {
                "state": status,
                "cooling_for": round(max(0.0, state.cooling_until - now), 1),
                "failures": state.failures,
                "total_failures": state.total_failures,
                "served": state.served,
                "last_error": state.last_error,
                "last_error_at": None
                if at is None
                else datetime.fromtimestamp(at, UTC).isoformat(),
            }
        return {"deployments": deployments}


class RoutedModel(Model):
    """A model whose calls a :class:`Router` spreads over deployments."""

    router: Router[Any]

    def _setup(self, router: Router[Any]) -> None:
        Model.__init__(self, router.name, owned_by="danlu", provider=ROUTES)
        self.router = router

    @property
    def context_length(self) -> int | None:
        return self.router.context_length()

    def stats(self) -> dict[str, Any]:
        return self.router.stats()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), **self.router.describe()}


def _can_stream(model: Model) -> bool:
    return isinstance(model, ChatModel) and model.can_stream


def _has_tools(model: Model) -> bool:
    return isinstance(model, ChatModel) and model.supports_tools


def _completes(model: Model) -> bool:
    return isinstance(model, ChatModel) and model.supports_completions


def _chat_need(request: ChatCompletionRequest, streamed: bool) -> Need:
    if request.tools and streamed:
        return Need(lambda m: _can_stream(m) and _has_tools(m), "stream with tools", "tools")
    if request.tools:
        return Need(_has_tools, "use tools", "tools")
    return Need(_can_stream, "stream", "stream") if streamed else _ANYTHING


def _completion_need(streamed: bool) -> Need:
    if streamed:
        return Need(lambda m: _completes(m) and _can_stream(m), "stream completions", "model")
    return Need(_completes, "serve /v1/completions", "model")


class RoutedChatModel(RoutedModel, ChatModel):
    # The route serves what any deployment can; a call that none can do is refused by
    # the router (422) and one only some can do goes to those.
    can_stream = True
    supports_tools = True
    supports_completions = True

    def __init__(self, router: Router[ChatModel]):
        self._setup(router)

    def stream_chat(self, request: ChatCompletionRequest, ctx: CallContext) -> AsyncIterator[Chunk]:
        return self.router.stream(
            lambda m: m.stream_chat(request, ctx), _chat_need(request, True), ctx.deployments
        )

    async def chat(self, request: ChatCompletionRequest, ctx: CallContext) -> Chunk:
        result: Chunk = await self.router.call(
            lambda m: m.chat(request, ctx), _chat_need(request, False), ctx.deployments
        )
        return result

    def stream_completion(
        self, request: CompletionRequest, ctx: CallContext
    ) -> AsyncIterator[Chunk]:
        return self.router.stream(
            lambda m: m.stream_completion(request, ctx), _completion_need(True), ctx.deployments
        )

    async def completion(self, request: CompletionRequest, ctx: CallContext) -> Chunk:
        result: Chunk = await self.router.call(
            lambda m: m.completion(request, ctx), _completion_need(False), ctx.deployments
        )
        return result


class RoutedEmbeddingModel(RoutedModel, EmbeddingModel):
    def __init__(self, router: Router[EmbeddingModel]):
        self._setup(router)

    async def embed(self, request: EmbeddingRequest, texts: list[str]) -> EmbeddingResult:
        trace: list[str] = []
        result: EmbeddingResult = await self.router.call(
            lambda m: m.embed(request, texts), _ANYTHING, trace
        )
        return dataclasses.replace(result, deployment=trace[-1] if trace else None)


class RoutedRerankModel(RoutedModel, RerankModel):
    def __init__(self, router: Router[RerankModel]):
        self._setup(router)

    async def rerank(self, query: str, documents: list[str], ctx: CallContext) -> RerankResult:
        result: RerankResult = await self.router.call(
            lambda m: m.rerank(query, documents, ctx), _ANYTHING, ctx.deployments
        )
        return result


def _is_chat(model: Model) -> TypeGuard[ChatModel]:
    return isinstance(model, ChatModel)


def _is_embedding(model: Model) -> TypeGuard[EmbeddingModel]:
    return isinstance(model, EmbeddingModel)


def _is_rerank(model: Model) -> TypeGuard[RerankModel]:
    return isinstance(model, RerankModel)


def build_route(config: RouteConfig, kind: Kind, lookup: RouteLookup) -> RoutedModel:
    """The served model for a route whose deployments are ``kind`` models."""
    if kind == "chat":
        return RoutedChatModel(Router(config, kind, _is_chat, lookup))
    if kind == "embedding":
        return RoutedEmbeddingModel(Router(config, kind, _is_embedding, lookup))
    return RoutedRerankModel(Router(config, kind, _is_rerank, lookup))
