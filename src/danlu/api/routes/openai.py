"""The OpenAI-compatible surface: /v1/models, chat, completions, embeddings."""

from __future__ import annotations

import base64
import time
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from danlu.api.auth import require
from danlu.api.gateway_calls import Metering, admit, answer, overhead_header
from danlu.api.sse import unless_disconnected
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
    body: ChatCompletionRequest,
    request: Request,
    caller: AnyCaller,
    services: Svc,
    meter: Metering,
) -> StreamingResponse | JSONResponse:
    # Published apps (model "app:{slug}") check access themselves: their app keys may call them.
    if not body.model.startswith("app:"):
        caller.require(Scope.INFERENCE)
    model = services.models.chat(body.model)
    _check_capabilities(model, body)
    call = await admit(
        request,
        meter,
        caller,
        body.model,
        "chat",
        [m.model_dump(exclude_none=True) for m in body.messages],
        body.token_limit or model.context_length,
    )
    ctx = CallContext(owner=caller.key_id, principal=caller)
    call.context = ctx
    stamp = Stamp("chat", body.model, include_usage=body.include_usage)
    return await answer(
        request,
        meter,
        call,
        body.stream,
        lambda: model.stream_chat(body, ctx),
        lambda: model.chat(body, ctx),
        stamp,
    )


@router.post("/completions", summary="Legacy text completion, streamed or not", response_model=None)
async def completions(
    body: CompletionRequest, request: Request, caller: Caller, services: Svc, meter: Metering
) -> StreamingResponse | JSONResponse:
    model = services.models.chat(body.model)
    _check_capabilities(model, body)
    call = await admit(request, meter, caller, body.model, "text", body.prompt, body.token_limit)
    ctx = CallContext(owner=caller.key_id)
    call.context = ctx
    stamp = Stamp("text", body.model, include_usage=body.include_usage)
    return await answer(
        request,
        meter,
        call,
        body.stream,
        lambda: model.stream_completion(body, ctx),
        lambda: model.completion(body, ctx),
        stamp,
    )


@router.post("/embeddings", summary="Embed text as float or base64 vectors", response_model=None)
async def embeddings(
    body: EmbeddingRequest, request: Request, caller: Caller, services: Svc, meter: Metering
) -> JSONResponse:
    model = services.models.embedding(body.model)
    try:
        texts = body.texts()
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="input") from None
    call = await admit(request, meter, caller, body.model, "embedding", texts, 0)
    began = time.perf_counter()
    try:
        result = await unless_disconnected(request, model.embed(body, texts))
    except BaseException:
        meter.settle_later(call, "error")
        raise
    model_seconds = time.perf_counter() - began
    call.usage = {"prompt_tokens": result.prompt_tokens, "completion_tokens": 0}
    call.deployment = result.deployment
    await call.finish()
    data = []
    for index, vector in enumerate(result.vectors):
        encoded: list[float] | str = vector
        if body.encoding_format == "base64":
            encoded = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "model": body.model,
            "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
        },
        headers=overhead_header(request, call, model_seconds),
    )
