"""Commits: apply file operations to a branch, atomically.

File contents are stored in the blob store *before* the commit (content
addressed, so a crash leaves at most an unreferenced blob). The commit itself
— its row, its full file list, the branch move and the card update — is one
database transaction, and the branch moves only if it still points at the
commit's parent. Concurrent commits therefore apply in order or fail with
:class:`StaleParent`; none is lost and no ref ever points at a half-made commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select, update

from danlu.core.blobs import BlobStore
from danlu.core.db import Database
from danlu.core.errors import InvalidRequest, PayloadTooLarge
from danlu.core.keys import Principal
from danlu.core.tables import utcnow
from danlu.hub.cards import Card, parse_card
from danlu.hub.errors import ConcurrentCommit, EntryNotFound, RevisionNotFound, StaleParent
from danlu.hub.names import validate_folder, validate_path
from danlu.hub.objects import (
    DEFAULT_BRANCH,
    GITATTRIBUTES,
    CommitInfo,
    FileEntry,
    entry_row,
    git_blob_sha1,
    lfs_pointer,
    make_commit_id,
    should_use_lfs,
)
from danlu.hub.repos import Repos
from danlu.hub.tables import Commit, CommitFile, Ref, RefKind, Repo

MAX_OPERATIONS = 20_000


@dataclass(frozen=True)
class AddFile:
    path: str
    sha256: str
    size: int
    lfs: bool
    git_sha1: str


@dataclass(frozen=True)
class DeleteFile:
    path: str


@dataclass(frozen=True)
class DeleteFolder:
    path: str


@dataclass(frozen=True)
class CopyFile:
    src_path: str
    src_revision: str | None
    path: str


Operation = AddFile | DeleteFile | DeleteFolder | CopyFile


class Committer:
    """Stores file contents and writes commits."""

    def __init__(self, db: Database, blobs: BlobStore, repos: Repos, *, max_file_bytes: int):
        self.db = db
        self.blobs = blobs
        self.repos = repos
        self.max_file_bytes = max_file_bytes
        # The initial .gitattributes must be readable like any other file.
        self.blobs.put_bytes(GITATTRIBUTES.encode())

    def store_regular(self, path: str, data: bytes) -> AddFile:
        """Store a small file sent inline; it may still be kept as LFS if it looks binary."""
        validate_path(path)
        if len(data) > self.max_file_bytes:
            raise PayloadTooLarge(
                f"{path} is larger than the hub's file limit ({self.max_file_bytes} bytes)"
            )
        info = self.blobs.put_bytes(data)
        # Listed as LFS when the public hub would keep it in LFS (weights, archives, binaries),
        # however it travelled here.
        if should_use_lfs(path, info.size, data[:512]):
            pointer = lfs_pointer(info.sha256, info.size)
            return AddFile(path, info.sha256, info.size, True, git_blob_sha1(pointer))
        return AddFile(path, info.sha256, info.size, False, git_blob_sha1(data))

    def lfs_file(self, path: str, sha256: str, size: int) -> AddFile:
        """A file whose content was uploaded through LFS beforehand."""
        validate_path(path)
        if not self.blobs.exists(sha256) or self.blobs.size(sha256) != size:
            raise InvalidRequest(
                f"{path}: no uploaded LFS object {sha256} of {size} bytes; upload it (LFS batch) "
                "before committing",
                param="lfsFile",
                code="LfsObjectMissing",
            )
        return AddFile(path, sha256, size, True, git_blob_sha1(lfs_pointer(sha256, size)))

    def commit(
        self,
        principal: Principal,
        repo: Repo,
        operations: list[Operation],
        *,
        title: str,
        message: str = "",
        branch: str = DEFAULT_BRANCH,
        parent_commit: str | None = None,
    ) -> CommitInfo:
        if not title.strip():
            raise InvalidRequest("a commit needs a summary (title)", param="summary")
        if len(operations) > MAX_OPERATIONS:
            raise PayloadTooLarge(
                f"a commit may hold at most {MAX_OPERATIONS} operations; split it"
            )
        for op in operations:
            validate_path(op.path) if not isinstance(op, DeleteFolder) else validate_folder(op.path)
        card = self._card_from(operations)
        copies = {
            op.path: self._copy_source(repo, op) for op in operations if isinstance(op, CopyFile)
        }
        now = utcnow()
        with self.db.write() as session:
            self.repos._check_write(
                session, principal, repo.workspace_id, f"commit to {repo.repo_id}"
            )
            ref = session.get(Ref, (repo.id, RefKind.BRANCH, branch))
            if ref is None:
                raise RevisionNotFound(branch, repo.repo_id)
            head = ref.commit_id
            if parent_commit and not head.startswith(parent_commit):
                raise StaleParent(parent_commit, head)
            files = {
                row.path: FileEntry(row.path, row.size, row.sha256, row.git_sha1, row.lfs)
                for row in session.scalars(select(CommitFile).where(CommitFile.commit_id == head))
            }
            for op in operations:
                self._apply(files, op, copies, repo, branch)
            commit_id = make_commit_id(repo.id, head, files, principal.username, title, now)
            session.add(
                Commit(
                    id=commit_id,
                    repo_id=repo.id,
                    parent_id=head,
                    author=principal.username,
                    title=title.strip()[:1000],
                    message=message,
                    created_at=now,
                )
            )
            session.flush()
            if files:
                session.execute(
                    insert(CommitFile), [entry_row(commit_id, e) for e in files.values()]
                )
            moved = session.execute(
                update(Ref)
                .where(
                    Ref.repo_id == repo.id,
                    Ref.kind == RefKind.BRANCH,
                    Ref.name == branch,
                    Ref.commit_id == head,
                )
                .values(commit_id=commit_id)
            )
            if moved.rowcount != 1:  # type: ignore[attr-defined]
                raise ConcurrentCommit()
            stored = session.get(Repo, repo.id)
            assert stored is not None
            stored.updated_at = now
            if branch == DEFAULT_BRANCH and card is not None:
                _apply_card(stored, card if "README.md" in files else Card())
            return CommitInfo(commit_id, head, principal.username, title, message, now)

    def _card_from(self, operations: list[Operation]) -> Card | None:
        """The new card if this commit touches README.md (validated before anything is written)."""
        card: Card | None = None
        for op in operations:
            if isinstance(op, AddFile) and op.path == "README.md":
                card = parse_card(self.blobs.read_bytes(op.sha256))
            elif (isinstance(op, DeleteFile) and op.path == "README.md") or (
                isinstance(op, DeleteFolder) and op.path.strip("/") == ""
            ):
                card = Card()
        return card

    def _copy_source(self, repo: Repo, op: CopyFile) -> FileEntry:
        revision = op.src_revision or DEFAULT_BRANCH
        commit_id = self.repos.resolve(repo, revision)
        return self.repos.file(repo, commit_id, op.src_path, revision)

    @staticmethod
    def _apply(
        files: dict[str, FileEntry],
        op: Operation,
        copies: dict[str, FileEntry],
        repo: Repo,
        branch: str,
    ) -> None:
        if isinstance(op, AddFile):
            files[op.path] = FileEntry(op.path, op.size, op.sha256, op.git_sha1, op.lfs)
        elif isinstance(op, CopyFile):
            source = copies[op.path]
            files[op.path] = FileEntry(
                op.path, source.size, source.sha256, source.git_sha1, source.lfs
            )
        elif isinstance(op, DeleteFile):
            if files.pop(op.path, None) is None:
                raise EntryNotFound(op.path, branch, repo.repo_id)
        else:
            prefix = op.path.strip("/")
            doomed = [p for p in files if not prefix or p == prefix or p.startswith(prefix + "/")]
            if not doomed:
                raise EntryNotFound(op.path, branch, repo.repo_id)
            for path in doomed:
                del files[path]


def _apply_card(repo: Repo, card: Card) -> None:
    meta = card.metadata
    repo.card = meta
    repo.tags = "," + ",".join(card.tags) + "," if card.tags else ""
    repo.pipeline_tag = meta.get("pipeline_tag")
    repo.library_name = meta.get("library_name")
    repo.license = meta.get("license")
