"""The hub's value objects and content hashing, shared by repos and commits."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from danlu.hub.tables import Commit, CommitFile, Ref, RefKind, Repo

DEFAULT_BRANCH = "main"


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str
    git_sha1: str
    lfs: bool


@dataclass(frozen=True)
class CommitInfo:
    id: str
    parent_id: str | None
    author: str
    title: str
    message: str
    created_at: datetime


# Which files the Hugging Face clients should send through LFS (by name), as the
# public hub's default .gitattributes says.
LFS_SUFFIXES = (
    ".7z",
    ".arrow",
    ".bin",
    ".bz2",
    ".ckpt",
    ".ftz",
    ".gguf",
    ".gz",
    ".h5",
    ".joblib",
    ".mlmodel",
    ".model",
    ".msgpack",
    ".npy",
    ".npz",
    ".onnx",
    ".ot",
    ".parquet",
    ".pb",
    ".pickle",
    ".pkl",
    ".pt",
    ".pth",
    ".rar",
    ".safetensors",
    ".tar",
    ".tflite",
    ".tgz",
    ".wasm",
    ".xz",
    ".zip",
    ".zst",
)
LFS_THRESHOLD = 10 * 1024 * 1024
GITATTRIBUTES = "".join(
    f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in LFS_SUFFIXES
)


def should_use_lfs(path: str, size: int, sample: bytes = b"") -> bool:
    """LFS for large files, known binary formats, and anything that looks binary."""
    return size >= LFS_THRESHOLD or path.lower().endswith(LFS_SUFFIXES) or b"\x00" in sample


def git_blob_sha1(data: bytes) -> str:
    """The id git gives a blob with this content."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data, usedforsecurity=False).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


def entry_row(commit_id: str, entry: FileEntry) -> dict[str, object]:
    return {
        "commit_id": commit_id,
        "path": entry.path,
        "size": entry.size,
        "sha256": entry.sha256,
        "git_sha1": entry.git_sha1,
        "lfs": entry.lfs,
    }


def make_commit_id(
    repo_id: str,
    parent: str | None,
    files: dict[str, FileEntry],
    author: str,
    title: str,
    when: datetime,
) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    header = json.dumps([repo_id, parent, author, title, when.isoformat()], ensure_ascii=False)
    digest.update(header.encode())
    for path in sorted(files):
        digest.update(f"\n{path}\x00{files[path].sha256}".encode())
    digest.update(os.urandom(16))  # two identical commits in the same instant stay distinct
    return digest.hexdigest()


def initial_commit(session: Session, repo: Repo, author: str, when: datetime) -> str:
    """Every repo starts with one commit holding ``.gitattributes``, as on the public hub."""
    data = GITATTRIBUTES.encode()
    entry = FileEntry(
        ".gitattributes", len(data), hashlib.sha256(data).hexdigest(), git_blob_sha1(data), False
    )
    commit_id = make_commit_id(repo.id, None, {entry.path: entry}, author, "initial commit", when)
    session.add(
        Commit(
            id=commit_id,
            repo_id=repo.id,
            parent_id=None,
            author=author,
            title="initial commit",
            message="",
            created_at=when,
        )
    )
    session.flush()
    session.execute(insert(CommitFile), [entry_row(commit_id, entry)])
    session.add(Ref(repo_id=repo.id, kind=RefKind.BRANCH, name=DEFAULT_BRANCH, commit_id=commit_id))
    return str(commit_id)
