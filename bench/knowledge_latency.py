"""Knowledge retrieval latency at 100k and 1M chunks: vector, keyword and hybrid, p50 and p95.

What it measures
    Retrieval alone, as the issue asks: the query's embedding and tokens are given, and the
    time is the embedded index's own work (danlu.knowledge.index: the vector index a base of
    that size gets — exact up to 200k chunks, an inverted file above, whose recall@10
    against exact search is printed — BM25 over numpy postings, and reciprocal-rank fusion),
    for ``--queries`` queries per size and mode, one request at a time, after a warm-up.
    Hybrid runs the two searches on two threads, as the knowledge service does.

The corpus
    Synthetic, at the scale the goal names, since no labeled corpus of a million chunks
    ships with danlu: 384-dimensional unit vectors (the embedded model's size) drawn around
    2,000 topic centres, so nearest neighbours are meaningful; and token rows of 20-80
    terms drawn from a Zipf-distributed vocabulary of 100,000 terms (like natural text:
    a few very common terms with long postings lists, most terms rare). Queries are a
    perturbed existing vector and 2-6 terms of an existing row.

Goal (knowledge issue): p95 under 50 ms at 100k chunks and under 200 ms at 1M.

Run: ``python bench/knowledge_latency.py`` (about 3 minutes; needs ~6 GB of memory at 1M).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_info, percentiles
from danlu.knowledge.index import (
    Hit,
    InvertedFileMatrix,
    KeywordIndex,
    VectorMatrix,
    fuse,
    normalise,
    vector_index,
)

DIMENSIONS = 384
VOCABULARY = 100_000
GOALS_MS = {100_000: 50.0, 1_000_000: 200.0}


def corpus(
    size: int, rng: np.random.Generator
) -> tuple[VectorMatrix | InvertedFileMatrix, KeywordIndex, np.ndarray, np.ndarray]:
    centres = normalise(rng.standard_normal((2000, DIMENSIONS)).astype("<f4"))
    topic = rng.integers(0, len(centres), size)
    matrix = np.empty((size, DIMENSIONS), dtype="<f4")
    for start in range(0, size, 100_000):  # in slices, to keep temporaries small
        stop = min(start + 100_000, size)
        noise = rng.standard_normal((stop - start, DIMENSIONS)).astype("<f4") * 0.08
        matrix[start:stop] = normalise(centres[topic[start:stop]] + noise)
    lengths = rng.integers(20, 81, size)
    terms = (rng.zipf(1.2, int(lengths.sum())) - 1) % VOCABULARY
    vocabulary = {f"t{i}": i for i in range(VOCABULARY)}
    keyword = KeywordIndex.from_arrays(vocabulary, terms, lengths)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    # What a knowledge base builds for a base this size: exact, or an inverted file.
    index = vector_index(matrix)
    return index, keyword, np.stack([offsets[:-1], offsets[1:]], axis=1), terms


def matrix_row(index: VectorMatrix | InvertedFileMatrix, row: int) -> np.ndarray:
    if isinstance(index, InvertedFileMatrix):
        return index.grouped[int(np.flatnonzero(index.order == row)[0])]
    return index.matrix[row]


def measure(size: int, queries: int, seed: int) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    vectors, keyword, spans, terms = corpus(size, rng)
    print(f"  built {size:,} chunks in {time.perf_counter() - started:.0f} s", flush=True)
    ids = np.arange(size)
    asks = []
    for row in rng.integers(0, size, queries + 20):
        vector = normalise(
            matrix_row(vectors, row) + rng.standard_normal(DIMENSIONS).astype("<f4") * 0.05
        )
        start, stop = spans[row]
        words = [f"t{t}" for t in rng.choice(terms[start:stop], rng.integers(2, 7))]
        asks.append((vector, words))
    top_k, pool = 5, 20
    if isinstance(vectors, InvertedFileMatrix):
        exact = VectorMatrix(vectors.grouped)  # the same rows, in the index's order
        found = [
            len(
                {r for r, _ in vectors.search(v, 10)}
                & {int(vectors.order[r]) for r, _ in exact.search(v, 10)}
            )
            / 10
            for v, _ in asks[20:]
        ]
        print(
            f"  vector index: inverted file ({vectors.lists} lists, {vectors.probes} probed); "
            f"recall@10 against exact search {np.mean(found):.3f}",
            flush=True,
        )
    else:
        print("  vector index: exact", flush=True)

    def vector_hits(vector: np.ndarray) -> list[Hit]:
        return [Hit(int(ids[r]), s, vector_score=s) for r, s in vectors.search(vector, pool)]

    def keyword_hits(words: list[str]) -> list[Hit]:
        return [Hit(int(ids[r]), s, keyword_score=s) for r, s in keyword.search(words, pool)]

    threads = ThreadPoolExecutor(2)

    def hybrid(vector: np.ndarray, words: list[str]) -> list[Hit]:
        # As the knowledge service does: both searches side by side (numpy releases the GIL).
        by_vector = threads.submit(vector_hits, vector)
        by_keyword = threads.submit(keyword_hits, words)
        return fuse(by_vector.result(), by_keyword.result(), top_k)

    modes = {
        "vector": lambda v, w: vector_hits(v)[:top_k],
        "keyword": lambda v, w: keyword_hits(w)[:top_k],
        "hybrid": hybrid,
    }
    results = {}
    for mode, run in modes.items():
        for vector, words in asks[:20]:
            run(vector, words)  # warm-up
        timings = []
        for vector, words in asks[20:]:
            began = time.perf_counter()
            run(vector, words)
            timings.append(time.perf_counter() - began)
        results[mode] = percentiles(timings)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    info = machine_info()
    print(f"machine: {info}")
    report: dict[str, object] = {"machine": info}
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"{size:,} chunks:", flush=True)
        figures = measure(size, args.queries, args.seed)
        goal = GOALS_MS.get(size)
        for mode, (p50, p95) in figures.items():
            verdict = (
                ""
                if goal is None
                else ("  ✓" if p95 < goal else "  ✗") + f" goal p95 < {goal:.0f} ms"
            )
            print(f"  {mode:8s} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms{verdict}")
        report[str(size)] = figures
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
