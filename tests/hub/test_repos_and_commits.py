"""Hub storage on both metadata backends: repos, atomic commits, refs, access, cards, search."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from danlu.core.accounts import Accounts
from danlu.core.blobs import LocalBlobStore
from danlu.core.db import Database
from danlu.core.errors import Conflict, InvalidRequest, PermissionDenied
from danlu.core.keys import ApiKeys, Principal, Scope
from danlu.core.tables import Role
from danlu.hub.commits import Committer, CopyFile, DeleteFile, DeleteFolder
from danlu.hub.errors import EntryNotFound, RepoExists, RepoNotFound, RevisionNotFound, StaleParent
from danlu.hub.repos import Repos
from danlu.hub.tables import RefKind, RepoType


class Hub:
    def __init__(self, db: Database, tmp: Path):
        self.accounts = Accounts(db)
        self.keys = ApiKeys(db)
        self.repos = Repos(db)
        self.blobs = LocalBlobStore(tmp / "blobs")
        self.committer = Committer(db, self.blobs, self.repos, max_file_bytes=10**9)

    def principal(self, username: str, *scopes: str) -> Principal:
        user = self.accounts.user(username)
        _, secret = self.keys.create(user, "t", scopes=list(scopes or Scope.DEFAULT))
        return self.keys.authenticate(secret)


@pytest.fixture
def hub(db: Database, tmp_path: Path) -> Hub:
    h = Hub(db, tmp_path)
    h.accounts.create_user("alice")
    h.accounts.create_user("bob")
    return h


def test_new_repo_has_an_initial_commit(hub: Hub) -> None:
    alice = hub.principal("alice")
    repo = hub.repos.create(alice, RepoType.MODEL, "alice/tiny", private=False, url="u")
    head = hub.repos.resolve(repo, "main")
    assert len(head) == 40
    assert [f.path for f in hub.repos.files(head)] == [".gitattributes"]
    assert hub.blobs.exists(hub.repos.files(head)[0].sha256)
    with pytest.raises(RepoExists):
        hub.repos.create(alice, RepoType.MODEL, "alice/TINY", private=False, url="u")
    # Same name, other type: fine.
    hub.repos.create(alice, RepoType.DATASET, "alice/tiny", private=False, url="u")


def test_commit_add_copy_delete_and_history(hub: Hub) -> None:
    alice = hub.principal("alice")
    repo = hub.repos.create(alice, RepoType.MODEL, "alice/m", private=False, url="u")
    config = hub.committer.store_regular("config.json", b'{"a": 1}')
    weights = hub.blobs.put_bytes(b"\x00weights" * 1000)
    lfs = hub.committer.lfs_file("model.safetensors", weights.sha256, weights.size)
    first = hub.committer.commit(alice, repo, [config, lfs], title="add model")
    files = {f.path: f for f in hub.repos.files(first.id)}
    assert set(files) == {".gitattributes", "config.json", "model.safetensors"}
    assert files["model.safetensors"].lfs and not files["config.json"].lfs
    assert files["config.json"].git_sha1 == hashlib.sha1(b'blob 8\x00{"a": 1}').hexdigest()

    second = hub.committer.commit(
        alice,
        repo,
        [CopyFile("config.json", None, "sub/config.json"), DeleteFile("config.json")],
        title="move",
        parent_commit=first.id,
    )
    assert {f.path for f in hub.repos.files(second.id)} == {
        ".gitattributes",
        "model.safetensors",
        "sub/config.json",
    }
    assert [f.path for f in hub.repos.files(second.id, "sub", recursive=False)] == [
        "sub/config.json"
    ]
    assert [f.path for f in hub.repos.files(second.id, "", recursive=False)] == [
        ".gitattributes",
        "model.safetensors",
    ]
    # Old revisions stay readable.
    assert "config.json" in {f.path for f in hub.repos.files(first.id)}
    assert hub.repos.resolve(repo, first.id[:10]) == first.id
    history = hub.repos.history(repo, "main")
    assert [c.title for c in history] == ["move", "add model", "initial commit"]
    assert [c.title for c in hub.repos.history(repo, "main", path="config.json")] == [
        "move",
        "add model",
    ]

    third = hub.committer.commit(alice, repo, [DeleteFolder("sub")], title="drop sub")
    assert "sub/config.json" not in {f.path for f in hub.repos.files(third.id)}
    with pytest.raises(EntryNotFound):
        hub.committer.commit(alice, repo, [DeleteFile("nope.txt")], title="x")


def test_stale_parent_and_concurrent_commits(hub: Hub) -> None:
    alice = hub.principal("alice")
    repo = hub.repos.create(alice, RepoType.MODEL, "alice/race", private=False, url="u")
    base = hub.repos.resolve(repo, "main")
    hub.committer.commit(
        alice, repo, [hub.committer.store_regular("a.txt", b"a")], title="a", parent_commit=base
    )
    with pytest.raises(StaleParent):
        hub.committer.commit(
            alice, repo, [hub.committer.store_regular("b.txt", b"b")], title="b", parent_commit=base
        )

    errors: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            op = hub.committer.store_regular(f"f{index}.txt", str(index).encode())
            hub.committer.commit(alice, repo, [op], title=f"w{index}")
        except Conflict:
            pass  # a race lost cleanly is fine; a lost update is not
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    history = hub.repos.history(repo, "main")
    head_files = {f.path for f in hub.repos.files(history[0].id)}
    # Every commit that landed is in the chain, and its file survived every later commit.
    landed = [c.title for c in history if c.title.startswith("w")]
    assert {f"f{t[1:]}.txt" for t in landed} <= head_files
    assert "a.txt" in head_files


def test_private_repos_are_invisible_to_outsiders(hub: Hub) -> None:
    alice, bob = hub.principal("alice"), hub.principal("bob")
    hub.repos.create(alice, RepoType.MODEL, "alice/secret", private=True, url="u")
    assert hub.repos.find(alice, RepoType.MODEL, "alice/secret").private
    for who in (bob, None):
        with pytest.raises(RepoNotFound):
            hub.repos.find(who, RepoType.MODEL, "alice/secret")
    assert [r.name for r in hub.repos.search(bob, RepoType.MODEL)] == []
    assert [r.name for r in hub.repos.search(alice, RepoType.MODEL)] == ["secret"]
    # A viewer of the namespace can read but not write.
    hub.accounts.set_role(hub.accounts.workspace("alice"), hub.accounts.user("bob"), Role.VIEWER)
    repo = hub.repos.find(bob, RepoType.MODEL, "alice/secret")
    with pytest.raises(PermissionDenied):
        hub.repos.find(bob, RepoType.MODEL, "alice/secret", write=True)
    with pytest.raises(PermissionDenied):
        hub.committer.commit(bob, repo, [hub.committer.store_regular("x", b"x")], title="x")


def test_writes_need_the_scope_and_membership(hub: Hub) -> None:
    reader = hub.principal("alice", Scope.HUB_READ)
    with pytest.raises(PermissionDenied):
        hub.repos.create(reader, RepoType.MODEL, "alice/x", private=False, url="u")
    bob = hub.principal("bob")
    with pytest.raises(PermissionDenied):
        hub.repos.create(bob, RepoType.MODEL, "alice/x", private=False, url="u")


def test_bad_names_and_paths(hub: Hub) -> None:
    alice = hub.principal("alice")
    for bad in [
        "alice/../x",
        "alice/a/b",
        "alice/x.git",
        "alice/" + "x" * 97,
        "alice/.hidden",
        "noslash",
    ]:
        with pytest.raises(InvalidRequest):
            hub.repos.create(alice, RepoType.MODEL, bad, private=False, url="u")
    for path in [
        "../etc/passwd",
        "/abs",
        "a\\b",
        "a\x00b",
        "a//b",
        ".git/config",
        "x/./y",
        "é" * 600,
    ]:
        with pytest.raises(InvalidRequest):
            hub.committer.store_regular(path, b"x")


def test_lfs_object_must_be_uploaded_first(hub: Hub) -> None:
    with pytest.raises(InvalidRequest, match="upload it"):
        hub.committer.lfs_file("w.bin", "a" * 64, 10)


def test_card_metadata_is_parsed_and_searchable(hub: Hub) -> None:
    alice = hub.principal("alice")
    repo = hub.repos.create(alice, RepoType.MODEL, "alice/qwen-mini", private=False, url="u")
    card = (
        b"---\nlicense: apache-2.0\nlanguage: [zh, en]\ntags: [chat]\n"
        b"pipeline_tag: text-generation\n---\n# Hi\n"
    )
    hub.committer.commit(
        alice, repo, [hub.committer.store_regular("README.md", card)], title="card"
    )
    other = hub.repos.create(alice, RepoType.MODEL, "alice/plain", private=False, url="u")
    assert {r.name for r in hub.repos.search(None, RepoType.MODEL, tags=["language:zh"])} == {
        "qwen-mini"
    }
    assert {
        r.name for r in hub.repos.search(None, RepoType.MODEL, tags=["text-generation", "chat"])
    } == {"qwen-mini"}
    assert {r.name for r in hub.repos.search(None, RepoType.MODEL, search="QWEN")} == {"qwen-mini"}
    assert {r.name for r in hub.repos.search(None, RepoType.MODEL, author="alice")} == {
        "qwen-mini",
        "plain",
    }
    found = hub.repos.find(None, RepoType.MODEL, "alice/qwen-mini")
    assert found.license == "apache-2.0" and found.card["language"] == ["zh", "en"]
    with pytest.raises(InvalidRequest, match="tags"):
        hub.committer.commit(
            alice,
            other,
            [hub.committer.store_regular("README.md", b"---\ntags: {a: 1}\n---\n")],
            title="bad card",
        )
    assert {f.path for f in hub.repos.files(hub.repos.resolve(other, "main"))} == {".gitattributes"}


def test_branches_and_tags(hub: Hub) -> None:
    alice = hub.principal("alice")
    repo = hub.repos.create(alice, RepoType.DATASET, "alice/d", private=False, url="u")
    hub.repos.create_ref(alice, repo, RefKind.BRANCH, "dev", None)
    hub.repos.create_ref(alice, repo, RefKind.TAG, "v1.0", "main")
    hub.committer.commit(
        alice, repo, [hub.committer.store_regular("x.csv", b"a,b\n1,2\n")], title="x", branch="dev"
    )
    assert "x.csv" in {f.path for f in hub.repos.files(hub.repos.resolve(repo, "dev"))}
    assert "x.csv" not in {f.path for f in hub.repos.files(hub.repos.resolve(repo, "v1.0"))}
    branches, tags = hub.repos.refs(repo)
    assert [b.name for b in branches] == ["dev", "main"] and [t.name for t in tags] == ["v1.0"]
    with pytest.raises(Conflict):
        hub.repos.create_ref(alice, repo, RefKind.TAG, "dev", None)
    with pytest.raises(RevisionNotFound):
        hub.repos.resolve(repo, "nope")
    with pytest.raises(InvalidRequest):
        hub.repos.delete_ref(alice, repo, RefKind.BRANCH, "main")
    hub.repos.delete_ref(alice, repo, RefKind.BRANCH, "dev")
    with pytest.raises(RevisionNotFound):
        hub.repos.resolve(repo, "dev")


def test_delete_repo(hub: Hub) -> None:
    alice = hub.principal("alice")
    repo = hub.repos.create(alice, RepoType.MODEL, "alice/gone", private=False, url="u")
    hub.repos.delete(alice, repo)
    with pytest.raises(RepoNotFound):
        hub.repos.find(alice, RepoType.MODEL, "alice/gone")
    hub.repos.create(alice, RepoType.MODEL, "alice/gone", private=False, url="u")
