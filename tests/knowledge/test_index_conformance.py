"""One suite, three stores: SQLite with in-memory vectors, PostgreSQL with in-memory vectors,
and PostgreSQL with pgvector (the scale path). Each must find the same passages, honour
filters, return parents, and forget what was deleted.

The embedding model is the real embedded one (multilingual-e5-small), in process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

from danlu.core.bootstrap import Core, open_core
from danlu.core.keys import Principal
from danlu.core.plugins import plugin_manager
from danlu.core.settings import load_settings
from danlu.gateway.providers.e5 import EMBEDDED_EMBEDDING_MODEL
from danlu.gateway.registry import ModelRegistry
from danlu.knowledge.service import KnowledgeBases
from danlu.knowledge.vectors import open_vector_store
from tests.support.pgvector import pgvector_admin_dsn, scratch_vector_database
from tests.support.postgres import scratch_database

DOCS = {
    "refund.md": "# 退款政策\n\n购买后七天内可以申请退款，请联系客服并提供订单号。\n\n"
    "退款会在三个工作日内原路退回到您的支付账户。",
    "shipping.txt": "Shipping: orders leave our warehouse within 48 hours.\n\n"
    "Tracking numbers are sent by email once the parcel is collected.",
    "points.md": "会员积分可以在商城兑换优惠券，积分永久有效。",
    "security.md": "Passwords are stored hashed with scrypt and never logged.\n\n"
    "Two-factor authentication can be enabled in the account settings.",
}
META = {
    "refund.md": {"lang": "zh", "team": "support", "year": 2024},
    "shipping.txt": {"lang": "en", "team": "logistics", "year": 2023},
    "points.md": {"lang": "zh", "team": "marketing", "year": 2025},
    "security.md": {"lang": "en", "team": "security", "year": 2025},
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelRegistry]:
    settings = load_settings(
        {"DANLU_HOME": str(tmp_path_factory.mktemp("models")), "DANLU_LLAMA_THREADS": "1"}
    )
    models = ModelRegistry.from_plugins(plugin_manager(load_entry_points=False), settings)
    asyncio.run(models.start())
    yield models
    asyncio.run(models.aclose())


@pytest.fixture(scope="module")
def vector_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with pgvector_admin_dsn(tmp_path_factory.mktemp("pgvector")) as dsn:
        yield dsn


@pytest.fixture(params=["sqlite", "postgresql", "pgvector"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'danlu.db'}"
    elif request.param == "postgresql":
        with scratch_database() as url:
            yield url
    else:
        dsn = request.getfixturevalue("vector_server")
        with scratch_vector_database(dsn) as url:
            yield url


@pytest.fixture
def setup(
    store: str, tmp_path: Path, registry: ModelRegistry
) -> Iterator[tuple[KnowledgeBases, Principal, Core]]:
    settings = load_settings({"DANLU_HOME": str(tmp_path), "DANLU_DATABASE_URL": store})
    core = open_core(settings, announce=lambda _: None)
    vectors = open_vector_store(core.db, "auto")
    kbs = KnowledgeBases(core.db, core.blobs, registry, EMBEDDED_EMBEDDING_MODEL, vectors=vectors)
    user = core.accounts.user("admin")
    principal = core.keys.local_principal(user, core.accounts.personal_workspace(user))
    yield kbs, principal, core
    core.close()


async def _ingest(kbs: KnowledgeBases, kb: Any, docs: dict[str, str]) -> list[Any]:
    added = []
    for name, body in docs.items():
        added += kbs.add_documents(kb, [(name, body.encode())], META.get(name, {}))
    for doc in added:
        await kbs.ingest(kb, doc.id)
    return [kbs.document(kb, d.id) for d in added]


def _names(hits: list[dict[str, Any]]) -> list[str]:
    return [h["document_name"] for h in hits]


def test_same_answers_on_every_store(
    setup: tuple[KnowledgeBases, Principal, Core], store: str
) -> None:
    kbs, principal, core = setup
    expect_pgvector = "danlu_vec_" in store
    assert (kbs.vectors.kind == "pgvector") == expect_pgvector

    async def scenario() -> None:
        kb = kbs.create(principal, "conformance", chunk_size=120, chunk_overlap=10)
        docs = await _ingest(kbs, kb, DOCS)
        assert all(d.status == "ready" for d in docs), [(d.name, d.error) for d in docs]

        for mode in ("vector", "keyword", "hybrid"):
            hits = await kbs.search([kb], "退款多久能到账？", mode=mode, top_k=3)
            assert _names(hits)[0] == "refund.md", (mode, hits)
            hits = await kbs.search([kb], "how are passwords stored", mode=mode, top_k=3)
            assert _names(hits)[0] == "security.md", (mode, hits)

        # Vector search is exact (or, with HNSW, agrees with exact on a base this small).
        query = "when will my parcel ship"
        hits = await kbs.search([kb], query, mode="vector", top_k=4)
        embedded = await kbs.models.embedding(EMBEDDED_EMBEDDING_MODEL).embed(
            _request(query), [query]
        )
        q = np.asarray(embedded.vectors[0], dtype="<f4")
        q /= np.linalg.norm(q)
        with core.db.read() as session:
            rows = session.execute(text("SELECT id, embedding FROM kb_chunks")).all()
        exact = sorted(rows, key=lambda r: -float(np.frombuffer(r[1], dtype="<f4") @ q))[:4]
        assert [h["id"] for h in hits] == [r[0] for r in exact]
        assert hits[0]["vector_score"] == pytest.approx(
            float(np.frombuffer(exact[0][1], dtype="<f4") @ q), abs=1e-4
        )

        # Filters narrow every mode.
        for mode in ("vector", "keyword", "hybrid"):
            hits = await kbs.search(
                [kb], "退款", mode=mode, top_k=5, filters={"team": {"$ne": "support"}}
            )
            assert "refund.md" not in _names(hits), mode
            hits = await kbs.search(
                [kb], "account", mode=mode, top_k=5, filters={"year": {"$gte": 2025}, "lang": "en"}
            )
            assert set(_names(hits)) <= {"security.md"}, mode

        # Deleting a document removes its chunks, vectors and keywords.
        refund = next(d for d in docs if d.name == "refund.md")
        kbs.delete_document(kb, refund.id)
        for mode in ("vector", "keyword", "hybrid"):
            hits = await kbs.search([kb], "退款多久能到账？", mode=mode, top_k=5)
            assert "refund.md" not in _names(hits)
        if expect_pgvector:
            with core.db.read() as session:
                left = session.execute(
                    text("SELECT count(*) FROM kb_chunk_vectors WHERE document_id = :d"),
                    {"d": refund.id},
                ).scalar_one()
            assert left == 0

        # Re-indexing keeps the document findable with the same chunks.
        shipping = next(d for d in docs if d.name == "shipping.txt")
        kbs.reindex(kb, shipping.id)
        await kbs.ingest(kb, shipping.id)
        hits = await kbs.search([kb], "tracking number email", mode="hybrid", top_k=2)
        assert _names(hits)[0] == "shipping.txt"

        kbs.delete(kb)
        with core.db.read() as session:
            assert session.execute(text("SELECT count(*) FROM kb_chunks")).scalar_one() == 0

    asyncio.run(scenario())


def test_parent_child_returns_the_parent(setup: tuple[KnowledgeBases, Principal, Core]) -> None:
    kbs, principal, _ = setup

    async def scenario() -> None:
        kb = kbs.create(
            principal,
            "handbook",
            chunk_mode="parent_child",
            chunk_size=40,
            chunk_overlap=0,
            parent_size=400,
        )
        handbook = (
            "年假：入职满一年的员工每年有十五天带薪年假。年假可以分次休完。未休完的年假可顺延到次年三月。\n\n"
            "病假：凭医院证明可休病假，每年前五天全薪。超过五天的部分按百分之八十发放工资。"
        )
        (doc,) = await _ingest(kbs, kb, {"handbook.md": handbook})
        assert doc.status == "ready" and doc.chunk_count > 2
        hits = await kbs.search([kb], "没休完的年假怎么办", mode="hybrid", top_k=3)
        best = hits[0]
        assert best["text"].startswith("年假：") and "顺延" in best["text"]
        assert best["matched_text"] in best["text"] and len(best["matched_text"]) <= 40
        # One result per parent, however many of its children matched.
        parents = [h["text"] for h in hits]
        assert len(parents) == len(set(parents))

    asyncio.run(scenario())


def _request(query: str) -> Any:
    from danlu.gateway.schemas import EmbeddingRequest

    return EmbeddingRequest(model=EMBEDDED_EMBEDDING_MODEL, input=query, input_type="query")
