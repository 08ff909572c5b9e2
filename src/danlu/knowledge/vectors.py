"""Where knowledge-base vectors are searched: in memory (embedded) or in PostgreSQL (pgvector).

The chunk table always keeps each embedding as float32 bytes: that copy is the
source of truth, from which the in-memory matrix is built and from which
pgvector is back-filled when a deployment switches to it.

- :class:`MemoryVectors` (default, no server): each process holds a base's
  matrix and searches it exactly (bench/knowledge_latency.py measures it).
- :class:`PgVectors` (scale path): vectors live in ``kb_chunk_vectors`` beside
  the chunks, in the same transaction, deleted with them by a foreign-key
  cascade; each base has a partial HNSW index over its own rows, cast to its
  model's dimension, so bases with different embedding models share one table.

The pgvector table is created at start-up, not by a migration, because the
extension may be installed after the database was created; see docs/knowledge.md.
"""

from __future__ import annotations

import logging
import re
from typing import ClassVar

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from danlu.core.db import Database
from danlu.core.errors import ConfigError

log = logging.getLogger(__name__)
_SAFE_ID = re.compile(r"^[A-Za-z0-9_]+$")


class MemoryVectors:
    """Vectors searched in each process's memory; nothing to write beyond the chunk rows."""

    kind: ClassVar[str] = "memory"
    in_memory: ClassVar[bool] = True

    def write(self, session: Session, kb_id: str, rows: list[tuple[int, str, bytes]]) -> None:
        """Nothing extra: the chunk rows hold the embeddings."""

    def drop(self, session: Session, kb_id: str) -> None:
        """Nothing extra: the chunk rows hold the embeddings."""


def _literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector.tolist()) + "]"


class PgVectors:
    """Vectors in PostgreSQL with pgvector, searched by a per-base HNSW index."""

    kind: ClassVar[str] = "pgvector"
    in_memory: ClassVar[bool] = False

    def __init__(self, db: Database):
        self.db = db
        self.iterative_scan = False

    @staticmethod
    def available(db: Database) -> bool:
        if db.is_sqlite:
            return False
        with db.engine.connect() as connection:
            return bool(
                connection.execute(
                    text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
                ).first()
            )

    def open(self) -> None:
        """Create the extension and table if needed, and back-fill chunks that lack vectors."""
        with self.db.engine.begin() as connection:
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
            connection.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS kb_chunk_vectors ("
                    " chunk_id integer PRIMARY KEY REFERENCES kb_chunks(id) ON DELETE CASCADE,"
                    " kb_id varchar(32) NOT NULL,"
                    " document_id varchar(32) NOT NULL,"
                    " embedding vector NOT NULL)"
                )
            )
            version = connection.execute(
                text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            ).scalar_one()
        self.iterative_scan = tuple(int(p) for p in version.split(".")[:2]) >= (0, 8)
        self._backfill()

    def _backfill(self) -> None:
        while True:
            with self.db.write() as session:
                missing = session.execute(
                    text(
                        "SELECT c.id, c.kb_id, c.document_id, c.embedding FROM kb_chunks c"
                        " LEFT JOIN kb_chunk_vectors v ON v.chunk_id = c.id"
                        " WHERE v.chunk_id IS NULL ORDER BY c.id LIMIT 2000"
                    )
                ).all()
                if not missing:
                    return
                log.info("pgvector: back-filling %d chunk vectors", len(missing))
                by_kb: dict[str, list[tuple[int, str, bytes]]] = {}
                for chunk_id, kb_id, document_id, blob in missing:
                    by_kb.setdefault(kb_id, []).append((chunk_id, document_id, bytes(blob)))
                for kb_id, rows in by_kb.items():
                    self.write(session, kb_id, rows)

    @staticmethod
    def _index_name(kb_id: str) -> str:
        if not _SAFE_ID.match(kb_id):
            raise ValueError(f"unexpected knowledge base id {kb_id!r}")
        return f"ix_kb_chunk_vectors_{kb_id.lower()}"

    def write(self, session: Session, kb_id: str, rows: list[tuple[int, str, bytes]]) -> None:
        """Insert (chunk id, document id, float32 bytes) rows, inside the caller's transaction."""
        if not rows:
            return
        dimension = len(rows[0][2]) // 4
        session.execute(
            text(
                "INSERT INTO kb_chunk_vectors (chunk_id, kb_id, document_id, embedding)"
                " VALUES (:chunk_id, :kb_id, :document_id, CAST(:embedding AS vector))"
            ),
            [
                {
                    "chunk_id": chunk_id,
                    "kb_id": kb_id,
                    "document_id": document_id,
                    "embedding": _literal(np.frombuffer(blob, dtype="<f4")),
                }
                for chunk_id, document_id, blob in rows
            ],
        )
        # kb ids are generated by danlu and checked by _index_name, so inlining them is safe;
        # the partial index only serves queries whose WHERE repeats its predicate literally.
        session.execute(
            text(
                f'CREATE INDEX IF NOT EXISTS "{self._index_name(kb_id)}" ON kb_chunk_vectors'
                f" USING hnsw ((embedding::vector({dimension})) vector_cosine_ops)"
                f" WHERE kb_id = '{kb_id}'"
            )
        )

    def drop(self, session: Session, kb_id: str) -> None:
        session.execute(text(f'DROP INDEX IF EXISTS "{self._index_name(kb_id)}"'))

    def search(
        self, kb_id: str, query: np.ndarray, top_k: int, documents: list[str] | None
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine) pairs, best first, optionally only within ``documents``."""
        dimension = int(query.shape[0])
        self._index_name(kb_id)  # validates the id before it is inlined
        distance = f"(embedding::vector({dimension}) <=> CAST(:query AS vector({dimension})))"
        where = f"kb_id = '{kb_id}'"
        params: dict[str, object] = {"query": _literal(query), "k": top_k}
        if documents is not None:
            where += " AND document_id = ANY(:documents)"
            params["documents"] = documents
        with self.db.read() as session:
            session.execute(text(f"SET LOCAL hnsw.ef_search = {max(40, min(top_k * 2, 1000))}"))
            if self.iterative_scan:
                # With a filter, keep walking the graph until enough rows pass it.
                session.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
            # Only the validated kb id and the integer dimension are inlined; values are bound.
            sql = (
                f"SELECT chunk_id, 1 - {distance} AS score FROM kb_chunk_vectors"  # noqa: S608
                f" WHERE {where} ORDER BY {distance} LIMIT :k"
            )
            found = session.execute(
                text(sql),
                params,
            ).all()
        ranked = sorted(((int(c), float(s)) for c, s in found), key=lambda pair: -pair[1])
        return ranked


def open_vector_store(db: Database, choice: str) -> MemoryVectors | PgVectors:
    """The store ``DANLU_VECTOR_INDEX`` asks for; ``auto`` prefers pgvector when it exists."""
    if choice not in ("auto", "memory", "pgvector"):
        raise ConfigError("DANLU_VECTOR_INDEX is auto, memory or pgvector")
    if choice == "memory" or (choice == "auto" and not PgVectors.available(db)):
        return MemoryVectors()
    if not PgVectors.available(db):
        raise ConfigError(
            "DANLU_VECTOR_INDEX=pgvector needs PostgreSQL with the pgvector extension "
            "installed (e.g. the postgresql-NN-pgvector package); use memory, or auto"
        )
    store = PgVectors(db)
    store.open()
    return store
