"""Knowledge ingestion throughput against the embedding model's own throughput.

What it measures
    The bilingual corpus of bench/data/retrieval (2,400 passages) grouped into 48 Markdown
    documents, each ingested by a knowledge base the way an upload is: read from the blob
    store, parsed, chunked (500 characters, 50 overlap), embedded through the gateway's model
    interface in batches, and written (chunks and vectors) to SQLite in one transaction per
    document, with progress updates on the way.

    The anchor is the embedding model alone on exactly the chunks that ingestion produced,
    in the same batches, measured before and after ingestion in the same process; the
    faster of the two runs is the anchor, so a machine whose load drifts during the run can
    only make the ratio look worse, never better. The ratio says how much of the model's
    speed reaches the user: parsing, chunking, bookkeeping and storage are the overhead.

Goal (knowledge issue): ingestion at least 0.9 of the embedding model's throughput.

Run: ``python bench/knowledge_ingestion.py`` (a few minutes on two cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_info
from danlu.core.bootstrap import open_core
from danlu.core.plugins import plugin_manager
from danlu.core.settings import load_settings
from danlu.gateway.providers.e5 import EMBEDDED_EMBEDDING_MODEL
from danlu.gateway.registry import ModelRegistry
from danlu.gateway.schemas import EmbeddingRequest
from danlu.knowledge.chunking import chunk_text
from danlu.knowledge.parsing import to_text
from danlu.knowledge.service import EMBED_BATCH, KnowledgeBases

DATA = Path(__file__).resolve().parent / "data" / "retrieval" / "passages.jsonl"


def documents(count: int) -> list[tuple[str, bytes]]:
    passages = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    per = -(-len(passages) // count)
    docs = []
    for i in range(count):
        group = passages[i * per : (i + 1) * per]
        body = "\n\n".join(f"## {p['title']}\n\n{p['text']}" for p in group)
        docs.append((f"doc-{i:02d}.md", body.encode()))
    return docs


async def model_alone(registry: ModelRegistry, model: str, chunks: list[str]) -> float:
    embedder = registry.embedding(model)
    began = time.perf_counter()
    for start in range(0, len(chunks), EMBED_BATCH):
        batch = chunks[start : start + EMBED_BATCH]
        await embedder.embed(
            EmbeddingRequest(model=model, input=batch, input_type="passage"), batch
        )
    return len(chunks) / (time.perf_counter() - began)


async def run(model: str, count: int) -> dict[str, float]:
    docs = documents(count)
    with tempfile.TemporaryDirectory() as home:
        settings = load_settings({"DANLU_HOME": home, "DANLU_EMBEDDED_MODELS": "1"})
        registry = ModelRegistry.from_plugins(plugin_manager(load_entry_points=False), settings)
        await registry.start()
        core = open_core(settings, announce=lambda _: None)
        try:
            chunks = [c for name, data in docs for c in chunk_text(to_text(name, data), 500, 50)]
            await model_alone(registry, model, chunks[:64])  # warm-up
            before = await model_alone(registry, model, chunks)
            print(f"model alone: {before:.1f} chunks/s", flush=True)

            kbs = KnowledgeBases(core.db, core.blobs, registry, model)
            user = core.accounts.user("admin")
            principal = core.keys.local_principal(user, core.accounts.personal_workspace(user))
            kb = kbs.create(principal, "bench", chunk_size=500, chunk_overlap=50)
            began = time.perf_counter()
            added = kbs.add_documents(kb, docs)
            kbs.start_ingestion(kb, added)
            await kbs.wait_idle()
            elapsed = time.perf_counter() - began
            ready = kbs.documents(kb)
            assert all(d.status == "ready" for d in ready), [d.error for d in ready]
            indexed = sum(d.chunk_count for d in ready)
            assert indexed == len(chunks), (indexed, len(chunks))
            pipeline = indexed / elapsed
            print(f"ingestion:   {pipeline:.1f} chunks/s ({indexed} chunks)", flush=True)

            after = await model_alone(registry, model, chunks)
            print(f"model alone: {after:.1f} chunks/s", flush=True)
        finally:
            await registry.aclose()
            core.close()
    anchor = max(before, after)
    return {"chunks": indexed, "ingestion": pipeline, "model": anchor, "ratio": pipeline / anchor}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=EMBEDDED_EMBEDDING_MODEL)
    parser.add_argument("--documents", type=int, default=48)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"machine: {machine_info()}")
    figures = asyncio.run(run(args.model, args.documents))
    verdict = "✓" if figures["ratio"] >= 0.9 else "✗"
    print(
        f"\ningestion {figures['ingestion']:.1f} chunks/s vs model {figures['model']:.1f} "
        f"chunks/s: ratio {figures['ratio']:.3f} {verdict} (goal >= 0.9)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
