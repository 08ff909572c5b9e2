"""``POST /v1/rerank``: order documents by relevance to a query.

The request and answer follow the shape Jina, Cohere (v2), vLLM, Xinference and
SiliconFlow share, so their clients work against danlu unchanged. OpenAI has
no rerank endpoint; errors still come in OpenAI's shape, like the rest of /v1.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from danlu.api.auth import require
from danlu.api.gateway_calls import Metering, admit
from danlu.api.sse import unless_disconnected
from danlu.api.state import Services, get_services
from danlu.core.keys import Principal, Scope
from danlu.gateway.provider import CallContext

MAX_DOCUMENTS = 1000

router = APIRouter(prefix="/v1", tags=["Rerank"])

Caller = Annotated[Principal, Depends(require(Scope.INFERENCE))]
Svc = Annotated[Services, Depends(get_services)]


class RerankRequest(BaseModel):
    # Strict: a field danlu does not honour (rank_fields, max_tokens_per_doc…) is refused
    # with its name rather than silently ignored.
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    query: str
    # Each document is a string or, as Jina and Cohere also accept, {"text": "..."}.
    documents: list[str]
    top_n: int | None = Field(default=None, ge=1)
    return_documents: bool = True

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the query must not be empty")
        return value

    @field_validator("documents", mode="before")
    @classmethod
    def _document_objects(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value  # the type check below explains
        texts = []
        for position, item in enumerate(value):
            if isinstance(item, dict):
                if set(item) != {"text"} or not isinstance(item["text"], str):
                    raise ValueError(
                        f"documents[{position}] must be a string or an object "
                        '{"text": "..."} with no other fields'
                    )
                item = item["text"]
            texts.append(item)
        return texts

    @field_validator("documents")
    @classmethod
    def _documents(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("send at least one document")
        if len(value) > MAX_DOCUMENTS:
            raise ValueError(
                f"at most {MAX_DOCUMENTS} documents per request ({len(value)} were sent); "
                "split them into batches"
            )
        return value


@router.post("/rerank", summary="Order documents by their relevance to a query")
async def rerank(
    body: RerankRequest, request: Request, caller: Caller, services: Svc, meter: Metering
) -> Any:
    model = services.models.rerank(body.model)
    texts = body.documents
    ctx = CallContext(owner=caller.key_id, principal=caller)
    call = await admit(request, meter, caller, body.model, "rerank", [body.query, *texts], 0)
    call.context = ctx
    try:
        result = await unless_disconnected(request, model.rerank(body.query, texts, ctx))
    except BaseException:
        meter.settle_later(call, "error")
        raise
    call.usage = {"prompt_tokens": result.tokens, "completion_tokens": 0}
    await call.finish()
    if len(result.scores) != len(texts):
        raise RuntimeError(
            f"{model.id!r} returned {len(result.scores)} scores for {len(texts)} documents"
        )
    # Best first; equal scores keep the documents' order.
    ranked = sorted(range(len(texts)), key=lambda index: -result.scores[index])
    if body.top_n is not None:
        ranked = ranked[: body.top_n]
    results: list[dict[str, Any]] = []
    for index in ranked:
        item: dict[str, Any] = {"index": index, "relevance_score": result.scores[index]}
        if body.return_documents:
            item["document"] = {"text": texts[index]}
        results.append(item)
    return {
        "object": "list",
        "model": body.model,
        "results": results,
        "usage": {"prompt_tokens": result.tokens, "total_tokens": result.tokens},
    }
