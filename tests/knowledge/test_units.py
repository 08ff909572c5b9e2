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
    bm25 = BM25(
        [tokens("退款政策：七天内可以申请退款"), tokens("今天天气很好"), tokens("refund policy")]
    )
    scores = bm25.scores(tokens("怎么退款"))
    assert max(scores, key=lambda i: scores[i]) == 0 and 1 not in scores


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
