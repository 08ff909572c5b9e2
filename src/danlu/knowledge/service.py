"""Knowledge bases as a resource: create, upload or import, ingest in the background, retrieve.

Ingestion of a document is all or nothing: its chunks, parents and vectors are
written in one transaction once every batch has been embedded, so a failure
leaves the document "failed" with a message and no half-indexed chunks.
Embeddings (and QA generation, and reranking) go through the gateway, like
every model call.

Each process keeps a :class:`Snapshot` per base (keyword index, and the vector
matrix when vectors are searched in memory), rebuilt when the base's
``revision`` moves; that one-row read is all a query costs in bookkeeping.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np
from sqlalchemy import delete, select, update

from danlu.builder.tables import App
from danlu.core.accounts import may_see_workspace, my_workspaces
from danlu.core.blobs import BlobStore
from danlu.core.db import Database
from danlu.core.errors import DanluError, InvalidRequest, NotFound
from danlu.core.ids import new_id
from danlu.core.keys import Principal
from danlu.gateway.provider import CallContext
from danlu.gateway.registry import ModelRegistry
from danlu.gateway.schemas import EmbeddingRequest
from danlu.hub.repos import Repos
from danlu.hub.tables import RepoType
from danlu.knowledge import filters as metadata_filters
from danlu.knowledge.chunking import SEPARATORS, chunk_text, parent_child, split_parents
from danlu.knowledge.index import (
    Hit,
    InvertedFileMatrix,
    KeywordIndex,
    VectorMatrix,
    fuse,
    normalise,
    tokens,
    vector_index,
)
from danlu.knowledge.parsing import SUPPORTED, to_text
from danlu.knowledge.qa import generate_pairs
from danlu.knowledge.tables import Chunk, Document, KnowledgeBase, Parent
from danlu.knowledge.vectors import MemoryVectors, PgVectors

log = logging.getLogger(__name__)
EMBED_BATCH = 32
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
CHUNK_MODES = ("general", "parent_child", "qa")
MODES = ("vector", "keyword", "hybrid")


@dataclass(frozen=True)
class Piece:
    """One chunk to index: the text matched, its parent (by position) or its answer."""

    text: str
    parent: int | None = None
    answer: str | None = None


@dataclass
class Snapshot:
    """One base's chunks as this process searches them."""

    revision: int
    chunk_ids: np.ndarray  # row -> chunk id
    document_rows: np.ndarray  # row -> index into documents
    documents: list[str]
    keyword: KeywordIndex
    vectors: VectorMatrix | InvertedFileMatrix | None  # None: searched in PostgreSQL


