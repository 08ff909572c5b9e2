"""The real huggingface_hub client against a real danlu server, as HF_ENDPOINT users run it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.support.server import RunningServer

CARD = """---
license: apache-2.0
language: [zh, en]
tags: [demo]
pipeline_tag: text-generation
library_name: transformers
---
# Tiny demo model
"""


@pytest.fixture
def api(server: RunningServer) -> HfApi:
    return HfApi(endpoint=server.url, token=server.admin_key)


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "README.md").write_text(CARD)
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / "sub" / "notes.txt").write_text("第一行\nsecond line\n")
    (folder / "weights.safetensors").write_bytes(os.urandom(300_000))
    return folder


def test_create_upload_download_roundtrip(
    api: HfApi, server: RunningServer, tmp_path: Path
) -> None:
    url = api.create_repo("admin/roundtrip")
    assert str(url).endswith("/admin/roundtrip")
    api.create_repo("admin/roundtrip", exist_ok=True)
    with pytest.raises(HfHubHTTPError) as exists:
        api.create_repo("admin/roundtrip")
    assert exists.value.response.status_code == 409

    folder = _folder(tmp_path)
    info = api.upload_folder(
        folder_path=folder, repo_id="admin/roundtrip", commit_message="first upload"
    )
    assert len(info.oid) == 40

    model = api.model_info("admin/roundtrip", files_metadata=True)
    assert model.sha == info.oid
    files = {s.rfilename: s for s in model.siblings or []}
    assert set(files) == {
        ".gitattributes",
        "README.md",
        "config.json",
        "sub/notes.txt",
        "weights.safetensors",
    }
    weights = files["weights.safetensors"]
    assert weights.lfs is not None
    assert (
        weights.lfs.sha256
        == hashlib.sha256((folder / "weights.safetensors").read_bytes()).hexdigest()
    )
    assert model.card_data is not None and model.card_data.license == "apache-2.0"
    assert model.pipeline_tag == "text-generation"

    local = snapshot_download(
        "admin/roundtrip", endpoint=server.url, token=server.admin_key, cache_dir=tmp_path / "cache"
    )
    for name in ("README.md", "config.json", "sub/notes.txt", "weights.safetensors"):
        assert (Path(local) / name).read_bytes() == (folder / name).read_bytes(), name

    tree = {e.path for e in api.list_repo_tree("admin/roundtrip", recursive=True)}
    assert {"sub", "sub/notes.txt", "weights.safetensors"} <= tree
    top = {e.path for e in api.list_repo_tree("admin/roundtrip")}
    assert "sub/notes.txt" not in top and "sub" in top
    infos = {
        i.path: i for i in api.get_paths_info("admin/roundtrip", ["config.json", "sub", "nope"])
    }
    assert set(infos) == {"config.json", "sub"}
    assert getattr(infos["config.json"], "size", None) == len('{"hidden_size": 8}')


def test_download_at_a_revision(api: HfApi, server: RunningServer, tmp_path: Path) -> None:
    api.create_repo("admin/revisions")
    first = api.upload_file(
        path_or_fileobj=b"v1", path_in_repo="data.txt", repo_id="admin/revisions"
    )
    api.create_tag("admin/revisions", tag="v1")
    api.upload_file(path_or_fileobj=b"v2", path_in_repo="data.txt", repo_id="admin/revisions")
    cache = tmp_path / "cache"

    def read(revision: str | None) -> bytes:
        path = hf_hub_download(
            "admin/revisions",
            "data.txt",
            revision=revision,
            endpoint=server.url,
            token=server.admin_key,
            cache_dir=cache,
        )
        return Path(path).read_bytes()

    assert read(None) == b"v2"
    assert read("v1") == b"v1"
    assert read(first.oid) == b"v1"
    commits = api.list_repo_commits("admin/revisions")
    assert len(commits) == 3 and commits[-1].title == "initial commit"
    per_file = httpx.get(
        f"{server.url}/api/models/admin/revisions/commits/main",
        params={"path": "data.txt"},
        timeout=30,
    ).json()
    assert [c["id"] for c in per_file] == [c.commit_id for c in commits[:2]]
    no_file = httpx.get(
        f"{server.url}/api/models/admin/revisions/commits/main",
        params={"path": ".gitattributes"},
        timeout=30,
    ).json()
    assert [c["id"] for c in no_file] == [commits[-1].commit_id]
    refs = api.list_repo_refs("admin/revisions")
    assert [b.name for b in refs.branches] == ["main"] and [t.name for t in refs.tags] == ["v1"]
    with pytest.raises(RevisionNotFoundError):
        read("no-such-branch")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(
            "admin/revisions",
            "missing.txt",
            endpoint=server.url,
            token=server.admin_key,
            cache_dir=cache,
        )


def test_branches_and_deletes(api: HfApi) -> None:
    api.create_repo("admin/branches", repo_type="dataset")
    api.upload_file(
        path_or_fileobj=b"a,b\n1,2\n",
        path_in_repo="train.csv",
        repo_id="admin/branches",
        repo_type="dataset",
    )
    api.create_branch("admin/branches", branch="dev", repo_type="dataset")
    api.upload_file(
        path_or_fileobj=b"x",
        path_in_repo="dev-only.txt",
        repo_id="admin/branches",
        repo_type="dataset",
        revision="dev",
    )
    assert "dev-only.txt" in api.list_repo_files(
        "admin/branches", repo_type="dataset", revision="dev"
    )
    assert "dev-only.txt" not in api.list_repo_files("admin/branches", repo_type="dataset")
    api.delete_file("train.csv", repo_id="admin/branches", repo_type="dataset")
    assert api.list_repo_files("admin/branches", repo_type="dataset") == [".gitattributes"]
    api.delete_branch("admin/branches", branch="dev", repo_type="dataset")
    assert [b.name for b in api.list_repo_refs("admin/branches", repo_type="dataset").branches] == [
        "main"
    ]


def test_search_and_whoami(api: HfApi, server: RunningServer, tmp_path: Path) -> None:
    api.create_repo("admin/searchable-qwen")
    api.upload_file(
        path_or_fileobj=CARD.encode(), path_in_repo="README.md", repo_id="admin/searchable-qwen"
    )
    api.create_repo("admin/other-thing")
    found = [m.id for m in api.list_models(search="searchable")]
    assert found == ["admin/searchable-qwen"]
    assert "admin/searchable-qwen" in [m.id for m in api.list_models(filter="language:zh")]
    assert "admin/other-thing" not in [m.id for m in api.list_models(filter="text-generation")]
    assert {m.id for m in api.list_models(author="admin", limit=500)} >= {
        "admin/searchable-qwen",
        "admin/other-thing",
    }
    me = api.whoami()
    assert me["name"] == "admin" and me["auth"]["accessToken"]["role"] == "write"


def test_private_repos_answer_404_to_others(
    api: HfApi, server: RunningServer, tmp_path: Path
) -> None:
    api.create_repo("admin/hidden", private=True)
    api.upload_file(path_or_fileobj=b"secret", path_in_repo="s.txt", repo_id="admin/hidden")
    assert api.model_info("admin/hidden").private
    server.cli("users", "create", "outsider-hf", check=False)
    outsider = HfApi(
        endpoint=server.url, token=server.create_key("outsider", "--user", "outsider-hf")
    )
    anonymous = HfApi(endpoint=server.url, token=False)
    for who in (outsider, anonymous):
        with pytest.raises(RepositoryNotFoundError):
            who.model_info("admin/hidden")
        with pytest.raises(RepositoryNotFoundError):
            hf_hub_download(
                "admin/hidden",
                "s.txt",
                endpoint=server.url,
                token=who.token or False,
                cache_dir=tmp_path / "c",
            )
    assert "admin/hidden" not in [m.id for m in outsider.list_models(author="admin")]
    # Writing to someone else's public repo is refused too.
    api.create_repo("admin/public-one")
    with pytest.raises(HfHubHTTPError) as refused:
        outsider.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="admin/public-one")
    assert refused.value.response.status_code == 403


def test_range_requests_and_headers(api: HfApi, server: RunningServer) -> None:
    api.create_repo("admin/ranges")
    payload = bytes(range(256)) * 4096
    api.upload_file(path_or_fileobj=payload, path_in_repo="blob.bin", repo_id="admin/ranges")
    url = f"{server.url}/admin/ranges/resolve/main/blob.bin"
    head = httpx.head(url, timeout=30)
    assert head.status_code == 200
    assert head.headers["x-linked-etag"] == f'"{hashlib.sha256(payload).hexdigest()}"'
    assert int(head.headers["content-length"]) == len(payload)
    assert len(head.headers["x-repo-commit"]) == 40
    part = httpx.get(url, headers={"Range": "bytes=100-199"}, timeout=30)
    assert part.status_code == 206 and part.content == payload[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(payload)}"
    tail = httpx.get(url, headers={"Range": "bytes=-10"}, timeout=30)
    assert tail.content == payload[-10:]
    beyond = httpx.get(url, headers={"Range": f"bytes={len(payload) + 5}-"}, timeout=30)
    assert beyond.status_code == 416


def test_bad_paths_are_refused_and_nothing_is_written(api: HfApi, server: RunningServer) -> None:
    api.create_repo("admin/strict")
    before = api.model_info("admin/strict").sha
    for bad in ["../escape.txt", "a\\b.txt", ".git/config", "x/../../y"]:
        response = httpx.post(
            f"{server.url}/api/models/admin/strict/commit/main",
            headers={
                "Authorization": f"Bearer {server.admin_key}",
                "Content-Type": "application/x-ndjson",
            },
            content=(
                b'{"key": "header", "value": {"summary": "evil"}}\n'
                + b'{"key": "file", "value": {"path": "'
                + bad.replace("\\", "\\\\").encode()
                + b'", "content": "eA==", "encoding": "base64"}}\n'
            ),
            timeout=30,
        )
        assert response.status_code == 400, (bad, response.text)
        assert "path" in response.json()["error"]
    assert api.model_info("admin/strict").sha == before
    # The client checks names itself; the server must too, for other clients.
    for bad in ["bad..name", "x/y", ".hidden", "a" * 97]:
        response = httpx.post(
            f"{server.url}/api/repos/create",
            json={"name": bad, "type": "model"},
            headers={"Authorization": f"Bearer {server.admin_key}"},
            timeout=30,
        )
        assert response.status_code == 400, bad
        assert response.headers["x-error-message"]


def test_likes_and_downloads_are_counted(api: HfApi, server: RunningServer, tmp_path: Path) -> None:
    api.create_repo("admin/liked")
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="admin/liked")
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    for _ in range(2):  # liking twice counts once
        liked = httpx.post(f"{server.url}/api/models/admin/liked/like", headers=headers, timeout=30)
        assert liked.status_code == 200 and liked.json()["likes"] == 1
    assert api.model_info("admin/liked").likes == 1
    assert "admin/liked" in api.list_liked_repos("admin").models
    assert [u.username for u in api.list_repo_likers("admin/liked")] == ["admin"]
    hf_hub_download(
        "admin/liked",
        "x.txt",
        endpoint=server.url,
        token=server.admin_key,
        cache_dir=tmp_path / "c",
    )
    assert (api.model_info("admin/liked").downloads or 0) >= 1
    top = [m.id for m in api.list_models(author="admin", sort="likes", limit=1)]
    assert top == ["admin/liked"]
    api.unlike("admin/liked")
    assert api.model_info("admin/liked").likes == 0
    anonymous = httpx.post(f"{server.url}/api/models/admin/liked/like", timeout=30)
    assert anonymous.status_code == 401
