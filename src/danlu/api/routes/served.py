"""Serving hub repos as gateway models: one call and the repo is in /v1/models.

A repo with a GGUF file runs on llama.cpp; one with transformers weights (config.json,
*.safetensors, tokenizer files) on the transformers provider (gateway/hub_models.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from danlu.api.auth import require
from danlu.core.keys import Principal, Scope
from danlu.gateway.hub_models import HubServing, ServedInfo

router = APIRouter(prefix="/v1/served-models", tags=["Hub → gateway"])
Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]


class ServeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repo: str = Field(min_length=3, description="The model repo, owner/name.")
    revision: str | None = Field(default=None, description="Branch, tag or commit (default main).")
    file: str | None = Field(default=None, description="Which .gguf, if the repo holds several.")
    format: Literal["gguf", "transformers"] | None = Field(
        default=None,
        description="How to serve it; by default, what the repo's files say (GGUF or "
        "config.json + *.safetensors + tokenizer).",
    )
    name: str | None = Field(
        default=None, description="Model name to serve it under (default: repo)."
    )


def _serving(request: Request) -> HubServing:
    serving: HubServing = request.app.state.serving
    return serving


def _as_json(info: ServedInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "repo": info.repo,
        "commit": info.commit,
        "format": info.format,
        "file": info.file,
    }


@router.post("", status_code=201, summary="Serve a hub model repo as a chat model")
async def serve(
    body: ServeRequest, principal: Admin, serving: Annotated[HubServing, Depends(_serving)]
) -> dict[str, Any]:
    info, models = await serving.serve(
        principal,
        body.repo,
        revision=body.revision,
        file=body.file,
        name=body.name,
        format=body.format,
    )
    return {**_as_json(info), "models": [m.id for m in models]}


@router.get("", summary="Hub repos served as models")
async def listing(_: Admin, serving: Annotated[HubServing, Depends(_serving)]) -> dict[str, Any]:
    served = await run_in_threadpool(serving.listing)
    return {"object": "list", "data": [_as_json(i) for i in served]}


@router.delete("/{name:path}", summary="Stop serving a hub repo")
async def stop(
    name: str, principal: Admin, serving: Annotated[HubServing, Depends(_serving)]
) -> Response:
    await serving.stop(principal, name)
    return Response(status_code=204)
