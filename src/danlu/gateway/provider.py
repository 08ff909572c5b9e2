"""The provider contract: how a backend offers models to the gateway.

A *provider type* (``llama_cpp``, ``openai_compatible``, …) is a
:class:`Provider` subclass with an ``Options`` model (``extra="forbid"``, so a
typo in a config file is an error, not a silent default). A configured provider
instance loads and returns its models. Models come in three kinds:

- :class:`ChatModel`: one abstract method, :meth:`ChatModel.stream_chat`, that
  yields OpenAI-shaped chunk bodies. Non-streamed answers are assembled from
  the stream unless the model overrides :meth:`ChatModel.chat`.
- :class:`EmbeddingModel`: one abstract method, :meth:`EmbeddingModel.embed`.
- :class:`RerankModel`: one abstract method, :meth:`RerankModel.rerank`, that
  scores documents against a query.

Capabilities are class attributes (``can_stream``, ``supports_tools``, …) so the
gateway can refuse what a model cannot do with a clear 422 before calling it.

Chunks are plain dicts in OpenAI's shape *without* ``id``, ``object``,
``created`` and ``model``, which the gateway stamps. A chat stream ends with a
usage chunk (``{"choices": [], "usage": {...}}``); the gateway forwards it only
when the client asked for ``stream_options.include_usage``, and meters it
always. See ``docs/providers.md`` for writing a provider.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from danlu.core.errors import Unsupported
from danlu.core.settings import Settings
from danlu.gateway.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest

Chunk = dict[str, Any]


class ProviderOptions(BaseModel):
    """Base of every provider's options: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class CallContext:
    """Who is calling, for fair queueing, access checks and upstream ``user`` fields."""

    owner: str
    principal: Any = None  # danlu.core.keys.Principal; Any keeps the gateway free of core.keys
    # Filled in by routed models (danlu.gateway.routing): the served models a call tried,
    # in order; the last one served it, or failed last. A list the caller keeps, so the
    # request log can read it once the call (or the stream) is over; empty for plain models.
    deployments: list[str] = field(default_factory=list, compare=False)


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: list[list[float]]
    prompt_tokens: int
    # The served model that made the vectors when a route chose it (embed() gets no
    # CallContext to report it on); None for plain models.
    deployment: str | None = None


@dataclass(frozen=True)
class RerankResult:
    """How relevant each document is to the query.

    ``scores`` has one float per document, in the order the documents were
    given; higher means more relevant. A reranker scores each document against
    the query on its own (pointwise), so scores from different calls to the
    *same* model are comparable (a threshold chosen once keeps its meaning);
    scores of different models are on different scales and are not. ``tokens``
    is what the call consumed, for metering.
    """

    scores: list[float]
    tokens: int


class Model(ABC):
    """Anything the gateway serves under a name."""

    kind: ClassVar[Literal["chat", "embedding", "rerank"]]

    def __init__(self, model_id: str, *, owned_by: str, provider: str):
        self.id = model_id
        self.owned_by = owned_by
        self.provider = provider

    @property
    def context_length(self) -> int | None:
        return None

    def stats(self) -> dict[str, Any]:
        """Live figures for ``/healthz`` (queue lengths, counters)."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Extra facts for ``/v1/models`` (danlu-specific, after OpenAI's fields)."""
        return {"kind": self.kind, "context_length": self.context_length}

    async def probe(self) -> None:  # noqa: B027 - optional hook, nothing to probe by default
        """Check cheaply that the model can serve; raise (an ``UpstreamError``) if not.

        Routes with health checks call this every few seconds, so it must cost no
        tokens: an upstream's ``GET /models``, say. Models with nothing to check (in
        process, already loaded) keep the default, which always passes.
        """


class ChatModel(Model):
    """A model that chats (and usually also completes raw text)."""

    kind = "chat"
    can_stream: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = False
    supports_completions: ClassVar[bool] = False

    @abstractmethod
    def stream_chat(self, request: ChatCompletionRequest, ctx: CallContext) -> AsyncIterator[Chunk]:
        """Yield chunk bodies: deltas per choice, then one usage chunk."""

    async def chat(self, request: ChatCompletionRequest, ctx: CallContext) -> Chunk:
        """A whole answer: ``{"choices": [...], "usage": {...}}``, built from the stream."""
        return await assemble_chat(self.stream_chat(request, ctx))

    def stream_completion(
        self, request: CompletionRequest, ctx: CallContext
    ) -> AsyncIterator[Chunk]:
        """Yield legacy completion chunks, then one usage chunk."""
        raise Unsupported(
            f"model {self.id!r} does not offer /v1/completions; use /v1/chat/completions",
            param="model",
        )

    async def completion(self, request: CompletionRequest, ctx: CallContext) -> Chunk:
        return await assemble_completion(self.stream_completion(request, ctx))


