"""Parsing, chunking and keyword search, without a server."""

from __future__ import annotations

import pytest

from danlu.core.errors import InvalidRequest, Unsupported
from danlu.knowledge.chunking import chunk_text
from danlu.knowledge.index import BM25, tokens
from danlu.knowledge.parsing import to_text


def test_parsers() -> None:
    assert to_text("a.html", b"<h1>Title</h1><script>evil()</script><p>Body</p>").split() == [
        "Title",
        "Body",
    ]
    assert to_text("a.csv", "q,a\n怎么退款,七天内\n".encode()) == "q: 怎么退款; a: 七天内"
    assert "退款" in to_text("a.jsonl", '{"q": "退款"}\n{"q": "x"}\n'.encode())
    assert to_text("a.txt", "中文".encode("gb18030")) == "中文"
    for name, data, error in [
        ("a.pdf", b"%PDF", Unsupported),
        ("a.txt", b"   ", InvalidRequest),
        ("a.txt", b"\x00\x01\x02garbage", InvalidRequest),
        ("a.json", b"{not json", InvalidRequest),
    ]:
        with pytest.raises(error):
            to_text(name, data)


def test_chunks_overlap_and_respect_separators() -> None:
    text = "。".join(f"第{i}句话讲退款政策" for i in range(100)) + "。"
    chunks = chunk_text(text, size=60, overlap=10)
    assert all(len(c) <= 60 for c in chunks)
    assert all(c.endswith("。") for c in chunks[:-1])
    assert "".join(chunks).count("第99句") >= 1
    with pytest.raises(ValueError):
        chunk_text("x", size=10, overlap=20)


def test_chinese_keywords_are_segmented() -> None:
    assert {"申请", "退款"} <= set(tokens("怎么申请退款"))
    bm25 = BM25(
        [tokens("退款政策：七天内可以申请退款"), tokens("今天天气很好"), tokens("refund policy")]
    )
    scores = bm25.scores(tokens("怎么退款"))
    assert max(scores, key=lambda i: scores[i]) == 0 and 1 not in scores
