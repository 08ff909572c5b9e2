"""Parsing, chunking and keyword search, without a server."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from danlu.core.errors import InvalidRequest, Unsupported
from danlu.knowledge import filters
from danlu.knowledge.chunking import chunk_text, parent_child, split_parents
from danlu.knowledge.index import KeywordIndex, tokens
from danlu.knowledge.parsing import to_text
from danlu.knowledge.qa import parse_pairs


def test_parsers() -> None:
    assert to_text("a.html", b"<h1>Title</h1><script>evil()</script><p>Body</p>").split() == [
        "Title",
        "Body",
    ]
    assert to_text("a.csv", "q,a\n怎么退款,七天内\n".encode()) == "q: 怎么退款; a: 七天内"
    assert to_text("a.jsonl", '{"q": "退款"}\n{"q": "x"}\n'.encode()) == "q: 退款\n\nq: x"
    # A row with a text field is that text (with its few other fields as a header).
    assert to_text("a.json", b'[{"title": "T", "text": "Body."}]') == "title: T\nBody."
    assert to_text("a.txt", "中文".encode("gb18030")) == "中文"
    for name, data, error in [
        ("a.epub", b"PK", Unsupported),
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
    index = KeywordIndex(
        [tokens("退款政策：七天内可以申请退款"), tokens("今天天气很好"), tokens("refund policy")]
    )
    assert [row for row, _ in index.search(tokens("怎么退款"), 5)] == [0]
    assert index.search(tokens("没有这个词"), 5) == []


def _bm25_by_hand(docs: list[list[str]], query: list[str], k1: float = 1.5, b: float = 0.75):
    average = sum(map(len, docs)) / len(docs)
    scores = []
    for doc in docs:
        score = 0.0
        for term in set(query):
            df = sum(term in d for d in docs)
            tf = doc.count(term)
            if not tf:
                continue
            idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(doc) / average))
        scores.append(score)
    return scores


def test_keyword_index_is_bm25_and_honours_the_mask() -> None:
    rng = random.Random(7)
    words = [f"w{i}" for i in range(40)]
    docs = [[rng.choice(words) for _ in range(rng.randint(1, 30))] for _ in range(200)]
    index = KeywordIndex(docs)
    for _ in range(20):
        query = [rng.choice(words) for _ in range(3)]
        expected = _bm25_by_hand(docs, query)
        got = index.scores(query)
        assert got is not None
        assert got.tolist() == pytest.approx(expected, rel=1e-4)
        mask = np.array([i % 2 == 0 for i in range(len(docs))])
        hits = index.search(query, 10, mask)
        assert all(row % 2 == 0 for row, _ in hits)
        best_even = sorted(
            (i for i in range(0, 200, 2) if expected[i] > 0), key=lambda i: -expected[i]
        )
        assert [row for row, _ in hits][:3] == best_even[:3]


def test_parent_child_chunks_keep_paragraphs_whole() -> None:
    paragraphs = [f"第{i}段。" + "内容很长的一句话。" * 20 for i in range(6)]
    text = "\n\n".join(paragraphs)
    parents = split_parents(text, 500)
    assert all(len(p) <= 500 for p in parents)
    assert "\n\n".join(parents) == text  # nothing lost, nothing repeated
    families = parent_child(text, 500, 80, 10)
    for parent, children in families:
        assert all(len(c) <= 80 and c in parent for c in children)
    with pytest.raises(ValueError):
        split_parents(text, 10)


def test_question_answer_pairs_are_parsed_leniently() -> None:
    reply = (
        "Sure!\nQ: How long do refunds take?\nA: Three working\ndays.\n\n"
        "问：可以退款吗？\n答：七天内可以。\nQ: dangling"
    )
    assert parse_pairs(reply) == [
        ("How long do refunds take?", "Three working days."),
        ("可以退款吗？", "七天内可以。"),
    ]
    assert parse_pairs("no pairs here") == []


def test_metadata_filters() -> None:
    doc = {"lang": "zh", "year": 2024, "tags": ["faq", "refund"], "team": "support"}
    passing = [
        {"lang": "zh"},
        {"year": {"$gte": 2024, "$lt": 2025}},
        {"tags": "faq"},
        {"tags": {"$contains": "refund"}},
        {"team": {"$in": ["sales", "support"]}},
        {"$or": [{"lang": "en"}, {"year": 2024}]},
        {"$not": {"lang": "en"}},
        {"owner": {"$exists": False}},
        {"lang": {"$ne": "en"}, "missing": {"$nin": [1]}},
    ]
    failing = [
        {"lang": "en"},
        {"year": {"$gt": 2024}},
        {"year": {"$gt": "2024"}},  # a string never compares with a number
        {"tags": {"$contains": "sales"}},
        {"$and": [{"lang": "zh"}, {"team": "sales"}]},
        {"owner": {"$exists": True}},
    ]
    for spec in passing:
        assert filters.matches(filters.validate(spec), doc), spec
    for spec in failing:
        assert not filters.matches(filters.validate(spec), doc), spec
    for bad, says in [
        ([], "must be an object"),
        ({"$nor": []}, "unknown operator"),
        ({"year": {"$gte": [1]}}, "compares with"),
        ({"year": {"$regex": "x"}}, "unknown operator"),
        ({"tags": ["a", "b"]}, "\\$in"),
        ({"$or": []}, "non-empty list"),
    ]:
        with pytest.raises(InvalidRequest, match=says):
            filters.validate(bad)


def _pdf(text: str) -> bytes:
    """A minimal one-page PDF with ``text`` in Helvetica (written by hand: no PDF library)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def test_office_and_pdf_documents() -> None:
    import io

    import docx
    from openpyxl import Workbook
    from pypdf import PdfWriter

    assert "Refunds within seven days" in to_text("policy.pdf", _pdf("Refunds within seven days"))

    document = docx.Document()
    document.add_paragraph("年假十五天")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "病假", "五天"
    buffer = io.BytesIO()
    document.save(buffer)
    text = to_text("handbook.docx", buffer.getvalue())
    assert "年假十五天" in text and "病假; 五天" in text

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "prices"
    sheet.append(["product", "price"])
    sheet.append(["green tea", 30])
    buffer = io.BytesIO()
    book.save(buffer)
    assert to_text("prices.xlsx", buffer.getvalue()) == "[prices] product: green tea; price: 30"

    locked = PdfWriter()
    locked.add_blank_page(width=200, height=200)
    locked.encrypt("secret")
    buffer = io.BytesIO()
    locked.write(buffer)
    with pytest.raises(InvalidRequest, match="encrypted"):
        to_text("locked.pdf", buffer.getvalue())
    for name in ("broken.pdf", "broken.docx", "broken.xlsx"):
        with pytest.raises(InvalidRequest, match=r"could not be read|not a readable PDF"):
            to_text(name, b"%PDF-1.4 this is not really a document")
    blank = PdfWriter()
    blank.add_blank_page(width=200, height=200)
    buffer = io.BytesIO()
    blank.write(buffer)
    with pytest.raises(InvalidRequest, match="OCR"):
        to_text("scan.pdf", buffer.getvalue())


