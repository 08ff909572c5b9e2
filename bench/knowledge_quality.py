"""Retrieval quality on danlu's labeled bilingual set: recall@5 and nDCG@10 per mode.

What it measures
    The passages in ``bench/data/retrieval/passages.jsonl`` (Chinese and English; where they
    come from and under which license: SOURCE.md beside them) are indexed the way a
    knowledge base indexes its chunks: embedded by the embedded model through the gateway's
    model interface (``input_type="passage"``, batches of 32) and segmented by jieba for
    BM25. Each query in ``queries.jsonl`` is then answered by the same search code a
    knowledge base uses (danlu.knowledge.index) in vector, keyword and hybrid mode, and
    scored against its labels:

    - recall@5: the share of a query's relevant passages found in the first five, averaged;
    - nDCG@10: binary-relevance discounted cumulative gain over the first ten, normalised by
      the best possible ordering, averaged.

The issue's bar: hybrid beats both keyword and vector alone.

Run: ``python bench/knowledge_quality.py`` (embedding 2,400 passages takes a few minutes
on two cores; ``--model`` picks another embedding model from the gateway).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_info
from danlu.core.plugins import plugin_manager
from danlu.core.settings import load_settings
from danlu.gateway.providers.e5 import EMBEDDED_EMBEDDING_MODEL
from danlu.gateway.registry import ModelRegistry
from danlu.gateway.schemas import EmbeddingRequest
from danlu.knowledge.index import Hit, KeywordIndex, VectorMatrix, fuse, normalise, tokens

DATA = Path(__file__).resolve().parent / "data" / "retrieval"
POOL = 20  # what the knowledge service fuses for a top_k of 5


def load(name: str) -> list[dict[str, object]]:
    with (DATA / name).open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


async def embed(registry: ModelRegistry, model: str, texts: list[str], kind: str) -> np.ndarray:
    embedder = registry.embedding(model)
    vectors: list[list[float]] = []
    for start in range(0, len(texts), 32):
        batch = texts[start : start + 32]
        request = EmbeddingRequest(model=model, input=batch, input_type=kind)
        vectors += (await embedder.embed(request, batch)).vectors
    return normalise(np.asarray(vectors, dtype="<f4"))


def ndcg(ranked: list[str], relevant: set[str], k: int = 10) -> float:
    gain = sum(1 / math.log2(i + 2) for i, pid in enumerate(ranked[:k]) if pid in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return gain / ideal


async def evaluate(model: str) -> dict[str, dict[str, dict[str, float]]]:
    passages, queries = load("passages.jsonl"), load("queries.jsonl")
    ids = [str(p["id"]) for p in passages]
    with tempfile.TemporaryDirectory() as home:
        settings = load_settings({"DANLU_HOME": home, "DANLU_LLAMA_THREADS": "1"})
        registry = ModelRegistry.from_plugins(plugin_manager(load_entry_points=False), settings)
        await registry.start()
        try:
            began = time.perf_counter()
            # The title is part of the chunk, as a heading is part of a markdown chunk.
            texts = [f"{p['title']}\n{p['text']}" for p in passages]
            matrix = await embed(registry, model, texts, "passage")
            print(f"embedded {len(texts)} passages in {time.perf_counter() - began:.0f} s")
            asked = await embed(registry, model, [str(q["query"]) for q in queries], "query")
        finally:
            await registry.aclose()
    vectors = VectorMatrix(matrix)
    keyword = KeywordIndex(tokens(text) for text in texts)
    scores: dict[str, dict[str, list[float]]] = {}
    for query, query_vector in zip(queries, asked, strict=True):
        vector_hits = [Hit(r, s) for r, s in vectors.search(query_vector, POOL)]
        keyword_hits = [Hit(r, s) for r, s in keyword.search(tokens(str(query["query"])), POOL)]
        rankings = {
            "keyword": keyword_hits,
            "vector": vector_hits,
            "hybrid": fuse(vector_hits, keyword_hits, POOL),
        }
        relevant = set(query["relevant"])  # type: ignore[call-overload]
        for mode, hits in rankings.items():
            ranked = [ids[h.chunk_id] for h in hits]
            for group in ("all", str(query["lang"])):
                bucket = scores.setdefault(group, {}).setdefault(mode, [])
                bucket.append(len(relevant & set(ranked[:5])) / len(relevant))
                scores[group].setdefault(f"{mode}:ndcg", []).append(ndcg(ranked, relevant))
    return {
        group: {
            mode: {
                "recall@5": float(np.mean(values[mode])),
                "nDCG@10": float(np.mean(values[f"{mode}:ndcg"])),
                "queries": len(values[mode]),
            }
            for mode in ("keyword", "vector", "hybrid")
        }
        for group, values in scores.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=EMBEDDED_EMBEDDING_MODEL)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    print(f"machine: {machine_info()}")
    report = asyncio.run(evaluate(args.model))
    for group in ("all", "zh", "en"):
        if group not in report:
            continue
        print(f"\n{group} ({report[group]['hybrid']['queries']} queries)")
        print(f"  {'mode':8s} {'recall@5':>9s} {'nDCG@10':>9s}")
        for mode, figures in report[group].items():
            print(f"  {mode:8s} {figures['recall@5']:9.3f} {figures['nDCG@10']:9.3f}")
    overall = report["all"]
    beats = all(
        overall["hybrid"][metric] > overall[other][metric]
        for metric in ("recall@5", "nDCG@10")
        for other in ("keyword", "vector")
    )
    print(
        f"\nhybrid beats keyword and vector alone on both metrics: {'yes ✓' if beats else 'no ✗'}"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
