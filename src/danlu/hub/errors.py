"""Hub-specific errors; their ``code`` is what the Hugging Face clients read from X-Error-Code."""

from __future__ import annotations

from danlu.core.errors import Conflict, NotFound, PreconditionFailed


class RepoNotFound(NotFound):
    def __init__(self, repo_id: str):
        super().__init__(
            f"repository {repo_id!r} not found, or you do not have access to it; check the name "
            "and that your key (HF_TOKEN) belongs to a member of its namespace",
            param="repo_id",
            code="RepoNotFound",
        )


class RevisionNotFound(NotFound):
    def __init__(self, revision: str, repo_id: str):
        super().__init__(
            f"revision {revision!r} not found in {repo_id}: use a branch, a tag or a commit id",
            param="revision",
            code="RevisionNotFound",
        )


class EntryNotFound(NotFound):
    def __init__(self, path: str, revision: str, repo_id: str):
        super().__init__(
            f"{path!r} does not exist in {repo_id} at revision {revision}",
            param="path",
            code="EntryNotFound",
        )


class RepoExists(Conflict):
    def __init__(self, repo_id: str, url: str):
        super().__init__(f"you already created this repo: {repo_id}", code="RepoExists")
        self.url = url
        self.extra = {"url": url}


class StaleParent(PreconditionFailed):
    """The branch is not at the parent commit the client named (412)."""

    def __init__(self, expected: str, actual: str):
        super().__init__(
            f"the branch is at {actual}, not at parent_commit {expected}: someone committed "
            "meanwhile; fetch the new head and commit again",
            param="parentCommit",
            code="StaleParent",
        )


class ConcurrentCommit(Conflict):
    """Another commit moved the branch while this one was being written (409; retry)."""

    def __init__(self) -> None:
        super().__init__(
            "another commit landed on this branch at the same moment; commit again",
            code="ConcurrentCommit",
        )
