"""Uploads that go wrong leave nothing behind: wrong hashes, cut connections, oversize files."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from huggingface_hub import HfApi

from tests.support.server import RunningServer


def _batch(server: RunningServer, repo: str, oid: str, size: int) -> httpx.Response:
    return httpx.post(
        f"{server.url}/{repo}.git/info/lfs/objects/batch",
        timeout=30,
        headers={
            "Authorization": f"Bearer {server.admin_key}",
            "Accept": "application/vnd.git-lfs+json",
        },
        json={
            "operation": "upload",
            "transfers": ["basic"],
            "objects": [{"oid": oid, "size": size}],
            "hash_algo": "sha256",
        },
    )


def _blobs(server: RunningServer) -> Path:
    return server.home / "blobs"


def _stored(server: RunningServer, sha256: str) -> bool:
    return (_blobs(server) / "sha256" / sha256[:2] / sha256[2:4] / sha256).exists()


@pytest.fixture
def repo(server: RunningServer) -> str:
    HfApi(endpoint=server.url, token=server.admin_key).create_repo("admin/safety", exist_ok=True)
    return "admin/safety"


def test_wrong_sha256_is_refused_and_nothing_is_stored(server: RunningServer, repo: str) -> None:
    data = b"the real bytes" * 1000
    claimed = hashlib.sha256(b"something else").hexdigest()
    answer = _batch(server, repo, claimed, len(data)).json()["objects"][0]
    href = answer["actions"]["upload"]["href"]
    put = httpx.put(href, content=data, timeout=30)
    assert put.status_code == 400 and "does not match" in put.json()["error"]
    assert not _stored(server, claimed) and not _stored(server, hashlib.sha256(data).hexdigest())
    assert list((_blobs(server) / "tmp").iterdir()) == []


def test_upload_links_are_signed_and_bound_to_their_object(
    server: RunningServer, repo: str
) -> None:
    data = b"payload" * 100
    oid = hashlib.sha256(data).hexdigest()
    href = _batch(server, repo, oid, len(data)).json()["objects"][0]["actions"]["upload"]["href"]
    tampered = href.replace("token=", "token=x")
    assert httpx.put(tampered, content=data, timeout=30).status_code == 401
    other = hashlib.sha256(b"other").hexdigest()
    assert httpx.put(href.replace(oid, other), content=b"other", timeout=30).status_code == 400
    assert httpx.put(href, content=data, timeout=30).status_code == 200
    assert _stored(server, oid)


def test_a_cut_upload_leaves_no_file(server: RunningServer, repo: str) -> None:
    size = 5_000_000
    oid = hashlib.sha256(b"\x01" * size).hexdigest()
    href = _batch(server, repo, oid, size).json()["objects"][0]["actions"]["upload"]["href"]
    parts = urlsplit(href)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall(
            f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {size}\r\n\r\n".encode()
            + b"\x01" * (size // 2)
        )
    # The server notices the cut; wait until it has cleaned up.
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and list((_blobs(server) / "tmp").iterdir()):
        time.sleep(0.1)
    assert list((_blobs(server) / "tmp").iterdir()) == []
    assert not _stored(server, oid)
    assert server.health()["status"] == "ok"


def test_oversize_and_malformed_objects_are_refused(server: RunningServer, repo: str) -> None:
    huge = _batch(server, repo, "a" * 64, 10**15).json()["objects"][0]
    assert huge["error"]["code"] == 422 and "limit" in huge["error"]["message"]
    bad = _batch(server, repo, "not-a-sha", 10).json()["objects"][0]
    assert bad["error"]["code"] == 422


def test_commit_referring_to_a_missing_lfs_object_changes_nothing(
    server: RunningServer, repo: str
) -> None:
    api = HfApi(endpoint=server.url, token=server.admin_key)
    before = api.model_info(repo).sha

    def body() -> Iterator[bytes]:
        yield b'{"key": "header", "value": {"summary": "ghost"}}\n'
        yield (
            b'{"key": "file", "value": {"path": "ok.txt", "content": "b2s=",'
            b' "encoding": "base64"}}\n'
        )
        yield (
            b'{"key": "lfsFile", "value": {"path": "ghost.bin", "algo": "sha256", "oid": "'
            + b"b" * 64
            + b'", "size": 3}}\n'
        )

    response = httpx.post(
        f"{server.url}/api/models/{repo}/commit/main",
        content=body(),
        timeout=30,
        headers={
            "Authorization": f"Bearer {server.admin_key}",
            "Content-Type": "application/x-ndjson",
        },
    )
    assert response.status_code == 400 and response.headers["x-error-code"] == "LfsObjectMissing"
    assert api.model_info(repo).sha == before
    assert "ok.txt" not in api.list_repo_files(repo)


def test_stale_parent_commit_is_412(server: RunningServer, repo: str) -> None:
    api = HfApi(endpoint=server.url, token=server.admin_key)
    old = api.model_info(repo).sha
    api.upload_file(path_or_fileobj=b"1", path_in_repo="one.txt", repo_id=repo)
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.errors import HfHubHTTPError

    with pytest.raises(HfHubHTTPError) as stale:
        api.create_commit(
            repo, [CommitOperationAdd("two.txt", b"2")], commit_message="late", parent_commit=old
        )
    assert stale.value.response.status_code == 412
