"""Knowledge bases over HTTP: create, upload (multipart), watch ingestion, retrieve."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from danlu.api.auth import require
from danlu.core.errors import InvalidRequest
from danlu.core.keys import Principal, Scope
from danlu.knowledge.service import MAX_DOCUMENT_BYTES, KnowledgeBases
from danlu.knowledge.tables import Document, KnowledgeBase

router = APIRouter(prefix="/v1/knowledge-bases", tags=["Knowledge bases"])
Caller = Annotated[Principal, Depends(require(Scope.INFERENCE))]
MAX_FILES = 100


def _kbs(request: Request) -> KnowledgeBases:
    kbs: KnowledgeBases = request.app.state.knowledge
    return kbs


KBs = Annotated[KnowledgeBases, Depends(_kbs)]


def _iso(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


def kb_json(kb: KnowledgeBase) -> dict[str, Any]:
    return {
        "id": kb.id,
        "name": kb.name,
        "description": kb.description,
        "embedding_model": kb.embedding_model,
        "chunk_size": kb.chunk_size,
        "chunk_overlap": kb.chunk_overlap,
        "created_at": _iso(kb.created_at),
    }


def doc_json(doc: Document) -> dict[str, Any]:
    return {
        "id": doc.id,
        "name": doc.name,
        "size": doc.size,
        "status": doc.status,
        "progress": round(doc.progress, 4),
        "error": doc.error,
        "chunks": doc.chunk_count,
        "created_at": _iso(doc.created_at),
    }


class CreateKB(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    description: str = ""
    embedding_model: str | None = None
    chunk_size: int = Field(default=500, ge=20, le=8000)
    chunk_overlap: int = Field(default=50, ge=0, le=4000)


@router.post("", status_code=201, summary="Create a knowledge base")
async def create(body: CreateKB, caller: Caller, kbs: KBs) -> dict[str, Any]:
    kb = await run_in_threadpool(
        kbs.create,
        caller,
        body.name,
        description=body.description,
        embedding_model=body.embedding_model,
        chunk_size=body.chunk_size,
        chunk_overlap=body.chunk_overlap,
    )
    return kb_json(kb)


@router.get("", summary="Knowledge bases you can see")
async def listing(caller: Caller, kbs: KBs) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [kb_json(kb) for kb in await run_in_threadpool(kbs.listing, caller)],
    }


@router.delete("/{kb_id}", summary="Delete a knowledge base with its documents and chunks")
async def remove(kb_id: str, caller: Caller, kbs: KBs) -> Response:
    kb = await run_in_threadpool(kbs.get, caller, kb_id)
    await run_in_threadpool(kbs.delete, kb)
    return Response(status_code=204)


@router.post("/{kb_id}/documents", status_code=202, summary="Upload documents (multipart 'files')")
async def upload(kb_id: str, files: list[UploadFile], caller: Caller, kbs: KBs) -> dict[str, Any]:
    kb = await run_in_threadpool(kbs.get, caller, kb_id)
    if len(files) > MAX_FILES:
        raise InvalidRequest(f"at most {MAX_FILES} files per upload", param="files")
    received = []
    for item in files:
        data = await item.read(MAX_DOCUMENT_BYTES + 1)
        received.append((item.filename or "unnamed.txt", data))
    docs = await run_in_threadpool(kbs.add_documents, kb, received)
    kbs.start_ingestion(kb, docs)
    return {"object": "list", "data": [doc_json(d) for d in docs]}


@router.get("/{kb_id}/documents", summary="Documents with their ingestion status")
async def documents(kb_id: str, caller: Caller, kbs: KBs) -> dict[str, Any]:
    kb = await run_in_threadpool(kbs.get, caller, kb_id)
    return {
        "object": "list",
        "data": [doc_json(d) for d in await run_in_threadpool(kbs.documents, kb)],
    }


@router.get("/{kb_id}/documents/{doc_id}", summary="One document's status and progress")
async def document(kb_id: str, doc_id: str, caller: Caller, kbs: KBs) -> dict[str, Any]:
    kb = await run_in_threadpool(kbs.get, caller, kb_id)
    return doc_json(await run_in_threadpool(kbs.document, kb, doc_id))


@router.post(
    "/{kb_id}/documents/{doc_id}/reindex", status_code=202, summary="Index a document again"
)
async def reindex(kb_id: str, doc_id: str, caller: Caller, kbs: KBs) -> dict[str, Any]:
    kb = await run_in_threadpool(kbs.get, caller, kb_id)
    doc = await run_in_threadpool(kbs.reindex, kb, doc_id)
    kbs.start_ingestion(kb, [doc])
    return doc_json(doc)


@router.delete("/{kb_id}/documents/{doc_id}", summary="Remove a document and its chunks")
async def delete_document(kb_id: str, doc_id: str, caller: Caller, kbs: KBs) -> Response:
    kb = await run_in_threadpool(kbs.get, caller, kb_id)
    await run_in_threadpool(kbs.delete_document, kb, doc_id)
    return Response(status_code=204)


class RetrieveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=10_000)
    mode: Literal["vector", "keyword", "hybrid"] = "hybrid"
    top_k: int = Field(default=5, ge=1, le=100)
    score_threshold: float | None = None


@router.post("/{kb_id}/retrieve", summary="Ranked chunks for a query")
async def retrieve(kb_id: str, body: RetrieveBody, caller: Caller, kbs: KBs) -> dict[str, Any]:
    kb = await run_in_threadpool(kbs.get, caller, kb_id)
    hits = await kbs.search(
        [kb], body.query, mode=body.mode, top_k=body.top_k, score_threshold=body.score_threshold
    )
    return {"object": "list", "data": hits}