def test_parquet_rows() -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table({"question": ["怎么退款？"], "answer": ["七天内联系客服。"]}), buffer)
    assert (
        to_text("train.parquet", buffer.getvalue())
        == "question: 怎么退款？; answer: 七天内联系客服。"
    )
    with pytest.raises(InvalidRequest, match="could not be read as PARQUET"):
        to_text("broken.parquet", b"PAR1 garbage")


def test_the_inverted_file_finds_what_exact_search_finds() -> None:
    from danlu.knowledge.index import InvertedFileMatrix, VectorMatrix, normalise

    rng = np.random.default_rng(3)
    centres = normalise(rng.standard_normal((50, 32)).astype("<f4"))
    matrix = normalise(
        centres[rng.integers(0, 50, 20_000)]
        + rng.standard_normal((20_000, 32)).astype("<f4") * 0.15
    )
    approximate, exact = InvertedFileMatrix(matrix, lists=64, probes=8), VectorMatrix(matrix)
    recall = []
    for row in rng.integers(0, 20_000, 50):
        query = normalise(matrix[row] + rng.standard_normal(32).astype("<f4") * 0.05)
        got = {r for r, _ in approximate.search(query, 10)}
        recall.append(len(got & {r for r, _ in exact.search(query, 10)}) / 10)
        mask = np.arange(20_000) % 3 == 0
        assert all(r % 3 == 0 for r, _ in approximate.search(query, 10, mask))
    assert np.mean(recall) >= 0.9
