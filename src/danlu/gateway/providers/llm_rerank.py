"""A reranker made of a chat model: ask it, document by document, "is this relevant?".

Works offline with the embedded chat model, and with any chat model the gateway
serves. Each document is scored on its own (pointwise): the chat model sees the
query and the passage and answers with one token, at temperature 0. If the chat
model reports ``top_logprobs`` (the embedded llama.cpp models do), the score is
the probability of "yes" among "yes" and "no"; a model that reports none gives
1.0 for an answer of yes and 0.0 otherwise, which ranks coarsely.

The chat model may come from any provider listed before this one; it is looked
up again at each call through the registry, so a reloaded chat model is used.

Documents are scored one after another, each through the chat model's own
admission (the llama.cpp fair scheduler): a long rerank never holds the model
for more than one document while other callers wait.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from danlu.core.errors import DanluError, ModelUnavailable, Unsupported, UpstreamError
from danlu.gateway.provider import (
    CallContext,
    ChatModel,
    Model,
    ModelLookup,
    Provider,
    ProviderOptions,
    RerankModel,
    RerankResult,
)
from danlu.gateway.providers.llama_cpp import EMBEDDED_CHAT_MODEL
from danlu.gateway.schemas import ChatCompletionRequest

EMBEDDED_RERANK_MODEL = "smollm2-rerank"

SYSTEM_PROMPT = (
    "You judge search results. Given a search query and a passage, answer yes if the "
    "passage is relevant to the query, and no if it is not. Answer with one word: yes or no."
)
# The query comes before the passage so that, across one call's documents, the prompt
# shares its longest possible prefix and llama.cpp re-reads only the passage.
USER_PROMPT = "Query: {query}\n\nPassage: {passage}\n\nIs the passage relevant to the query?"
# Worked examples before the real question. They cost nothing after the first document
# (a shared prefix) and matter to small models: on a 16-query set of our own, SmolLM2-135M
# put the relevant passage first for 13 queries without them and for all 16 with these.
EXAMPLES = [
    (
        "best pizza in Naples",
        "Naples is famous for its pizza; Da Michele serves a margherita.",
        "Yes",
    ),
    ("best pizza in Naples", "Photosynthesis turns light into chemical energy in plants.", "No"),
    ("symptoms of flu", "Influenza causes fever, cough, sore throat and muscle aches.", "Yes"),
    ("symptoms of flu", "The train to Berlin leaves at nine.", "No"),
]
TOP_LOGPROBS = 10


class LLMRerankOptions(ProviderOptions):
    model_name: str = EMBEDDED_RERANK_MODEL
    chat_model: str = EMBEDDED_CHAT_MODEL
    owned_by: str = "danlu"
    # Longer queries and passages are cut (by characters) to keep the prompt in the chat
    # model's context; 2,000 characters are about 500 tokens.
    max_query_chars: int = Field(default=1000, ge=1)
    max_document_chars: int = Field(default=2000, ge=1)


class LLMRerankProvider(Provider):
    """Serves one rerank model that scores with a chat model of the same gateway."""

    type = "llm_rerank"
    Options = LLMRerankOptions

    async def load(self) -> Sequence[Model]:
        options = self.options
        assert isinstance(options, LLMRerankOptions)
        if self.registry is None:
            raise RuntimeError("llm_rerank needs the model registry; load it through one")
        try:
            self.registry.chat(options.chat_model)
        except DanluError as exc:
            # Fail now, so /healthz and `danlu doctor` say why, rather than list a
            # reranker whose every call would fail.
            raise RuntimeError(
                f"the chat model {options.chat_model!r} is not served: {exc.message} "
                "(list this provider after the one that serves its chat model)"
            ) from exc
        return [
            LLMRerankModel(
                options.model_name,
                models=self.registry,
                options=options,
                owned_by=options.owned_by,
                provider=self.name,
            )
        ]


class LLMRerankModel(RerankModel):
    def __init__(
        self,
        model_id: str,
        *,
        models: ModelLookup,
        options: LLMRerankOptions,
        owned_by: str,
        provider: str,
    ):
        super().__init__(model_id, owned_by=owned_by, provider=provider)
        self._models = models
        self.chat_model = options.chat_model
        self._max_query = options.max_query_chars
        self._max_document = options.max_document_chars
        # Whether the chat model honours logprobs; learnt from its first refusal.
        self._logprobs = True

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "chat_model": self.chat_model}

    def _chat(self) -> ChatModel:
        try:
            return self._models.chat(self.chat_model)
        except DanluError as exc:
            raise ModelUnavailable(
                f"{self.id!r} scores with the chat model {self.chat_model!r}, which cannot "
                f"serve: {exc.message}"
            ) from exc

    async def rerank(self, query: str, documents: list[str], ctx: CallContext) -> RerankResult:
        chat = self._chat()
        query = query[: self._max_query]
        scores = []
        tokens = 0
        for document in documents:
            score, used = await self._score(chat, query, document[: self._max_document], ctx)
            scores.append(score)
            tokens += used
        return RerankResult(scores=scores, tokens=tokens)

    async def _score(
        self, chat: ChatModel, query: str, passage: str, ctx: CallContext
    ) -> tuple[float, int]:
        body: dict[str, Any] = {
            "model": chat.id,
            "messages": _messages(query, passage),
            "max_tokens": 1,
            "temperature": 0,
        }
        answer: dict[str, Any] | None = None
        if self._logprobs:
            asking = {**body, "logprobs": True, "top_logprobs": TOP_LOGPROBS}
            try:
                answer = await chat.chat(ChatCompletionRequest.model_validate(asking), ctx)
            except (Unsupported, UpstreamError) as exc:
                if exc.param not in ("logprobs", "top_logprobs"):
                    raise
                self._logprobs = False
        if answer is None:
            answer = await chat.chat(ChatCompletionRequest.model_validate(body), ctx)
        usage = answer.get("usage") or {}
        return _score_of(answer), int(usage.get("total_tokens") or 0)


def _messages(query: str, passage: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for example_query, example_passage, reply in EXAMPLES:
        question = USER_PROMPT.format(query=example_query, passage=example_passage)
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": reply}]
    messages.append({"role": "user", "content": USER_PROMPT.format(query=query, passage=passage)})
    return messages


def _score_of(answer: dict[str, Any]) -> float:
    """P(yes) / (P(yes) + P(no)) from the first token's alternatives, else 1.0/0.0 from text."""
    choices = answer.get("choices") or [{}]
    choice = choices[0]
    content = (choice.get("logprobs") or {}).get("content") or []
    if content:
        yes = no = 0.0
        for alternative in content[0].get("top_logprobs") or [content[0]]:
            word = str(alternative.get("token", "")).strip().lower()
            if word in ("yes", "no"):
                probability = math.exp(float(alternative.get("logprob", -math.inf)))
                if word == "yes":
                    yes += probability
                else:
                    no += probability
        if yes + no > 0:
            return yes / (yes + no)
    text = str((choice.get("message") or {}).get("content") or "")
    return 1.0 if text.strip().lower().startswith("yes") else 0.0
