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
