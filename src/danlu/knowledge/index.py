"""Retrieval over one knowledge base: vectors (cosine), keywords (BM25) and their fusion.

The embedded default keeps each base's chunk matrix in memory and searches it
by brute force with numpy (measured in ENVIRONMENT.md: ~25 ms per query at
100k chunks on two cores). Keywords use BM25 over jieba's search segmentation,
so Chinese words inside a sentence ("退款" in "怎么申请退款") are found.
Hybrid mode fuses the two rankings with reciprocal rank fusion.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"\w", re.UNICODE)
RRF_K = 60


def tokens(text: str) -> list[str]:
    import jieba  # imported on first use: it builds its dictionary when first loaded

    return [t.lower() for t in jieba.cut_for_search(text) if _WORD.search(t)]


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    score: float
    vector_score: float | None = None
    keyword_score: float | None = None


class BM25:
    def __init__(self, documents: list[list[str]], k1: float = 1.5, b: float = 0.75):
        self.k1, self.b = k1, b
        self.frequencies = [Counter(doc) for doc in documents]
        self.lengths = np.array([len(doc) for doc in documents], dtype=np.float32)
        self.average = float(self.lengths.mean()) if documents else 0.0
        postings: dict[str, list[int]] = {}
        for index, counts in enumerate(self.frequencies):
            for term in counts:
                postings.setdefault(term, []).append(index)
        self.postings = postings
        total = len(documents)
        self.idf = {
            term: math.log(1 + (total - len(ids) + 0.5) / (len(ids) + 0.5))
            for term, ids in postings.items()
        }

    def scores(self, query: list[str]) -> dict[int, float]:
        result: dict[int, float] = {}
        for term in set(query):
            for index in self.postings.get(term, []):
                frequency = self.frequencies[index][term]
                norm = self.k1 * (1 - self.b + self.b * self.lengths[index] / (self.average or 1))
                result[index] = result.get(index, 0.0) + self.idf[term] * frequency * (
                    self.k1 + 1
                ) / (frequency + norm)
        return result


class BaseIndex:
    """One knowledge base's chunks, searchable three ways."""

    def __init__(self, chunk_ids: list[int], texts: list[str], vectors: np.ndarray):
        self.chunk_ids = chunk_ids
        self.vectors = vectors
        self.bm25 = BM25([tokens(text) for text in texts])

    def vector(self, query_vector: np.ndarray, top_k: int) -> list[Hit]:
        if not self.chunk_ids:
            return []
        scores = self.vectors @ query_vector
        order = np.argsort(-scores)[:top_k]
        return [
            Hit(self.chunk_ids[i], float(scores[i]), vector_score=float(scores[i])) for i in order
        ]

    def keyword(self, query: str, top_k: int) -> list[Hit]:
        scores = self.bm25.scores(tokens(query))
        ranked = sorted(scores.items(), key=lambda item: -item[1])[:top_k]
        return [Hit(self.chunk_ids[i], float(s), keyword_score=float(s)) for i, s in ranked]


def fuse(vector: list[Hit], keyword: list[Hit], top_k: int) -> list[Hit]:
    """Reciprocal rank fusion: rank-based, so cosine and BM25 scales need no tuning."""
    scores: dict[int, float] = {}
    by_vector = {h.chunk_id: h.score for h in vector}
    by_keyword = {h.chunk_id: h.score for h in keyword}
    for ranking in (vector, keyword):
        for rank, hit in enumerate(ranking, start=1):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + 1 / (RRF_K + rank)
    ranked = sorted(scores.items(), key=lambda item: -item[1])[:top_k]
    return [
        Hit(chunk_id, score, by_vector.get(chunk_id), by_keyword.get(chunk_id))
        for chunk_id, score in ranked
    ]
