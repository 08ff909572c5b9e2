"""Knowledge bases over HTTP: create, upload (multipart) or import, watch ingestion, retrieve."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from danlu.api.auth import require
from danlu.api.state import Services
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
        "chunk_mode": kb.chunk_mode,
        "parent_size": kb.parent_size,
        "separators": kb.separators,
        "qa_model": kb.qa_model,
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
        "source": doc.source,
        "metadata": doc.meta or {},
        "created_at": _iso(doc.created_at),
    }


class CreateKB(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    description: str = ""
    embedding_model: str | None = None
    chunk_size: int = Field(default=500, ge=20, le=8000)
    chunk_overlap: int = Field(default=50, ge=0, le=4000)
    chunk_mode: Literal["general", "parent_child", "qa"] = "general"
    parent_size: int = Field(default=1500, ge=100, le=20000)
    separators: list[str] | None = Field(default=None, max_length=32)
    qa_model: str | None = None


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
        chunk_mode=body.chunk_mode,
        parent_size=body.parent_size,
        separators=body.separators,
        qa_model=body.qa_model,
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


def _metadata(raw: str | None) -> dict[str, Any]:
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidRequest("metadata must be a JSON object", param="metadata") from None
    if not isinstance(value, dict):
        raise InvalidRequest("metadata must be a JSON object", param="metadata")
    return value


@router.post("/{kb_id}/documents", status_code=202, summary="Upload documents (multipart 'files')")
async def upload(
    kb_id: str,
    files: list[UploadFile],
    caller: Caller,
    kbs: KBs,
    metadata: Annotated[
        str | None, Form(description="A JSON object of metadata for every file in the upload")
    ] = None,
) -> dict[str, Any]:
    kb = await run_in_threadpool(kbs.get, caller, kb_id)
    if len(files) > MAX_FILES:
        raise InvalidRequest(f"at most {MAX_FILES} files per upload", param="files")
    meta = _metadata(metadata)
    received = []
    for item in files:
        data = await item.read(MAX_DOCUMENT_BYTES + 1)
        received.append((item.filename or "unnamed.txt", data))
    docs = await run_in_threadpool(kbs.add_documents, kb, received, meta)
    kbs.start_ingestion(kb, docs)
    return {"object": "list", "data": [doc_json(d) for d in docs]}


class ImportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    repo: str = Field(min_length=3, max_length=200, description="A hub dataset, 'namespace/name'")
    revision: str | None = None
    paths: list[str] | None = Field(default=None, max_length=MAX_FILES)
    metadata: dict[str, Any] = Field(default_factory=dict)


@router.post("/{kb_id}/documents/import", status_code=202, summary="Import a hub dataset's files")
async def import_dataset(
    kb_id: str, body: ImportBody, caller: Caller, kbs: KBs, request: Request
) -> dict[str, Any]:
    kb = await run_in_threadpool(kbs.get, caller, kb_id)
    services: Services = request.app.state.services
    docs = await run_in_threadpool(
        lambda: kbs.import_dataset(
            kb,
            caller,
            services.repos,
            body.repo,
            revision=body.revision,
            paths=body.paths,
            meta=body.metadata,
        )
    )
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


class DocumentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metadata: dict[str, Any]


@router.patch("/{kb_id}/documents/{doc_id}", summary="Replace a document's metadata")
async def patch_document(
    kb_id: str, doc_id: str, body: DocumentPatch, caller: Caller, kbs: KBs
) -> dict[str, Any]:
    kb = await run_in_threadpool(kbs.get, caller, kb_id)
    return doc_json(await run_in_threadpool(kbs.set_metadata, kb, doc_id, body.metadata))


@router.get("/{kb_id}/documents/{doc_id}/chunks", summary="A document's chunks, in order")
async def chunks(
    kb_id: str,
    doc_id: str,
    caller: Caller,
    kbs: KBs,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    kb = await run_in_threadpool(kbs.get, caller, kb_id)
    rows = await run_in_threadpool(lambda: kbs.chunks(kb, doc_id, offset=offset, limit=limit))
    return {"object": "list", "data": rows}


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
    filters: dict[str, Any] | None = Field(
        default=None, description='Metadata filter, e.g. {"lang": "zh", "year": {"$gte": 2024}}'
    )
    rerank: str | None = Field(default=None, description="A rerank model to reorder the hits")
    rerank_candidates: int | None = Field(default=None, ge=1, le=200)


@router.post("/{kb_id}/retrieve", summary="Ranked chunks for a query")
async def retrieve(kb_id: str, body: RetrieveBody, caller: Caller, kbs: KBs) -> dict[str, Any]:
    kb = await run_in_threadpool(kbs.get, caller, kb_id)
    hits = await kbs.search(
        [kb],
        body.query,
        mode=body.mode,
        top_k=body.top_k,
        score_threshold=body.score_threshold,
        filters=body.filters,
        rerank=body.rerank,
        rerank_candidates=body.rerank_candidates,
        owner=caller.user_id,
    )
    return {"object": "list", "data": hits}
