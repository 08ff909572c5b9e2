"""Search structures over one knowledge base's chunks: BM25 keywords, exact vectors, fusion.

Both work on *rows* (a chunk's place in the base's arrays) and take an optional
boolean row mask, which is how metadata filters reach them.

- Keywords: BM25 over jieba's search segmentation, so Chinese words inside a
  sentence ("退款" in "怎么申请退款") are found. Postings are numpy arrays with
  each term's weight precomputed, so a query is a ``bincount`` over the
  postings of its terms, not a Python loop over documents.
- Vectors: the normalised float32 matrix in memory, searched exactly by one
  matrix-vector product (measured in bench/knowledge_latency.py).
- Hybrid: reciprocal rank fusion of the two rankings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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


def top_rows(
    scores: np.ndarray, top_k: int, mask: np.ndarray | None = None
) -> list[tuple[int, float]]:
    """The ``top_k`` best rows by score, best first, among those the mask allows."""
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    count = min(top_k, len(scores))
    if count <= 0:
        return []
    best = np.argpartition(scores, len(scores) - count)[-count:]
    best = best[np.argsort(-scores[best], kind="stable")]
    return [(int(row), float(scores[row])) for row in best if np.isfinite(scores[row])]


class KeywordIndex:
    """BM25 (k1=1.5, b=0.75) over token lists."""

    def __init__(self, documents: Iterable[list[str]], k1: float = 1.5, b: float = 0.75):
        vocabulary: dict[str, int] = {}
        term_ids: list[int] = []
        lengths: list[int] = []
        for words in documents:
            term_ids += [vocabulary.setdefault(w, len(vocabulary)) for w in words]
            lengths.append(len(words))
        self._build(
            vocabulary,
            np.asarray(term_ids, dtype=np.int64),
            np.asarray(lengths, dtype=np.int64),
            k1,
            b,
        )

    @classmethod
    def from_arrays(
        cls, vocabulary: dict[str, int], terms: np.ndarray, lengths: np.ndarray
    ) -> KeywordIndex:
        """Build from term ids laid end to end and each row's length (benchmarks, imports)."""
        index = cls.__new__(cls)
        index._build(vocabulary, terms.astype(np.int64), lengths.astype(np.int64), 1.5, 0.75)
        return index

    def _build(
        self,
        vocabulary: dict[str, int],
        terms: np.ndarray,
        length: np.ndarray,
        k1: float,
        b: float,
    ) -> None:
        self.vocabulary = vocabulary
        self.size = len(length)
        rows = np.repeat(np.arange(self.size, dtype=np.int64), length)
        # One (term, row) pair per distinct occurrence, sorted by term: postings lists.
        pairs, frequency = np.unique(terms * max(self.size, 1) + rows, return_counts=True)
        post_terms, post_rows = np.divmod(pairs, max(self.size, 1))
        average = float(length.mean()) if self.size else 0.0
        norm = k1 * (1 - b + b * length[post_rows] / (average or 1.0))
        df = np.bincount(post_terms, minlength=len(vocabulary))
        idf = np.log(1 + (self.size - df + 0.5) / (df + 0.5))
        self.rows = post_rows.astype(np.int32)
        self.weights = (idf[post_terms] * frequency * (k1 + 1) / (frequency + norm)).astype(
            np.float32
        )
        self.offsets = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)

    def scores(self, query: list[str]) -> np.ndarray | None:
        """BM25 score of every row (zero where no term matches); None if no term is known."""
        ids = {self.vocabulary[w] for w in query if w in self.vocabulary}
        if not ids:
            return None
        spans = [slice(self.offsets[i], self.offsets[i + 1]) for i in ids]
        rows = np.concatenate([self.rows[s] for s in spans])
        weights = np.concatenate([self.weights[s] for s in spans])
        return np.bincount(rows, weights=weights, minlength=self.size)

    def search(
        self, query: list[str], top_k: int, mask: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        scores = self.scores(query)
        if scores is None:
            return []
        matched = scores > 0 if mask is None else (scores > 0) & mask
        return top_rows(scores, top_k, matched)


class VectorMatrix:
    """Exact cosine search over normalised float32 rows."""

    def __init__(self, matrix: np.ndarray):
        self.matrix = matrix

    def search(
        self, query: np.ndarray, top_k: int, mask: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        if not len(self.matrix):
            return []
        return top_rows(self.matrix @ query, top_k, mask)


# Above this many chunks in one base, exact search (memory-bound: 1.5 GB read per query at
# 1M chunks of 384 floats) gives way to an inverted-file index over the same vectors.
EXACT_LIMIT = 200_000


class InvertedFileMatrix:
    """Approximate cosine search for big bases: rows grouped under k-means centroids.

    A query scores the centroids, then exactly scores the rows of the ``probes`` nearest
    lists (a few percent of the base), so its cost no longer grows with the whole base.
    Centroids are trained on a sample (spherical k-means, a few rounds); recall against
    exact search is measured in bench/knowledge_latency.py.
    """

    def __init__(
        self,
        matrix: np.ndarray,
        *,
        lists: int | None = None,
        probes: int | None = None,
        seed: int = 0,
        rounds: int = 6,
    ):
        count = len(matrix)
        self.lists = lists or max(16, int(np.sqrt(count)))
        self.probes = probes or max(8, self.lists // 10)
        rng = np.random.default_rng(seed)
        sample = matrix[rng.choice(count, size=min(count, self.lists * 40), replace=False)]
        centroids = sample[rng.choice(len(sample), size=self.lists, replace=False)].copy()
        for _ in range(rounds):
            owner = np.argmax(sample @ centroids.T, axis=1)
            sums = np.zeros_like(centroids)
            np.add.at(sums, owner, sample)
            empty = np.bincount(owner, minlength=self.lists) == 0
            sums[empty] = centroids[empty]  # an empty list keeps its centroid
            centroids = normalise(sums)
        self.centroids = centroids
        owner = np.empty(count, dtype=np.int32)
        for start in range(0, count, 65_536):  # in blocks: a full score matrix would not fit
            owner[start : start + 65_536] = np.argmax(
                matrix[start : start + 65_536] @ centroids.T, axis=1
            )
        # Rows are kept grouped by list, so a probed list is a contiguous slice (a view: no
        # copying per query); ``order`` maps a grouped position back to the base's row.
        self.order = np.argsort(owner, kind="stable").astype(np.int64)
        self.grouped = matrix[self.order]
        self.offsets = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=self.lists))])

    def search(
        self, query: np.ndarray, top_k: int, mask: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        if not len(self.grouped):
            return []
        probes = self.probes if mask is None else min(self.lists, self.probes * 4)
        nearest = np.sort(np.argpartition(-(self.centroids @ query), probes - 1)[:probes])
        spans = [(int(self.offsets[c]), int(self.offsets[c + 1])) for c in nearest]
        scores = np.concatenate([self.grouped[a:b] @ query for a, b in spans])
        positions = np.concatenate([np.arange(a, b) for a, b in spans])
        allowed = None if mask is None else mask[self.order[positions]]
        found = top_rows(scores, top_k, allowed)
        return [(int(self.order[positions[i]]), score) for i, score in found]


def vector_index(matrix: np.ndarray) -> VectorMatrix | InvertedFileMatrix:
    """Exact search for bases up to EXACT_LIMIT chunks, an inverted file above."""
    if len(matrix) > EXACT_LIMIT:
        return InvertedFileMatrix(matrix)
    return VectorMatrix(matrix)


def normalise(vectors: np.ndarray) -> np.ndarray:
    matrix = np.asarray(vectors, dtype="<f4")
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


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
