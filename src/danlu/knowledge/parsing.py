"""Documents to text: plain text, Markdown, HTML, CSV, JSON, JSONL, Parquet, PDF, DOCX, XLSX.

Each parser returns the document's text; a document that cannot be read fails
alone, with a message saying why, and the rest of the batch carries on.
Row-shaped files (CSV, JSON lists, JSONL, Parquet — what hub datasets hold)
become one paragraph per row, so chunking keeps rows whole where it can.
"""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import ClassVar

from danlu.core.errors import InvalidRequest, Unsupported

TEXT_TYPES = (".txt", ".md", ".markdown", ".html", ".htm", ".csv", ".json", ".jsonl")
BINARY_TYPES = (".pdf", ".docx", ".xlsx", ".parquet")
# A row's field that holds its text, when it has one (datasets of passages).
TEXT_FIELDS = ("text", "content", "passage", "document", "body")
SUPPORTED = TEXT_TYPES + BINARY_TYPES


class _TextOf(HTMLParser):
    _SKIP: ClassVar[frozenset[str]] = frozenset({"script", "style", "noscript", "template"})
    _BLOCK: ClassVar[frozenset[str]] = frozenset(
        {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article"}
    )

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _decode(data: bytes, name: str) -> str:
    if b"\x00" in data[:4096]:
        raise InvalidRequest(f"{name} looks binary, not text")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidRequest(f"{name} is neither UTF-8 nor GB18030 text")


def to_text(name: str, data: bytes) -> str:
    suffix = PurePosixPath(name.lower()).suffix
    if suffix not in SUPPORTED:
        raise Unsupported(
            f"{name}: {suffix or 'no extension'} files are not supported yet; "
            f"use one of {', '.join(SUPPORTED)}"
        )
    if not data.strip():
        raise InvalidRequest(f"{name} is empty")
    if suffix in BINARY_TYPES:
        return _clean(_binary_text(name, suffix, data), name)
    text = _decode(data, name)
    if suffix in (".html", ".htm"):
        parser = _TextOf()
        parser.feed(text)
        text = "".join(parser.parts)
    elif suffix == ".csv":
        rows = list(csv.reader(io.StringIO(text)))
        if rows:
            header, body = rows[0], rows[1:] or [rows[0]]
            text = rows_to_text([dict(zip(header, row, strict=False)) for row in body])
    elif suffix in (".json", ".jsonl"):
        try:
            items = (
                [json.loads(line) for line in text.splitlines() if line.strip()]
                if suffix == ".jsonl"
                else json.loads(text)
            )
        except ValueError as exc:
            raise InvalidRequest(f"{name} is not valid JSON: {exc}") from None
        text = rows_to_text(items if isinstance(items, list) else [items])
    return _clean(text, name)


def _row_text(row: object) -> str:
    if isinstance(row, str):
        return row
    if not isinstance(row, dict):
        return json.dumps(row, ensure_ascii=False)
    for field in TEXT_FIELDS:
        if isinstance(row.get(field), str) and len(row) <= 3:
            others = [f"{k}: {v}" for k, v in row.items() if k != field and v not in (None, "")]
            return "\n".join([*others, row[field]])
    return "; ".join(
        f"{k}: {v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}"
        for k, v in row.items()
        if v not in (None, "")
    )


def rows_to_text(rows: list[object]) -> str:
    """One paragraph per row: its text field if it has one, else ``key: value`` pairs."""
    return "\n\n".join(_row_text(row) for row in rows)


def _clean(text: str, name: str) -> str:
    text = "\n".join(line.rstrip() for line in text.splitlines())
    if not text.strip():
        raise InvalidRequest(
            f"{name} holds no text (a scanned PDF needs OCR, which danlu does not do)"
        )
    return text


def _binary_text(name: str, suffix: str, data: bytes) -> str:
    """PDF, DOCX and XLSX through their libraries (imported on first use: they are heavy);
    a damaged or locked file is a clear error."""
    try:
        if suffix == ".pdf":
            from pypdf import PdfReader
            from pypdf.errors import PdfReadError

            try:
                reader = PdfReader(io.BytesIO(data))
                if reader.is_encrypted:
                    raise InvalidRequest(f"{name} is encrypted; upload an unlocked copy")
                return "\n\n".join(page.extract_text() or "" for page in reader.pages)
            except PdfReadError as exc:
                raise InvalidRequest(f"{name} is not a readable PDF: {exc}") from None
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return rows_to_text(pq.read_table(io.BytesIO(data)).to_pylist())
        if suffix == ".docx":
            import docx

            document = docx.Document(io.BytesIO(data))
            parts = [p.text for p in document.paragraphs]
            for table in document.tables:
                parts += ["; ".join(cell.text for cell in row.cells) for row in table.rows]
            return "\n".join(parts)
        from openpyxl import load_workbook

        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        lines = []
        for sheet in book.worksheets:
            rows = [
                [("" if v is None else str(v)) for v in row]
                for row in sheet.iter_rows(values_only=True)
            ]
            if not rows:
                continue
            header, body = rows[0], rows[1:] or [rows[0]]
            lines += [
                f"[{sheet.title}] "
                + "; ".join(f"{h}: {v}" for h, v in zip(header, row, strict=False) if v)
                for row in body
            ]
        return "\n".join(lines)
    except InvalidRequest:
        raise
    except Exception as exc:  # the libraries raise many kinds for damaged files
        raise InvalidRequest(
            f"{name} could not be read as {suffix[1:].upper()}: {type(exc).__name__}: {exc}"
        ) from None
