"""Knowledge bases as a resource: create, upload, ingest in the background, retrieve.

Ingestion of a document is all or nothing: its chunks and embeddings are
written in one transaction once every batch has been embedded, so a failure
leaves the document "failed" with a message and no half-indexed chunks.
Embeddings go through the gateway, like every model call.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select

from danlu.builder.tables import App
from danlu.core.blobs import BlobStore
from danlu.core.db import Database
from danlu.core.errors import DanluError, InvalidRequest, NotFound
from danlu.core.ids import new_id
from danlu.core.keys import Principal
from danlu.core.tables import Membership
from danlu.gateway.registry import ModelRegistry
from danlu.gateway.schemas import EmbeddingRequest
from danlu.knowledge.chunking import chunk_text
from danlu.knowledge.index import BaseIndex, Hit, fuse
from danlu.knowledge.parsing import to_text
from danlu.knowledge.tables import Chunk, Document, KnowledgeBase

log = logging.getLogger(__name__)
EMBED_BATCH = 32
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024


class KnowledgeBases:
    def __init__(
        self, db: Database, blobs: BlobStore, models: ModelRegistry, default_embedding: str
    ):
        self.db = db
        self.blobs = blobs
        self.models = models
        self.default_embedding = default_embedding
        # kb id -> ((chunk count, highest chunk id), index, chunks by id)
        self._indexes: dict[str, tuple[tuple[int, int], BaseIndex, dict[int, Chunk]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # --- resources ------------------------------------------------------------------------

    def create(
        self,
        principal: Principal,
        name: str,
        *,
        description: str = "",
        embedding_model: str | None = None,
        chunk_size: int = 500,
        chunk_overlap: int = 50,
    ) -> KnowledgeBase:
        model = embedding_model or self.default_embedding
        self.models.embedding(model)  # refuses unknown or non-embedding models
        if not name.strip():
            raise InvalidRequest("a knowledge base needs a name", param="name")
        try:
            chunk_text("x" * 30, chunk_size, chunk_overlap)
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="chunk_size") from None
        with self.db.write() as session:
            kb = KnowledgeBase(
                id=new_id("kb"),
                workspace_id=principal.workspace_id,
                name=name.strip(),
                description=description,
                embedding_model=model,
                chunk_size=chunk_size,
                chunk_overlap=chunk_overlap,
            )
            session.add(kb)
            return kb

    def get(self, principal: Principal, kb_id: str) -> KnowledgeBase:
        with self.db.read() as session:
            kb = session.get(KnowledgeBase, kb_id)
            member = kb is not None and (
                principal.is_admin
                or session.get(Membership, (kb.workspace_id, principal.user_id)) is not None
            )
        if kb is None or not member:
            raise NotFound(f"no knowledge base {kb_id!r}", param="kb")
        return kb

    def listing(self, principal: Principal) -> list[KnowledgeBase]:
        with self.db.read() as session:
            mine = select(Membership.workspace_id).where(Membership.user_id == principal.user_id)
            return list(
                session.scalars(
                    select(KnowledgeBase)
                    .where(KnowledgeBase.workspace_id.in_(mine))
                    .order_by(KnowledgeBase.created_at.desc())
                )
            )

    def delete(self, kb: KnowledgeBase) -> None:
        with self.db.write() as session:
            session.execute(delete(Chunk).where(Chunk.kb_id == kb.id))
            session.execute(delete(Document).where(Document.kb_id == kb.id))
            session.execute(delete(KnowledgeBase).where(KnowledgeBase.id == kb.id))
        self._indexes.pop(kb.id, None)

    def documents(self, kb: KnowledgeBase) -> list[Document]:
        with self.db.read() as session:
            return list(
                session.scalars(
                    select(Document).where(Document.kb_id == kb.id).order_by(Document.created_at)
                )
            )

    def document(self, kb: KnowledgeBase, doc_id: str) -> Document:
        with self.db.read() as session:
            doc = session.get(Document, doc_id)
        if doc is None or doc.kb_id != kb.id:
            raise NotFound(f"no document {doc_id!r} in this knowledge base", param="doc")
        return doc

    def delete_document(self, kb: KnowledgeBase, doc_id: str) -> None:
        self.document(kb, doc_id)
        with self.db.write() as session:
            session.execute(delete(Chunk).where(Chunk.document_id == doc_id))
            session.execute(delete(Document).where(Document.id == doc_id))
        self._indexes.pop(kb.id, None)

    # --- ingestion ----------------------------------------------------------------------------

    def add_documents(self, kb: KnowledgeBase, files: list[tuple[str, bytes]]) -> list[Document]:
        """Store the files and queue them; each is ingested in the background."""
        if not files:
            raise InvalidRequest("upload at least one file", param="files")
        docs = []
        for name, data in files:
            if len(data) > MAX_DOCUMENT_BYTES:
                status, error = "failed", f"larger than {MAX_DOCUMENT_BYTES} bytes"
            else:
                status, error = "queued", None
            info = self.blobs.put_bytes(data)
            with self.db.write() as session:
                doc = Document(
                    id=new_id("doc"),
                    kb_id=kb.id,
                    name=name[:512],
                    sha256=info.sha256,
                    size=info.size,
                    status=status,
                    error=error,
                )
                session.add(doc)
            docs.append(doc)
        return docs

    def start_ingestion(self, kb: KnowledgeBase, docs: list[Document]) -> None:
        for doc in docs:
            if doc.status == "queued":
                task = asyncio.get_running_loop().create_task(self.ingest(kb, doc.id))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def reindex(self, kb: KnowledgeBase, doc_id: str) -> Document:
        """Queue a document again (after a settings change, say); old chunks serve until done."""
        doc = self.document(kb, doc_id)
        if doc.status in ("queued", "indexing"):
            raise InvalidRequest(f"{doc.name} is already being indexed", param="doc")
        self._set(doc_id, status="queued", progress=0.0, error=None)
        return self.document(kb, doc_id)

    def _set(self, doc_id: str, **values: Any) -> None:
        with self.db.write() as session:
            doc = session.get(Document, doc_id)
            if doc is not None:
                for key, value in values.items():
                    setattr(doc, key, value)

    async def ingest(self, kb: KnowledgeBase, doc_id: str) -> None:
        """Parse, chunk, embed and index one document; all or nothing."""
        doc = await asyncio.to_thread(self.document, kb, doc_id)
        await asyncio.to_thread(self._set, doc_id, status="indexing", progress=0.0, error=None)
        try:
            data = await asyncio.to_thread(self.blobs.read_bytes, doc.sha256)
            text = to_text(doc.name, data)
            pieces = chunk_text(text, kb.chunk_size, kb.chunk_overlap)
            model = self.models.embedding(kb.embedding_model)
            vectors: list[list[float]] = []
            for start in range(0, len(pieces), EMBED_BATCH):
                batch = pieces[start : start + EMBED_BATCH]
                request = EmbeddingRequest(
                    model=kb.embedding_model, input=batch, input_type="passage"
                )
                result = await model.embed(request, batch)
                vectors += result.vectors
                await asyncio.to_thread(self._set, doc_id, progress=len(vectors) / len(pieces))
            await asyncio.to_thread(self._store, kb, doc_id, pieces, vectors)
        except DanluError as exc:
            await asyncio.to_thread(self._set, doc_id, status="failed", error=exc.message)
        except Exception as exc:
            log.exception("ingesting %s failed", doc_id)
            await asyncio.to_thread(
                self._set, doc_id, status="failed", error=f"{type(exc).__name__}: {exc}"
            )

    def _store(
        self, kb: KnowledgeBase, doc_id: str, pieces: list[str], vectors: list[list[float]]
    ) -> None:
        matrix = np.asarray(vectors, dtype="<f4")
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = matrix / np.where(norms == 0, 1, norms)
        with self.db.write() as session:
            session.execute(delete(Chunk).where(Chunk.document_id == doc_id))
            session.add_all(
                Chunk(
                    kb_id=kb.id,
                    document_id=doc_id,
                    position=i,
                    text=piece,
                    embedding=matrix[i].tobytes(),
                )
                for i, piece in enumerate(pieces)
            )
            doc = session.get(Document, doc_id)
            assert doc is not None
            doc.status, doc.progress, doc.chunk_count = "ready", 1.0, len(pieces)
        self._indexes.pop(kb.id, None)

    async def wait_idle(self) -> None:
        """Let running ingestions finish (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- retrieval -----------------------------------------------------------------------------

    def _index(self, kb: KnowledgeBase) -> tuple[BaseIndex, dict[int, Chunk]]:
        """The base's index, rebuilt only when its chunks changed.

        A cheap aggregate (count and highest id) tells whether another process wrote chunks
        since the index was built; only then are the chunks and their embeddings read.
        """
        with self.db.read() as session:
            count, highest = session.execute(
                select(func.count(Chunk.id), func.max(Chunk.id)).where(Chunk.kb_id == kb.id)
            ).one()
            version = (int(count), int(highest or 0))
            cached = self._indexes.get(kb.id)
            if cached is not None and cached[0] == version:
                return cached[1], cached[2]
            rows = list(
                session.scalars(select(Chunk).where(Chunk.kb_id == kb.id).order_by(Chunk.id))
            )
        vectors = (
            np.vstack([np.frombuffer(r.embedding, dtype="<f4") for r in rows])
            if rows
            else np.zeros((0, 1), dtype="<f4")
        )
        index = BaseIndex([r.id for r in rows], [r.text for r in rows], vectors)
        chunks = {r.id: r for r in rows}
        self._indexes[kb.id] = (version, index, chunks)
        return index, chunks

    async def search(
        self,
        kbs: list[KnowledgeBase],
        query: str,
        *,
        mode: str = "hybrid",
        top_k: int = 5,
        score_threshold: float | None = None,
    ) -> list[dict[str, Any]]:
        if not query.strip():
            raise InvalidRequest("the query is empty", param="query")
        if mode not in ("vector", "keyword", "hybrid"):
            raise InvalidRequest("mode is vector, keyword or hybrid", param="mode")
        results: list[tuple[Hit, Chunk, KnowledgeBase]] = []
        for kb in kbs:
            index, chunks = await asyncio.to_thread(self._index, kb)
            pool = max(top_k * 4, 20)
            vector_hits: list[Hit] = []
            if mode in ("vector", "hybrid"):
                model = self.models.embedding(kb.embedding_model)
                embedded = await model.embed(
                    EmbeddingRequest(model=kb.embedding_model, input=query, input_type="query"),
                    [query],
                )
                vector_hits = index.vector(np.asarray(embedded.vectors[0], dtype="<f4"), pool)
            keyword_hits = index.keyword(query, pool) if mode in ("keyword", "hybrid") else []
            hits = {"vector": vector_hits, "keyword": keyword_hits}.get(mode) or fuse(
                vector_hits, keyword_hits, pool
            )
            results += [(hit, chunks[hit.chunk_id], kb) for hit in hits]
        results.sort(key=lambda item: -item[0].score)
        if score_threshold is not None:
            results = [r for r in results if r[0].score >= score_threshold]
        names = await asyncio.to_thread(
            self._document_names, [c.document_id for _, c, _ in results]
        )
        return [
            {
                "text": chunk.text,
                "score": hit.score,
                "vector_score": hit.vector_score,
                "keyword_score": hit.keyword_score,
                "knowledge_base": kb.id,
                "document": chunk.document_id,
                "document_name": names.get(chunk.document_id),
                "position": chunk.position,
            }
            for hit, chunk, kb in results[:top_k]
        ]

    def _document_names(self, ids: list[str]) -> dict[str, str]:
        with self.db.read() as session:
            return {
                d.id: d.name for d in session.scalars(select(Document).where(Document.id.in_(ids)))
            }

    async def retrieve(
        self,
        owner: str,
        knowledge_bases: list[str],
        query: str,
        *,
        mode: str,
        top_k: int,
        score_threshold: float | None,
    ) -> list[dict[str, Any]]:
        """The builder's Retriever: ``owner`` is the calling app; its workspace's bases only."""

        def scoped() -> list[KnowledgeBase]:
            with self.db.read() as session:
                app = session.get(App, owner)
                found = [session.get(KnowledgeBase, kb_id) for kb_id in knowledge_bases]
            usable = [
                kb
                for kb in found
                if kb is not None and app is not None and kb.workspace_id == app.workspace_id
            ]
            if len(usable) != len(knowledge_bases):
                raise NotFound(
                    "a knowledge base of this app does not exist in its workspace",
                    param="knowledge_bases",
                )
            return usable

        kbs = await asyncio.to_thread(scoped)
        return await self.search(
            kbs, query, mode=mode, top_k=top_k, score_threshold=score_threshold
        )
