"""Blob store conformance: every implementation must pass these."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from danlu.core.blobs import BlobStore, LocalBlobStore
from danlu.core.errors import InvalidRequest, NotFound, PayloadTooLarge


@pytest.fixture(params=["local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    assert request.param == "local"
    return LocalBlobStore(tmp_path / "blobs")


def _leftovers(store: BlobStore) -> list[Path]:
    assert isinstance(store, LocalBlobStore)
    return list((store.root / "tmp").iterdir())


def test_put_is_content_addressed_and_idempotent(store: BlobStore) -> None:
    data = "丹炉 blob".encode() * 1000
    info = store.put_bytes(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest() and info.size == len(data)
    assert store.put([data[:10], data[10:]]) == info
    assert store.exists(info.sha256) and store.size(info.sha256) == len(data)
    assert store.read_bytes(info.sha256) == data


def test_ranges(store: BlobStore) -> None:
    data = bytes(range(256)) * 10_000
    info = store.put_bytes(data)
    assert b"".join(store.read(info.sha256, 100, 200)) == data[100:200]
    assert b"".join(store.read(info.sha256, len(data) - 5)) == data[-5:]
    assert b"".join(store.read(info.sha256, 10, 10)) == b""


def test_wrong_hash_stores_nothing(store: BlobStore) -> None:
    data = b"payload"
    with pytest.raises(InvalidRequest, match="does not match"):
        store.put([data], expected_sha256="0" * 64)
    assert not store.exists(hashlib.sha256(data).hexdigest())
    assert _leftovers(store) == []


def test_size_limit_stores_nothing(store: BlobStore) -> None:
    with pytest.raises(PayloadTooLarge):
        store.put([b"x" * 600, b"x" * 600], max_size=1000)
    assert _leftovers(store) == []


def test_crash_mid_write_leaves_no_visible_blob(store: BlobStore) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"first half"
        raise ConnectionError("client vanished")

    with pytest.raises(ConnectionError):
        store.put(chunks())
    assert not store.exists(hashlib.sha256(b"first half").hexdigest())
    assert _leftovers(store) == []


def test_missing_and_malformed_names(store: BlobStore) -> None:
    with pytest.raises(NotFound):
        store.size("a" * 64)
    with pytest.raises(NotFound):
        store.read("a" * 64)
    for bad in ["../../etc/passwd", "A" * 64, "abc", "a" * 63 + "/"]:
        with pytest.raises(InvalidRequest):
            store.exists(bad)


def test_delete(store: BlobStore) -> None:
    info = store.put_bytes(b"short-lived")
    store.delete(info.sha256)
    assert not store.exists(info.sha256)
    store.delete(info.sha256)  # deleting twice is fine


def test_streamed_put_matches_and_verifies(store: BlobStore) -> None:
    import asyncio

    data = b"z" * (3 * 1024 * 1024 + 17)

    async def body() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 65536):
            yield data[start : start + 65536]

    info = asyncio.run(store.put_stream(body(), expected_sha256=hashlib.sha256(data).hexdigest()))
    assert info.size == len(data) and store.read_bytes(info.sha256) == data
    with pytest.raises(InvalidRequest):
        asyncio.run(store.put_stream(body(), expected_sha256="1" * 64))
    with pytest.raises(PayloadTooLarge):
        asyncio.run(store.put_stream(body(), max_size=1024))
    assert _leftovers(store) == []