class KnowledgeBases:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        models: ModelRegistry,
        default_embedding: str,
        *,
        default_chat: str | None = None,
        vectors: MemoryVectors | PgVectors | None = None,
    ):
        self.db = db
        self.blobs = blobs
        self.models = models
        self.default_embedding = default_embedding
        self.default_chat = default_chat
        self.vectors = vectors or MemoryVectors()
        self._snapshots: dict[str, Snapshot] = {}
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
        chunk_mode: str = "general",
        parent_size: int = 1500,
        separators: list[str] | None = None,
        qa_model: str | None = None,
    ) -> KnowledgeBase:
        model = embedding_model or self.default_embedding
        self.models.embedding(model)  # refuses unknown or non-embedding models
        if not name.strip():
            raise InvalidRequest("a knowledge base needs a name", param="name")
        if chunk_mode not in CHUNK_MODES:
            raise InvalidRequest(f"chunk_mode is one of {CHUNK_MODES}", param="chunk_mode")
        try:
            chunk_text("x" * 30, chunk_size, chunk_overlap)
            if chunk_mode == "parent_child":
                split_parents("x", parent_size)
                if chunk_size >= parent_size:
                    raise ValueError("chunk_size (the child size) must be below parent_size")
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="chunk_size") from None
        if separators is not None and (not separators or not all(separators)):
            raise InvalidRequest("separators must be non-empty strings", param="separators")
        if chunk_mode == "qa":
            qa_model = qa_model or self.default_chat
            if not qa_model:
                raise InvalidRequest("QA mode needs a chat model (qa_model)", param="qa_model")
            self.models.chat(qa_model)
        with self.db.write() as session:
            kb = KnowledgeBase(
                id=new_id("kb"),
                workspace_id=principal.workspace_id,
                name=name.strip(),
                description=description,
                embedding_model=model,
                chunk_size=chunk_size,
                chunk_overlap=chunk_overlap,
                chunk_mode=chunk_mode,
                parent_size=parent_size,
                separators=separators,
                qa_model=qa_model if chunk_mode == "qa" else None,
                revision=0,
            )
            session.add(kb)
            return kb

    def get(self, principal: Principal, kb_id: str) -> KnowledgeBase:
        with self.db.read() as session:
            kb = session.get(KnowledgeBase, kb_id)
            member = kb is not None and may_see_workspace(session, principal, kb.workspace_id)
        if kb is None or not member:
            raise NotFound(f"no knowledge base {kb_id!r}", param="kb")
        return kb

    def listing(self, principal: Principal) -> list[KnowledgeBase]:
        with self.db.read() as session:
            return list(
                session.scalars(
                    select(KnowledgeBase)
                    .where(KnowledgeBase.workspace_id.in_(my_workspaces(principal)))
                    .order_by(KnowledgeBase.created_at.desc())
                )
            )

    def delete(self, kb: KnowledgeBase) -> None:
        with self.db.write() as session:
            session.execute(delete(Chunk).where(Chunk.kb_id == kb.id))
            session.execute(delete(Parent).where(Parent.kb_id == kb.id))
            session.execute(delete(Document).where(Document.kb_id == kb.id))
            session.execute(delete(KnowledgeBase).where(KnowledgeBase.id == kb.id))
            self.vectors.drop(session, kb.id)
        self._snapshots.pop(kb.id, None)

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
            session.execute(delete(Parent).where(Parent.document_id == doc_id))
            session.execute(delete(Document).where(Document.id == doc_id))
            self._bump(session, kb.id)

    def set_metadata(self, kb: KnowledgeBase, doc_id: str, meta: dict[str, Any]) -> Document:
        self.document(kb, doc_id)
        with self.db.write() as session:
            doc = session.get(Document, doc_id)
            assert doc is not None
            doc.meta = _checked_metadata(meta)
            return doc

    def chunks(
        self, kb: KnowledgeBase, doc_id: str, *, offset: int = 0, limit: int = 50
    ) -> list[dict[str, Any]]:
        """A document's chunks in order, for previews."""
        self.document(kb, doc_id)
        with self.db.read() as session:
            rows = session.execute(
                select(Chunk, Parent.text)
                .outerjoin(Parent, Parent.id == Chunk.parent_id)
                .where(Chunk.document_id == doc_id)
                .order_by(Chunk.position)
                .offset(offset)
                .limit(limit)
            ).all()
        return [_chunk_json(chunk, parent) for chunk, parent in rows]

    @staticmethod
    def _bump(session: Any, kb_id: str) -> None:
        session.execute(
            update(KnowledgeBase)
            .where(KnowledgeBase.id == kb_id)
            .values(revision=KnowledgeBase.revision + 1)
        )

    # --- ingestion ----------------------------------------------------------------------------

    def add_documents(
        self,
        kb: KnowledgeBase,
        files: list[tuple[str, bytes]],
        meta: dict[str, Any] | None = None,
    ) -> list[Document]:
        """Store the files and queue them; each is ingested in the background."""
        if not files:
            raise InvalidRequest("upload at least one file", param="files")
        meta = _checked_metadata(meta or {})
        docs = []
        for name, data in files:
            if len(data) > MAX_DOCUMENT_BYTES:
                status, error = "failed", f"larger than {MAX_DOCUMENT_BYTES} bytes"
            else:
                status, error = "queued", None
            info = self.blobs.put_bytes(data)
            docs.append(self._new_document(kb, name, info.sha256, info.size, status, error, meta))
        return docs

    def _new_document(
        self,
        kb: KnowledgeBase,
        name: str,
        sha256: str,
        size: int,
        status: str,
        error: str | None,
        meta: dict[str, Any],
        source: str = "upload",
    ) -> Document:
        with self.db.write() as session:
            doc = Document(
                id=new_id("doc"),
                kb_id=kb.id,
                name=name[:512],
                sha256=sha256,
                size=size,
                status=status,
                error=error,
                source=source[:1024],
                meta=dict(meta),
            )
            session.add(doc)
        return doc

    def import_dataset(
        self,
        kb: KnowledgeBase,
        principal: Principal,
        repos: Repos,
        repo_id: str,
        *,
        revision: str | None = None,
        paths: list[str] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> list[Document]:
        """Queue a hub dataset's files as documents, sharing the hub's stored bytes.

        The caller must be able to read the dataset (a private one is a 404 to others).
        Without ``paths``, every file of a supported type is taken except the card.
        """
        repo = repos.find(principal, RepoType.DATASET, repo_id)
        commit = repos.resolve(repo, revision)
        entries = repos.files(commit)
        if paths:
            by_path = {e.path: e for e in entries}
            missing = [p for p in paths if p not in by_path]
            if missing:
                raise NotFound(
                    f"{repo_id}@{revision or 'main'} has no file {missing[0]!r}", param="paths"
                )
            chosen = [by_path[p] for p in paths]
        else:
            chosen = [
                e
                for e in entries
                if PurePosixPath(e.path.lower()).suffix in SUPPORTED
                and PurePosixPath(e.path).name.lower() != "readme.md"
            ]
        if not chosen:
            raise InvalidRequest(
                f"{repo_id} has no file danlu can index ({', '.join(SUPPORTED)})", param="repo"
            )
        meta = _checked_metadata(meta or {})
        docs = []
        for entry in chosen:
            source = f"hub:datasets/{repo.repo_id}@{commit}:{entry.path}"
            too_big = entry.size > MAX_DOCUMENT_BYTES
            docs.append(
                self._new_document(
                    kb,
                    entry.path,
                    entry.sha256,
                    entry.size,
                    "failed" if too_big else "queued",
                    f"larger than {MAX_DOCUMENT_BYTES} bytes" if too_big else None,
                    {"dataset": repo.repo_id, **meta},
                    source,
                )
            )
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

    async def _pieces(
        self, kb: KnowledgeBase, doc: Document, text: str
    ) -> tuple[list[str], list[Piece]]:
        """Parents (parent-child mode) and the pieces to embed, for the base's chunking mode."""
        separators = tuple(kb.separators) if kb.separators else SEPARATORS
        if kb.chunk_mode == "parent_child":
            families = parent_child(
                text, kb.parent_size, kb.chunk_size, kb.chunk_overlap, separators
            )
            parents = [parent for parent, _ in families]
            pieces = [
                Piece(child, parent=i)
                for i, (_, children) in enumerate(families)
                for child in children
            ]
            return parents, pieces
        passages = chunk_text(text, kb.chunk_size, kb.chunk_overlap, separators)
        if kb.chunk_mode != "qa":
            return [], [Piece(p) for p in passages]
        model = self.models.chat(kb.qa_model or self.default_chat or "")
        pieces = []
        for done, passage in enumerate(passages, start=1):
            pairs = await generate_pairs(model, passage, owner=kb.id)
            pieces += [Piece(q, answer=a) for q, a in pairs] or [Piece(passage)]
            # Generation is the slow half of QA ingestion: it owns the first half of progress.
            await asyncio.to_thread(self._set, doc.id, progress=0.5 * done / len(passages))
        return [], pieces

    async def ingest(self, kb: KnowledgeBase, doc_id: str) -> None:
        """Parse, chunk, embed and index one document; all or nothing."""
        doc = await asyncio.to_thread(self.document, kb, doc_id)
        await asyncio.to_thread(self._set, doc_id, status="indexing", progress=0.0, error=None)
        try:
            data = await asyncio.to_thread(self.blobs.read_bytes, doc.sha256)
            text = await asyncio.to_thread(to_text, doc.name, data)
            parents, pieces = await self._pieces(kb, doc, text)
            base = 0.5 if kb.chunk_mode == "qa" else 0.0
            model = self.models.embedding(kb.embedding_model)
            vectors: list[list[float]] = []
            for start in range(0, len(pieces), EMBED_BATCH):
                batch = [p.text for p in pieces[start : start + EMBED_BATCH]]
                request = EmbeddingRequest(
                    model=kb.embedding_model, input=batch, input_type="passage"
                )
                result = await model.embed(request, batch)
                vectors += result.vectors
                progress = base + (1 - base) * len(vectors) / len(pieces)
                await asyncio.to_thread(self._set, doc_id, progress=progress)
            await asyncio.to_thread(self._store, kb, doc_id, parents, pieces, vectors)
        except DanluError as exc:
            await asyncio.to_thread(self._set, doc_id, status="failed", error=exc.message)
        except Exception as exc:
            log.exception("ingesting %s failed", doc_id)
            await asyncio.to_thread(
                self._set, doc_id, status="failed", error=f"{type(exc).__name__}: {exc}"
            )

    def _store(
        self,
        kb: KnowledgeBase,
        doc_id: str,
        parents: list[str],
        pieces: list[Piece],
        vectors: list[list[float]],
    ) -> None:
        matrix = normalise(np.asarray(vectors, dtype="<f4"))
        with self.db.write() as session:
            session.execute(delete(Chunk).where(Chunk.document_id == doc_id))
            session.execute(delete(Parent).where(Parent.document_id == doc_id))
            parent_rows = [
                Parent(kb_id=kb.id, document_id=doc_id, position=i, text=text)
                for i, text in enumerate(parents)
            ]
            session.add_all(parent_rows)
            session.flush()
            chunks = [
                Chunk(
                    kb_id=kb.id,
                    document_id=doc_id,
                    position=i,
                    text=piece.text,
                    parent_id=None if piece.parent is None else parent_rows[piece.parent].id,
                    answer=piece.answer,
                    embedding=matrix[i].tobytes(),
                )
                for i, piece in enumerate(pieces)
            ]
            session.add_all(chunks)
            session.flush()
            self.vectors.write(session, kb.id, [(c.id, doc_id, c.embedding) for c in chunks])
            doc = session.get(Document, doc_id)
            assert doc is not None
            doc.status, doc.progress, doc.chunk_count = "ready", 1.0, len(pieces)
            self._bump(session, kb.id)

    async def wait_idle(self) -> None:
        """Let running ingestions finish (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- retrieval -----------------------------------------------------------------------------

    def _snapshot(self, kb_id: str) -> Snapshot:
        """The base's snapshot, rebuilt only when its revision moved (in any process)."""
        with self.db.read() as session:
            revision = session.scalar(
                select(KnowledgeBase.revision).where(KnowledgeBase.id == kb_id)
            )
            cached = self._snapshots.get(kb_id)
            if cached is not None and cached.revision == revision:
                return cached
            columns = [Chunk.id, Chunk.document_id, Chunk.text, Chunk.answer]
            if self.vectors.in_memory:
                columns.append(Chunk.embedding)
            rows: list[Any] = list(
                session.execute(select(*columns).where(Chunk.kb_id == kb_id).order_by(Chunk.id))
            )
        documents = sorted({row[1] for row in rows})
        where = {doc: i for i, doc in enumerate(documents)}
        matrix = None
        if self.vectors.in_memory:
            matrix = vector_index(
                np.vstack([np.frombuffer(row[4], dtype="<f4") for row in rows])
                if rows
                else np.zeros((0, 1), dtype="<f4")
            )
        snapshot = Snapshot(
            revision=int(revision or 0),
            chunk_ids=np.asarray([row[0] for row in rows], dtype=np.int64),
            document_rows=np.asarray([where[row[1]] for row in rows], dtype=np.int32),
            documents=documents,
            # QA chunks are found by their answers' words too, not only the question's.
            keyword=KeywordIndex(tokens(f"{row[2]}\n{row[3] or ''}") for row in rows),
            vectors=matrix,
        )
        self._snapshots[kb_id] = snapshot
        return snapshot

    def _allowed(self, kb: KnowledgeBase, spec: dict[str, Any]) -> list[str]:
        """The ready documents of a base whose metadata passes the filter."""
        with self.db.read() as session:
            docs = session.execute(
                select(Document.id, Document.name, Document.source, Document.meta).where(
                    Document.kb_id == kb.id
                )
            ).all()
        return [
            doc_id
            for doc_id, name, source, meta in docs
            if metadata_filters.matches(
                spec, {"document_name": name, "source": source, **(meta or {})}
            )
        ]

    async def _rank(
        self,
        kb: KnowledgeBase,
        query: str,
        mode: str,
        pool: int,
        spec: dict[str, Any] | None,
    ) -> list[Hit]:
        snapshot = await asyncio.to_thread(self._snapshot, kb.id)
        allowed: list[str] | None = None
        mask = None
        if spec is not None:
            allowed = await asyncio.to_thread(self._allowed, kb, spec)
            passing = set(allowed)
            rows = [i for i, doc in enumerate(snapshot.documents) if doc in passing]
            mask = np.isin(snapshot.document_rows, np.asarray(rows, dtype=np.int32))

        async def by_vector() -> list[Hit]:
            model = self.models.embedding(kb.embedding_model)
            embedded = await model.embed(
                EmbeddingRequest(model=kb.embedding_model, input=query, input_type="query"),
                [query],
            )
            query_vector = normalise(np.asarray(embedded.vectors[0], dtype="<f4"))
            if snapshot.vectors is not None:
                found = await asyncio.to_thread(snapshot.vectors.search, query_vector, pool, mask)
                pairs = [(int(snapshot.chunk_ids[row]), score) for row, score in found]
            else:
                assert isinstance(self.vectors, PgVectors)
                pairs = await asyncio.to_thread(
                    self.vectors.search, kb.id, query_vector, pool, allowed
                )
            return [Hit(c, s, vector_score=s) for c, s in pairs]

        async def by_keyword() -> list[Hit]:
            found = await asyncio.to_thread(snapshot.keyword.search, tokens(query), pool, mask)
            return [Hit(int(snapshot.chunk_ids[row]), s, keyword_score=s) for row, s in found]

        # Off the event loop, and side by side in hybrid mode: numpy releases the GIL.
        if mode == "vector":
            return await by_vector()
        if mode == "keyword":
            return await by_keyword()
        vector_hits, keyword_hits = await asyncio.gather(by_vector(), by_keyword())
        return fuse(vector_hits, keyword_hits, pool)

    async def search(
        self,
        kbs: list[KnowledgeBase],
        query: str,
        *,
        mode: str = "hybrid",
        top_k: int = 5,
        score_threshold: float | None = None,
        filters: dict[str, Any] | None = None,
        rerank: str | None = None,
        rerank_candidates: int | None = None,
        owner: str = "",
    ) -> list[dict[str, Any]]:
        if not query.strip():
            raise InvalidRequest("the query is empty", param="query")
        if mode not in MODES:
            raise InvalidRequest("mode is vector, keyword or hybrid", param="mode")
        spec = metadata_filters.validate(filters) if filters is not None else None
        reranker = self.models.rerank(rerank) if rerank else None
        pool = max(top_k * 4, 20, rerank_candidates or 0)
        ranked: list[tuple[Hit, KnowledgeBase]] = []
        for kb in kbs:
            ranked += [(hit, kb) for hit in await self._rank(kb, query, mode, pool, spec)]
        ranked.sort(key=lambda item: -item[0].score)
        results = await asyncio.to_thread(self._describe, ranked)
        if reranker is not None:
            results = results[: rerank_candidates or max(top_k * 3, 10)]
            if results:
                scored = await reranker.rerank(
                    query, [r["text"] for r in results], CallContext(owner=owner or "knowledge")
                )
                for result, score in zip(results, scored.scores, strict=True):
                    result["rerank_score"] = float(score)
                    result["score"] = float(score)
                results.sort(key=lambda r: -r["score"])
        if score_threshold is not None:
            results = [r for r in results if r["score"] >= score_threshold]
        return results[:top_k]

    def _describe(self, ranked: list[tuple[Hit, KnowledgeBase]]) -> list[dict[str, Any]]:
        """Hits as results, with their documents and parents; one result per parent."""
        ids = [hit.chunk_id for hit, _ in ranked]
        with self.db.read() as session:
            rows = session.execute(
                select(Chunk, Parent.text, Document.name, Document.meta, Document.source)
                .join(Document, Document.id == Chunk.document_id)
                .outerjoin(Parent, Parent.id == Chunk.parent_id)
                .where(Chunk.id.in_(ids))
            ).all()
        found = {row[0].id: row for row in rows}
        results: list[dict[str, Any]] = []
        seen_parents: set[int] = set()
        for hit, kb in ranked:
            row = found.get(hit.chunk_id)
            if row is None:  # deleted since the snapshot was taken
                continue
            chunk, parent, name, meta, source = row
            if chunk.parent_id is not None:
                if chunk.parent_id in seen_parents:
                    continue
                seen_parents.add(chunk.parent_id)
            results.append(
                {
                    **_chunk_json(chunk, parent),
                    "score": hit.score,
                    "vector_score": hit.vector_score,
                    "keyword_score": hit.keyword_score,
                    "knowledge_base": kb.id,
                    "document_name": name,
                    "source": source,
                    "metadata": meta or {},
                }
            )
        return results

    async def retrieve(
        self,
        owner: str,
        knowledge_bases: list[str],
        query: str,
        *,
        mode: str,
        top_k: int,
        score_threshold: float | None,
        filters: dict[str, Any] | None = None,
        rerank: str | None = None,
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
            kbs,
            query,
            mode=mode,
            top_k=top_k,
            score_threshold=score_threshold,
            filters=filters,
            rerank=rerank,
            owner=owner,
        )


def _chunk_json(chunk: Chunk, parent: str | None) -> dict[str, Any]:
    """What a reader (or an LLM) gets for a chunk: the parent, the QA pair or the passage."""
    result: dict[str, Any] = {
        "id": chunk.id,
        "document": chunk.document_id,
        "position": chunk.position,
        "text": chunk.text,
    }
    if parent is not None:
        result["text"], result["matched_text"] = parent, chunk.text
    if chunk.answer is not None:
        result["question"], result["answer"] = chunk.text, chunk.answer
        result["text"] = f"{chunk.text}\n{chunk.answer}"
    return result


def _checked_metadata(meta: Any) -> dict[str, Any]:
    if not isinstance(meta, dict):
        raise InvalidRequest("metadata must be a JSON object", param="metadata")
    reserved = {"document_name", "source"} & set(meta)
    if reserved:
        raise InvalidRequest(
            f"metadata key {sorted(reserved)[0]!r} is reserved (danlu fills it in)",
            param="metadata",
        )
    for key in meta:
        if not key or key.startswith("$"):
            raise InvalidRequest(f"metadata key {key!r} is not allowed", param="metadata")
    return dict(meta)
