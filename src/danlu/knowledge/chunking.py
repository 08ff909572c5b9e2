"""Splitting text into overlapping chunks, at the best separator that fits."""

from __future__ import annotations

SEPARATORS = ("\n\n", "\n", "。", "！", "？", ". ", "! ", "? ", "；", "; ", "，", ", ", " ")


def chunk_text(
    text: str, size: int = 500, overlap: int = 50, separators: tuple[str, ...] = SEPARATORS
) -> list[str]:
    """Chunks of at most ``size`` characters, each starting ``overlap`` characters back."""
    if size < 20 or not 0 <= overlap < size:
        raise ValueError("chunk size must be >= 20 and overlap between 0 and size")
    text = text.strip()
    chunks: list[str] = []
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            window = text[start:end]
            for separator in separators:
                cut = window.rfind(separator)
                if cut > size // 3:
                    end = start + cut + len(separator)
                    break
        piece = text[start:end].strip()
        if piece:
            chunks.append(piece)
        if end >= len(text):
            break
        start = max(end - overlap, start + 1)
    return chunks


def split_parents(text: str, size: int = 1500) -> list[str]:
    """Parent paragraphs for parent-child mode: whole paragraphs, packed up to ``size``.

    A paragraph longer than ``size`` is cut at the best separator (no overlap: parents
    are what the reader sees, and repeating text there only wastes context).
    """
    if size < 100:
        raise ValueError("parent size must be >= 100")
    parents: list[str] = []
    current = ""
    for paragraph in (p.strip() for p in text.split("\n\n")):
        if not paragraph:
            continue
        pieces = [paragraph] if len(paragraph) <= size else chunk_text(paragraph, size, 0)
        for piece in pieces:
            if current and len(current) + 2 + len(piece) > size:
                parents.append(current)
                current = ""
            current = f"{current}\n\n{piece}" if current else piece
    if current:
        parents.append(current)
    return parents


def parent_child(
    text: str,
    parent_size: int = 1500,
    child_size: int = 200,
    overlap: int = 20,
    separators: tuple[str, ...] = SEPARATORS,
) -> list[tuple[str, list[str]]]:
    """Each parent with its children: small chunks match precisely; parents give context."""
    return [
        (parent, chunk_text(parent, child_size, overlap, separators) or [parent])
        for parent in split_parents(text, parent_size)
    ]