class EmbeddingModel(Model):
    kind = "embedding"
    dimensions: int = 0

    @abstractmethod
    async def embed(self, request: EmbeddingRequest, texts: list[str]) -> EmbeddingResult:
        """Embed ``texts`` (already validated as non-empty strings)."""


class RerankModel(Model):
    """A model that orders documents by their relevance to a query."""

    kind = "rerank"

    @abstractmethod
    async def rerank(self, query: str, documents: list[str], ctx: CallContext) -> RerankResult:
        """Score every document against ``query`` (both already validated as non-empty).

        Return one score per document, in the documents' order; the gateway
        sorts and truncates (``top_n``) itself.
        """


class ModelLookup(Protocol):
    """What a provider may ask of the registry that loaded it."""

    def chat(self, name: str) -> ChatModel:
        """The chat model served as ``name``; raises if there is none."""
        ...


class Provider(ABC):
    """A configured backend instance that offers one or more models."""

    type: ClassVar[str]
    Options: ClassVar[builtins.type[ProviderOptions]]
    # The registry that loaded this provider, set before load(): for models built on
    # other served models (llm_rerank scores with a chat model). In load() it sees only
    # providers listed earlier; models should look their helpers up again at call time,
    # since a served model can be replaced.
    registry: ModelLookup | None = None

    def __init__(self, name: str, options: ProviderOptions, settings: Settings):
        self.name = name
        self.options = options
        self.settings = settings

    @classmethod
    def unavailable_reason(cls, options: ProviderOptions) -> str | None:
        """Why this provider cannot run here (a missing package, file …), or None."""
        return None

    @abstractmethod
    async def load(self) -> Sequence[Model]:
        """Load or discover the models; raise with a helpful message on failure."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release what :meth:`load` acquired."""


def _merge_delta(target: dict[str, Any], delta: dict[str, Any]) -> None:
    """Fold one streamed delta into a message, the way OpenAI clients do."""
    for key, value in delta.items():
        if value is None:
            continue
        if key == "tool_calls":
            calls: list[dict[str, Any]] = target.setdefault("tool_calls", [])
            for call in value:
                index = call.get("index", len(calls))
                while len(calls) <= index:
                    calls.append(
                        {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
                    )
                slot = calls[index]
                for field in ("id", "type"):
                    if call.get(field):
                        slot[field] = call[field]
                function = call.get("function") or {}
                for field in ("name", "arguments"):
                    if function.get(field):
                        slot["function"][field] += function[field]
        elif key == "role":
            target["role"] = value
        elif isinstance(value, str):
            target[key] = target.get(key, "") + value
        else:
            target[key] = value


def _merge_logprobs(slot: dict[str, Any], logprobs: dict[str, Any] | None) -> None:
    """Append one chunk's per-token log probabilities to the whole answer's."""
    if not logprobs:
        return
    merged: dict[str, Any] = slot["logprobs"] or {}
    for key, entries in logprobs.items():
        if isinstance(entries, list):
            merged.setdefault(key, []).extend(entries)
    slot["logprobs"] = merged


async def assemble_chat(chunks: AsyncIterator[Chunk]) -> Chunk:
    """Build a non-streamed chat answer from a provider's stream."""
    choices: dict[int, dict[str, Any]] = {}
    usage: dict[str, Any] | None = None
    async for chunk in chunks:
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices", []):
            slot = choices.setdefault(
                choice["index"],
                {
                    "index": choice["index"],
                    "message": {"role": "assistant", "content": ""},
                    "logprobs": None,
                    "finish_reason": None,
                },
            )
            _merge_delta(slot["message"], choice.get("delta") or {})
            _merge_logprobs(slot, choice.get("logprobs"))
            if choice.get("finish_reason"):
                slot["finish_reason"] = choice["finish_reason"]
    for slot in choices.values():
        message = slot["message"]
        if message.get("tool_calls") and not message.get("content"):
            message["content"] = None
    return {"choices": [choices[i] for i in sorted(choices)], "usage": usage}


async def assemble_completion(chunks: AsyncIterator[Chunk]) -> Chunk:
    """Build a non-streamed text completion from a provider's stream."""
    choices: dict[int, dict[str, Any]] = {}
    usage: dict[str, Any] | None = None
    async for chunk in chunks:
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices", []):
            slot = choices.setdefault(
                choice["index"],
                {"index": choice["index"], "text": "", "logprobs": None, "finish_reason": None},
            )
            slot["text"] += choice.get("text") or ""
            if choice.get("finish_reason"):
                slot["finish_reason"] = choice["finish_reason"]
    return {"choices": [choices[i] for i in sorted(choices)], "usage": usage}
