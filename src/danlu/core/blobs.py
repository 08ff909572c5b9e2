"""Content-addressed blob storage.

A blob is named by the SHA-256 of its bytes. :class:`BlobStore` is the
contract; :class:`LocalBlobStore` keeps blobs as files under ``DANLU_HOME``.
An S3-compatible store implements the same contract and must pass the same
conformance tests (``tests/core/test_blobs.py``).

Writes are atomic: bytes stream into a temporary file, are hashed on the way,
and only a complete, verified blob is renamed into place. A crash mid-write
leaves at most a stray temporary file, never a visible half-written blob.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from danlu.core.errors import InvalidRequest, NotFound, PayloadTooLarge

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1024 * 1024
READ_CHUNK = 4 * 1024 * 1024  # downloads: fewer, larger reads keep the disk streaming


@dataclass(frozen=True)
class BlobInfo:
    sha256: str
    size: int


def check_sha256(sha256: str) -> str:
    if not _SHA256.match(sha256):
        raise InvalidRequest(f"{sha256!r} is not a lowercase hex SHA-256", param="sha256")
    return sha256


class BlobStore(ABC):
    """Where file contents live, addressed by SHA-256."""

    @abstractmethod
    def put(
        self,
        chunks: Iterable[bytes],
        *,
        expected_sha256: str | None = None,
        max_size: int | None = None,
    ) -> BlobInfo:
        """Store the bytes; verify them against ``expected_sha256`` if given.

        Raises :class:`InvalidRequest` on a hash mismatch and
        :class:`PayloadTooLarge` past ``max_size``; nothing is stored then.
        """

    @abstractmethod
    async def put_stream(
        self,
        chunks: AsyncIterator[bytes],
        *,
        expected_sha256: str | None = None,
        max_size: int | None = None,
    ) -> BlobInfo:
        """Like :meth:`put`, for a request body: never holds more than a chunk in memory."""

    @abstractmethod
    def exists(self, sha256: str) -> bool: ...

    @abstractmethod
    def size(self, sha256: str) -> int:
        """Size in bytes; :class:`NotFound` if absent."""

    @abstractmethod
    def read(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream bytes ``start`` to ``end`` (exclusive; ``None``: to the end)."""

    @abstractmethod
    def delete(self, sha256: str) -> None:
        """Remove the blob if present."""

    def put_bytes(self, data: bytes) -> BlobInfo:
        return self.put([data])

    def read_bytes(self, sha256: str) -> bytes:
        return b"".join(self.read(sha256))

    async def read_ahead(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream bytes for a response, reading the next chunk while the last one is sent."""
        chunks = self.read(sha256, start, end)
        pending = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
        try:
            while (chunk := await pending) is not None:
                pending = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
                yield chunk
        finally:
            if not pending.done():
                await asyncio.wait({pending})
            close = getattr(chunks, "close", None)
            if close is not None:
                close()


class _Upload:
    """A temporary file being written and hashed; renamed into place only when complete."""

    def __init__(self, folder: Path, expected_sha256: str | None, max_size: int | None):
        if expected_sha256 is not None:
            check_sha256(expected_sha256)
        self.expected_sha256 = expected_sha256
        self.max_size = max_size
        self.size = 0
        self.digest = hashlib.sha256()
        fd, name = tempfile.mkstemp(dir=folder, prefix="upload-")
        self.path = Path(name)
        self.file = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.max_size is not None and self.size > self.max_size:
            raise PayloadTooLarge(f"the file is larger than the limit of {self.max_size} bytes")
        self.digest.update(chunk)
        self.file.write(chunk)

    def close(self) -> str:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        return self.digest.hexdigest()

    def discard(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.path.unlink(missing_ok=True)


class LocalBlobStore(BlobStore):
    """Blobs as files: ``root/sha256/ab/cd/abcd…``."""

    def __init__(self, root: Path):
        self.root = root
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / "sha256" / sha256[:2] / sha256[2:4] / sha256

    def put(
        self,
        chunks: Iterable[bytes],
        *,
        expected_sha256: str | None = None,
        max_size: int | None = None,
    ) -> BlobInfo:
        upload = _Upload(self._tmp, expected_sha256, max_size)
        try:
            for chunk in chunks:
                upload.write(chunk)
            return self._finish(upload)
        except BaseException:
            upload.discard()
            raise

    async def put_stream(
        self,
        chunks: AsyncIterator[bytes],
        *,
        expected_sha256: str | None = None,
        max_size: int | None = None,
    ) -> BlobInfo:
        upload = _Upload(self._tmp, expected_sha256, max_size)
        try:
            pending = bytearray()
            async for chunk in chunks:
                pending += chunk
                # Hash and write in a worker thread, in slices big enough to be cheap.
                if len(pending) >= CHUNK:
                    await asyncio.to_thread(upload.write, bytes(pending))
                    pending.clear()
            if pending:
                await asyncio.to_thread(upload.write, bytes(pending))
            return await asyncio.to_thread(self._finish, upload)
        except BaseException:
            upload.discard()
            raise

    def _finish(self, upload: _Upload) -> BlobInfo:
        """Verify the finished upload and move it into place (or drop it if already stored)."""
        sha256 = upload.close()
        if upload.expected_sha256 is not None and sha256 != upload.expected_sha256:
            raise InvalidRequest(
                f"content does not match its sha256: expected {upload.expected_sha256}, "
                f"got {sha256}",
                param="sha256",
                code="sha256_mismatch",
            )
        final = self.path(sha256)
        if final.exists():
            upload.discard()
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(upload.path, final)
        return BlobInfo(sha256, upload.size)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def size(self, sha256: str) -> int:
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"no blob {sha256}") from None

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        try:
            handle: BinaryIO = self.path(sha256).open("rb")
        except FileNotFoundError:
            raise NotFound(f"no blob {sha256}") from None
        return self._stream(handle, start, end)

    @staticmethod
    def _stream(handle: BinaryIO, start: int, end: int | None) -> Iterator[bytes]:
        with handle:
            # Tell the kernel we read front to back, so it reads further ahead.
            os.posix_fadvise(handle.fileno(), start, 0, os.POSIX_FADV_SEQUENTIAL)
            handle.seek(start)
            remaining = None if end is None else max(0, end - start)
            while remaining is None or remaining > 0:
                size = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
                chunk = handle.read(size)
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)
