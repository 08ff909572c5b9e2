"""Fine-tuning jobs over HTTP: create, list, watch (JSON or a live SSE stream), cancel."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from danlu.api.auth import require
from danlu.core.keys import Principal, Scope
from danlu.refinery.job_tables import FineTune, FineTuneEvent
from danlu.refinery.jobs import FineTunes

router = APIRouter(prefix="/v1/fine-tunes", tags=["Refinery"])
Caller = Annotated[Principal, Depends(require(Scope.HUB_WRITE))]
FINISHED = ("succeeded", "failed", "cancelled")


def _jobs(request: Request) -> FineTunes:
    jobs: FineTunes = request.app.state.fine_tunes
    return jobs


Jobs = Annotated[FineTunes, Depends(_jobs)]


def _when(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def job_json(job: FineTune) -> dict[str, Any]:
    return {
        "id": job.id,
        "object": "fine_tune",
        "status": job.status,
        "stage": job.stage,
        "base_model": job.base_model,
        "base_revision": job.base_revision,
        "dataset": job.dataset,
        "dataset_revision": job.dataset_revision,
        "dataset_files": job.dataset_files,
        "method": job.method,
        "hyperparameters": job.hyperparameters,
        "output_repo": job.output_repo,
        "serve": job.serve,
        "served_model": job.served_model,
        "progress": job.progress,
        "split": job.split,
        "metrics": job.metrics,
        "error": job.error,
        "attempts": job.attempts,
        "created_at": _when(job.created_at),
        "started_at": _when(job.started_at),
        "finished_at": _when(job.finished_at),
    }


def event_json(event: FineTuneEvent) -> dict[str, Any]:
    return {"id": event.id, "kind": event.kind, "data": event.data, "at": _when(event.created_at)}


class CreateJob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_model: str = Field(
        default="danlu/smollm2-135m-instruct", description="A hub model repo (GGUF or transformers)"
    )
    dataset: str = Field(description="A hub dataset repo: OpenAI messages, ShareGPT or Alpaca rows")
    dataset_revision: str | None = None
    dataset_files: list[str] | None = None
    method: Literal["lora", "qlora", "full"] = "lora"
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    output_repo: str | None = Field(default=None, description="Where the result goes (ns/name)")
    serve: bool = Field(default=False, description="Serve the refined model when done")


@router.post("", status_code=201, summary="Queue a fine-tuning job")
async def create(body: CreateJob, caller: Caller, jobs: Jobs) -> dict[str, Any]:
    job = await run_in_threadpool(
        lambda: jobs.create(
            caller,
            base_model=body.base_model,
            dataset=body.dataset,
            dataset_revision=body.dataset_revision,
            dataset_files=body.dataset_files,
            method=body.method,
            hyperparameters=body.hyperparameters,
            output_repo=body.output_repo,
            serve=body.serve,
        )
    )
    return job_json(job)


@router.get("", summary="Your workspaces' jobs, newest first")
async def listing(caller: Caller, jobs: Jobs) -> dict[str, Any]:
    found = await run_in_threadpool(jobs.listing, caller)
    return {"object": "list", "data": [job_json(j) for j in found]}


@router.get("/{job_id}", summary="One job: status, progress, split, metrics")
async def one(job_id: str, caller: Caller, jobs: Jobs) -> dict[str, Any]:
    return job_json(await run_in_threadpool(jobs.get, caller, job_id))


@router.post("/{job_id}/cancel", summary="Cancel (a running job stops at its next step)")
async def cancel(job_id: str, caller: Caller, jobs: Jobs) -> dict[str, Any]:
    return job_json(await run_in_threadpool(jobs.cancel, caller, job_id))


@router.get(
    "/{job_id}/events",
    summary="The job's log; stream=true follows it live (SSE)",
    response_model=None,
)
async def events(
    job_id: str,
    request: Request,
    caller: Caller,
    jobs: Jobs,
    after: int = 0,
    stream: bool = False,
) -> dict[str, Any] | StreamingResponse:
    await run_in_threadpool(jobs.get, caller, job_id)
    if not stream:
        found = await run_in_threadpool(jobs.events, job_id, after)
        return {"object": "list", "data": [event_json(e) for e in found]}

    async def follow() -> AsyncIterator[bytes]:
        last = after
        while not await request.is_disconnected():
            found = await run_in_threadpool(jobs.events, job_id, last)
            for event in found:
                last = event.id
                yield f"id: {event.id}\ndata: {json.dumps(event_json(event))}\n\n".encode()
            job = await run_in_threadpool(jobs.load, job_id)
            if job.status in FINISHED and not found:
                yield b"data: [DONE]\n\n"
                return
            await asyncio.sleep(0.5)

    return StreamingResponse(follow(), media_type="text/event-stream")
