"""Any OpenAI-compatible upstream: vLLM, Ollama, DashScope, DeepSeek, another danlu…

Requests are forwarded as the client sent them (non-standard fields included)
with the model name mapped to the upstream's. Streams are passed through
chunk by chunk: each upstream chunk's choices and extra fields reach the
client unchanged, only ``id``/``model``/``created`` are restamped by the
gateway. The gateway always asks the upstream for usage so it can meter the
call, and forwards it only if the client asked for it.

Rerank models (``kind = "rerank"``) call the upstream's ``POST /rerank`` in the
shape Jina, Cohere-v2-compatible servers, vLLM, Xinference and SiliconFlow
share: ``{"model", "query", "documents": [str], "return_documents": false}`` in,
``{"results": [{"index", "relevance_score"}], "usage": {"total_tokens"}}`` out.

A model's :meth:`probe` (for routes' health checks) is ``GET {base_url}/models``: it
proves the upstream is reachable and takes the key, and costs no tokens. An upstream's
``Retry-After`` (or ``retry-after-ms``) on a failure travels as
``error.extra["retry_after"]`` (seconds), for routes to honour.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import Field, HttpUrl

from danlu.core.errors import UpstreamError, UpstreamTimeout
from danlu.gateway.provider import (
    CallContext,
    ChatModel,
    Chunk,
    EmbeddingModel,
    EmbeddingResult,
    Model,
    Provider,
    ProviderOptions,
    RerankModel,
    RerankResult,
)
from danlu.gateway.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest

# Fields the gateway stamps itself or must not forward.
_GATEWAY_FIELDS = {"model", "stream", "stream_options"}


class UpstreamModel(ProviderOptions):
    """One upstream model, optionally served under another name."""

    name: str = Field(min_length=1)
    upstream: str | None = None
    kind: str = Field(default="chat", pattern="^(chat|embedding|rerank)$")


class OpenAICompatibleOptions(ProviderOptions):
    base_url: HttpUrl
    api_key: str | None = None
    api_key_env: str | None = None
    models: list[str | UpstreamModel] = Field(default_factory=list)
    owned_by: str | None = None
    timeout: float | None = None
    headers: dict[str, str] = Field(default_factory=dict)


class OpenAICompatibleProvider(Provider):
    type = "openai_compatible"
    Options = OpenAICompatibleOptions

    async def load(self) -> Sequence[Model]:
        options = self.options
        assert isinstance(options, OpenAICompatibleOptions)
        key = options.api_key
        if options.api_key_env:
            key = os.environ.get(options.api_key_env)
            if not key:
                raise RuntimeError(f"environment variable {options.api_key_env} is not set")
        headers = dict(options.headers)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        timeout = options.timeout or self.settings.upstream_timeout
        self._client = httpx.AsyncClient(
            base_url=str(options.base_url).rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )
        entries = [UpstreamModel(name=m) if isinstance(m, str) else m for m in options.models]
        if not entries:
            entries = await self._discover()
        owned_by = options.owned_by or self.name
        models: list[Model] = []
        for entry in entries:
            upstream_name = entry.upstream or entry.name
            cls = _MODEL_CLASSES[entry.kind]
            models.append(
                cls(
                    entry.name,
                    upstream_name=upstream_name,
                    client=self._client,
                    owned_by=owned_by,
                    provider=self.name,
                )
            )
        return models

    async def _discover(self) -> list[UpstreamModel]:
        """Ask the upstream which models it has (when the config lists none)."""
        response = await _send(self._client, "GET", "/models")
        data = response.json().get("data", [])
        return [
            UpstreamModel(name=item["id"], kind=_guess_kind(item["id"]))
            for item in data
            if isinstance(item, dict) and isinstance(item.get("id"), str)
        ]

    async def aclose(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None:
            await client.aclose()


def _guess_kind(model_id: str) -> str:
    """A discovered model's kind, from its name (``/models`` does not say)."""
    lowered = model_id.lower()
    if "rerank" in lowered:
        return "rerank"
    return "embedding" if "embed" in lowered else "chat"


