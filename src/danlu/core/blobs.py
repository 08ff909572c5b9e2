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

import hashlib
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from danlu.core.errors import InvalidRequest, NotFound, PayloadTooLarge

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1024 * 1024


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
        if expected_sha256 is not None:
            check_sha256(expected_sha256)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="upload-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if max_size is not None and size > max_size:
                        raise PayloadTooLarge(
                            f"the file is larger than the limit of {max_size} bytes"
                        )
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha256 = digest.hexdigest()
            if expected_sha256 is not None and sha256 != expected_sha256:
                raise InvalidRequest(
                    f"content does not match its sha256: expected {expected_sha256}, got {sha256}",
                    param="sha256",
                    code="sha256_mismatch",
                )
            final = self.path(sha256)
            if final.exists():
                tmp.unlink()
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)
            return BlobInfo(sha256, size)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

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
            handle.seek(start)
            remaining = None if end is None else max(0, end - start)
            while remaining is None or remaining > 0:
                chunk = handle.read(CHUNK if remaining is None else min(CHUNK, remaining))
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)
