"""The OpenAI-compatible surface: /v1/models, chat, completions, embeddings."""

from __future__ import annotations

import base64
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from danlu.api.auth import require
from danlu.api.sse import stream_response, unless_disconnected
from danlu.api.state import Services, get_services
from danlu.core.errors import InvalidRequest, Unsupported
from danlu.core.keys import Principal, Scope
from danlu.gateway.openai_format import Stamp
from danlu.gateway.provider import CallContext, ChatModel, Model
from danlu.gateway.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible gateway"])

Caller = Annotated[Principal, Depends(require(Scope.INFERENCE))]
AnyCaller = Annotated[Principal, Depends(require(None))]
Svc = Annotated[Services, Depends(get_services)]


def _model_object(model: Model, created: int) -> dict[str, Any]:
    return {
        "id": model.id,
        "object": "model",
        "created": created,
        "owned_by": model.owned_by,
        **model.describe(),
    }


@router.get("/models", summary="List the models this server serves")
async def list_models(_: Caller, services: Svc) -> dict[str, Any]:
    created = int(services.started_at)
    models = sorted(services.models.models(), key=lambda m: m.id)
    return {"object": "list", "data": [_model_object(m, created) for m in models]}


@router.get("/models/{model_id:path}", summary="Describe one model")
async def get_model(model_id: str, _: Caller, services: Svc) -> dict[str, Any]:
    return _model_object(services.models.get(model_id), int(services.started_at))


def _check_capabilities(model: ChatModel, body: ChatCompletionRequest | CompletionRequest) -> None:
    if body.stream and not model.can_stream:
        raise Unsupported(f"model {model.id!r} cannot stream; send stream=false", param="stream")
    if isinstance(body, ChatCompletionRequest) and body.tools and not model.supports_tools:
        raise Unsupported(f"model {model.id!r} does not support tools", param="tools")
    if isinstance(body, CompletionRequest) and not model.supports_completions:
        raise Unsupported(
            f"model {model.id!r} does not offer /v1/completions; use /v1/chat/completions",
            param="model",
        )


@router.post("/chat/completions", summary="Chat, streamed or not", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, caller: AnyCaller, services: Svc
) -> StreamingResponse | JSONResponse:
    # Published apps (model "app:{slug}") check access themselves: their app keys may call them.
    if not body.model.startswith("app:"):
        caller.require(Scope.INFERENCE)
    model = services.models.chat(body.model)
    _check_capabilities(model, body)
    ctx = CallContext(owner=caller.key_id, principal=caller)
    stamp = Stamp("chat", body.model, include_usage=body.include_usage)
    if body.stream:
        return await stream_response(request, model.stream_chat(body, ctx), stamp)
    answer = await unless_disconnected(request, model.chat(body, ctx))
    return JSONResponse(stamp.whole(answer))


@router.post("/completions", summary="Legacy text completion, streamed or not", response_model=None)
async def completions(
    body: CompletionRequest, request: Request, caller: Caller, services: Svc
) -> StreamingResponse | JSONResponse:
    model = services.models.chat(body.model)
    _check_capabilities(model, body)
    ctx = CallContext(owner=caller.key_id)
    stamp = Stamp("text", body.model, include_usage=body.include_usage)
    if body.stream:
        return await stream_response(request, model.stream_completion(body, ctx), stamp)
    answer = await unless_disconnected(request, model.completion(body, ctx))
    return JSONResponse(stamp.whole(answer))


@router.post("/embeddings", summary="Embed text as float or base64 vectors")
async def embeddings(
    body: EmbeddingRequest, request: Request, _: Caller, services: Svc
) -> dict[str, Any]:
    model = services.models.embedding(body.model)
    try:
        texts = body.texts()
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="input") from None
    result = await unless_disconnected(request, model.embed(body, texts))
    data = []
    for index, vector in enumerate(result.vectors):
        encoded: list[float] | str = vector
        if body.encoding_format == "base64":
            encoded = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    return {
        "object": "list",
        "data": data,
        "model": body.model,
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
    }
