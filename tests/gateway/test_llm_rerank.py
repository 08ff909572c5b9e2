"""llm_rerank over a chat model that reports no logprobs, as a third-party plugin's may."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from danlu.core.errors import ModelUnavailable, Unsupported
from danlu.core.settings import load_settings
from danlu.gateway.provider import (
    CallContext,
    ChatModel,
    Chunk,
    Model,
    Provider,
    ProviderOptions,
)
from danlu.gateway.providers.llm_rerank import LLMRerankProvider
from danlu.gateway.registry import ModelRegistry, ProviderConfig
from danlu.gateway.schemas import ChatCompletionRequest


class KeywordJudge(ChatModel):
    """Says "Yes" when the last passage mentions "bread"; refuses logprobs like many models."""

    def __init__(self, model_id: str) -> None:
        super().__init__(model_id, owned_by="plugin", provider="judge")
        self.requests: list[ChatCompletionRequest] = []

    async def stream_chat(
        self, request: ChatCompletionRequest, ctx: CallContext
    ) -> AsyncIterator[Chunk]:
        self.requests.append(request)
        if request.logprobs:
            raise Unsupported("no logprobs here", param="logprobs")
        passage = request.messages[-1].text().split("Passage:")[1]
        word = "Yes" if "bread" in passage else "No"
        yield {"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": "stop"}]}
        yield {
            "choices": [],
            "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
        }


class JudgeProvider(Provider):
    type = "judge"
    Options = ProviderOptions

    async def load(self) -> Sequence[Model]:
        self.model = KeywordJudge("judge")
        return [self.model]


def _registry(tmp_path: Path, *configs: ProviderConfig) -> ModelRegistry:
    settings = load_settings({"DANLU_HOME": str(tmp_path), "DANLU_EMBEDDED_MODELS": "0"})
    types: dict[str, type[Provider]] = {"judge": JudgeProvider, "llm_rerank": LLMRerankProvider}
    return ModelRegistry(types, configs, settings)


def test_without_logprobs_the_answer_text_scores(tmp_path: Path) -> None:
    registry = _registry(
        tmp_path,
        ProviderConfig(name="judge", type="judge"),
        ProviderConfig(
            name="rr", type="llm_rerank", options={"model_name": "rr", "chat_model": "judge"}
        ),
    )

    async def run() -> None:
        await registry.start()
        reranker = registry.rerank("rr")
        documents = ["Football rules.", "Fresh bread every morning.", "Tax forms."]
        result = await reranker.rerank("bakery", documents, CallContext(owner="t"))
        assert result.scores == [0.0, 1.0, 0.0]
        assert result.tokens == 30
        # Asked once with logprobs, refused, then never again.
        judge = registry.chat("judge")
        assert isinstance(judge, KeywordJudge)
        asked = [bool(r.logprobs) for r in judge.requests]
        assert asked == [True, False, False, False]
        assert all(r.max_tokens == 1 and r.temperature == 0 for r in judge.requests)
        await registry.aclose()

    asyncio.run(run())


def test_a_missing_chat_model_fails_the_provider_and_says_why(tmp_path: Path) -> None:
    registry = _registry(
        tmp_path,
        ProviderConfig(name="rr", type="llm_rerank", options={"chat_model": "absent"}),
    )
    asyncio.run(registry.start())
    (status,) = registry.statuses
    assert status.state == "failed"
    assert status.reason is not None and "'absent' is not served" in status.reason


def test_a_chat_model_gone_later_makes_calls_unavailable(tmp_path: Path) -> None:
    registry = _registry(
        tmp_path,
        ProviderConfig(name="judge", type="judge"),
        ProviderConfig(name="rr", type="llm_rerank", options={"chat_model": "judge"}),
    )

    async def run() -> None:
        await registry.start()
        await registry.remove("judge")
        with pytest.raises(ModelUnavailable, match="chat model 'judge'"):
            await registry.rerank("smollm2-rerank").rerank("q", ["d"], CallContext(owner="t"))

    asyncio.run(run())