async def _send(
    client: httpx.AsyncClient, method: str, path: str, body: Any = None
) -> httpx.Response:
    try:
        response = await client.request(method, path, json=body)
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(
            f"the upstream did not answer in time ({exc.__class__.__name__})", status=504
        ) from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(f"cannot reach the upstream: {exc.__class__.__name__}: {exc}") from exc
    if response.status_code >= 400:
        raise _upstream_failure(response.status_code, response.content, response.headers)
    return response


def _retry_after(headers: httpx.Headers | None) -> float | None:
    """Seconds the upstream asks us to wait: ``retry-after-ms`` (OpenAI's), else
    ``Retry-After`` in seconds or as an HTTP date; None if it says nothing usable."""
    if headers is None:
        return None
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        if value.strip().replace(".", "", 1).isdigit():
            return float(value)
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _upstream_failure(
    status: int, content: bytes, headers: httpx.Headers | None = None
) -> UpstreamError:
    """Relay the upstream's own message; 4xx stay the client's fault, 5xx become 502."""
    message = content.decode("utf-8", "replace")[:2000]
    param = code = None
    try:
        error = json.loads(content).get("error")
        if isinstance(error, dict):
            message = str(error.get("message") or message)
            param, code = error.get("param"), error.get("code")
        elif isinstance(error, str):
            message = error
    except (ValueError, AttributeError):
        pass
    relayed = status if 400 <= status < 500 else 502
    error = UpstreamError(
        f"upstream answered {status}: {message}",
        status=relayed,
        param=param,
        code=None if code is None else str(code),
    )
    retry_after = _retry_after(headers)
    if retry_after is not None:
        error.extra["retry_after"] = retry_after
    return error


def _body(
    request: ChatCompletionRequest | CompletionRequest | EmbeddingRequest, upstream_name: str
) -> dict[str, Any]:
    body = request.model_dump(exclude_unset=True, exclude=_GATEWAY_FIELDS)
    body["model"] = upstream_name
    return body


class _Upstream:
    def __init__(self, upstream_name: str, client: httpx.AsyncClient):
        self.upstream_name = upstream_name
        self._client = client

    async def _probe(self) -> None:
        # The list, not a generation: reachable and the key accepted, at no cost.
        await _send(self._client, "GET", "/models")

    async def _stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[Chunk]:
        body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        try:
            async with self._client.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    raise _upstream_failure(
                        response.status_code, await response.aread(), response.headers
                    )
                finished = False
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    try:
                        chunk = json.loads(data)
                    except ValueError:
                        raise UpstreamError(
                            f"the upstream sent a malformed chunk: {data[:200]}"
                        ) from None
                    if isinstance(chunk, dict) and "error" in chunk:
                        raise _upstream_failure(502, data.encode())
                    for field in ("id", "object", "created", "model"):
                        chunk.pop(field, None)
                    finished = finished or any(
                        choice.get("finish_reason") for choice in chunk.get("choices") or []
                    )
                    yield chunk
                if not finished:
                    # Closed without a finish_reason or [DONE]: the answer is cut short,
                    # and the client must not take it for a complete one.
                    raise UpstreamError("the upstream closed the stream before the answer ended")
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout("the upstream stopped answering in time", status=504) from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(
                f"the upstream connection failed: {exc.__class__.__name__}: {exc}"
            ) from exc

    async def _whole(self, path: str, body: dict[str, Any]) -> Chunk:
        response = await _send(self._client, "POST", path, body)
        try:
            answer: Chunk = response.json()
        except ValueError:
            raise UpstreamError("the upstream answered with something that is not JSON") from None
        for field in ("id", "object", "created", "model"):
            answer.pop(field, None)
        return answer


class UpstreamChatModel(ChatModel, _Upstream):
    supports_tools = True
    supports_completions = True

    def __init__(
        self,
        model_id: str,
        *,
        upstream_name: str,
        client: httpx.AsyncClient,
        owned_by: str,
        provider: str,
    ):
        ChatModel.__init__(self, model_id, owned_by=owned_by, provider=provider)
        _Upstream.__init__(self, upstream_name, client)

    async def probe(self) -> None:
        await self._probe()

    def stream_chat(self, request: ChatCompletionRequest, ctx: CallContext) -> AsyncIterator[Chunk]:
        return self._stream("/chat/completions", _body(request, self.upstream_name))

    async def chat(self, request: ChatCompletionRequest, ctx: CallContext) -> Chunk:
        return await self._whole("/chat/completions", _body(request, self.upstream_name))

    def stream_completion(
        self, request: CompletionRequest, ctx: CallContext
    ) -> AsyncIterator[Chunk]:
        return self._stream("/completions", _body(request, self.upstream_name))

    async def completion(self, request: CompletionRequest, ctx: CallContext) -> Chunk:
        return await self._whole("/completions", _body(request, self.upstream_name))


class UpstreamEmbeddingModel(EmbeddingModel, _Upstream):
    def __init__(
        self,
        model_id: str,
        *,
        upstream_name: str,
        client: httpx.AsyncClient,
        owned_by: str,
        provider: str,
    ):
        EmbeddingModel.__init__(self, model_id, owned_by=owned_by, provider=provider)
        _Upstream.__init__(self, upstream_name, client)

    async def probe(self) -> None:
        await self._probe()

    async def embed(self, request: EmbeddingRequest, texts: list[str]) -> EmbeddingResult:
        body = _body(request, self.upstream_name)
        body["input"] = texts
        body["encoding_format"] = "float"  # the gateway encodes for the client itself
        answer = await self._whole("/embeddings", body)
        try:
            items = sorted(answer["data"], key=lambda item: item["index"])
            vectors = [list(map(float, item["embedding"])) for item in items]
        except (KeyError, TypeError, ValueError):
            raise UpstreamError("the upstream's embedding answer is malformed") from None
        if len(vectors) != len(texts):
            raise UpstreamError(
                f"the upstream returned {len(vectors)} vectors for {len(texts)} inputs"
            )
        usage = answer.get("usage") or {}
        return EmbeddingResult(vectors=vectors, prompt_tokens=int(usage.get("prompt_tokens", 0)))


class UpstreamRerankModel(RerankModel, _Upstream):
    def __init__(
        self,
        model_id: str,
        *,
        upstream_name: str,
        client: httpx.AsyncClient,
        owned_by: str,
        provider: str,
    ):
        RerankModel.__init__(self, model_id, owned_by=owned_by, provider=provider)
        _Upstream.__init__(self, upstream_name, client)

    async def probe(self) -> None:
        await self._probe()

    async def rerank(self, query: str, documents: list[str], ctx: CallContext) -> RerankResult:
        # No top_n: the gateway needs every document's score and truncates itself.
        body = {
            "model": self.upstream_name,
            "query": query,
            "documents": documents,
            "return_documents": False,
        }
        answer = await self._whole("/rerank", body)
        scores: dict[int, float] = {}
        try:
            for item in answer["results"]:
                scores[int(item["index"])] = float(item["relevance_score"])
            usage = answer.get("usage") or {}
            tokens = int(usage.get("total_tokens") or usage.get("prompt_tokens") or 0)
        except (AttributeError, KeyError, TypeError, ValueError):
            raise UpstreamError("the upstream's rerank answer is malformed") from None
        if sorted(scores) != list(range(len(documents))):
            raise UpstreamError(
                f"the upstream's rerank answer scores documents {sorted(scores)[:8]}, "
                f"not each of the {len(documents)} sent"
            )
        return RerankResult(
            scores=[scores[index] for index in range(len(documents))], tokens=tokens
        )


_AnyUpstream = UpstreamChatModel | UpstreamEmbeddingModel | UpstreamRerankModel
_MODEL_CLASSES: dict[str, type[_AnyUpstream]] = {
    "chat": UpstreamChatModel,
    "embedding": UpstreamEmbeddingModel,
    "rerank": UpstreamRerankModel,
}
