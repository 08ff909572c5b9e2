"""Getting models in (import, mirror) and out through the gateway (serving a hub GGUF)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import openai
import pytest
from huggingface_hub import HfApi

from danlu.gateway.providers.llama_cpp import embedded_gguf_path
from tests.support.server import RunningServer, start_server

EMBEDDED_REPO = "danlu/smollm2-135m-instruct"


def _files(api: HfApi, repo_id: str, tmp: Path) -> dict[str, bytes]:
    from huggingface_hub import snapshot_download

    local = Path(snapshot_download(repo_id, endpoint=api.endpoint, token=api.token, cache_dir=tmp))
    return {
        p.relative_to(local).as_posix(): p.read_bytes() for p in local.rglob("*") if p.is_file()
    }


def test_import_a_folder_with_the_cli(server: RunningServer, tmp_path: Path) -> None:
    folder = tmp_path / "release"
    (folder / "nested").mkdir(parents=True)
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# Imported\n")
    (folder / "nested" / "weights.bin").write_bytes(bytes(range(256)) * 50)
    result = server.cli("hub", "import", str(folder), "--repo", "admin/imported", "--private")
    assert "Imported" in result.stdout
    api = HfApi(endpoint=server.url, token=server.admin_key)
    info = api.model_info("admin/imported")
    assert info.private and info.card_data is not None and info.card_data.license == "mit"
    files = _files(api, "admin/imported", tmp_path / "cache")
    assert files["nested/weights.bin"] == (folder / "nested" / "weights.bin").read_bytes()
    missing = server.cli("hub", "import", str(tmp_path / "nope"), "--repo", "admin/x", check=False)
    assert missing.returncode != 0 and "does not exist" in missing.stderr


def test_mirror_from_another_danlu(
    server: RunningServer, upstream_danlu: RunningServer, tmp_path: Path
) -> None:
    upstream = HfApi(endpoint=upstream_danlu.url, token=upstream_danlu.admin_key)
    upstream.create_repo("admin/to-mirror", private=True, exist_ok=True)
    upstream.upload_file(
        path_or_fileobj=b'{"a": 1}', path_in_repo="config.json", repo_id="admin/to-mirror"
    )
    upstream.upload_file(
        path_or_fileobj=bytes(300_000), path_in_repo="w.safetensors", repo_id="admin/to-mirror"
    )
    refused = server.cli(
        "hub", "mirror", "admin/to-mirror", "--from", upstream_danlu.url, check=False
    )
    assert refused.returncode != 0 and "not found" in refused.stderr
    done = server.cli(
        "hub",
        "mirror",
        "admin/to-mirror",
        "--from",
        upstream_danlu.url,
        "--repo",
        f"admin/mirror-{server.port}",
        "--token",
        upstream_danlu.admin_key,
    )
    assert "Mirrored" in done.stdout
    mine = _files(
        HfApi(endpoint=server.url, token=server.admin_key),
        f"admin/mirror-{server.port}",
        tmp_path / "a",
    )
    theirs = _files(upstream, "admin/to-mirror", tmp_path / "b")
    assert mine == theirs and "w.safetensors" in mine


def test_mirror_over_the_modelscope_protocol(
    server: RunningServer, upstream_danlu: RunningServer, tmp_path: Path
) -> None:
    """The same code path that mirrors from modelscope.cn, against a danlu's ModelScope API."""
    upstream = HfApi(endpoint=upstream_danlu.url, token=upstream_danlu.admin_key)
    upstream.create_repo("admin/ms-source", repo_type="dataset", exist_ok=True)
    files = {f"part-{i:03d}.jsonl": f'{{"i": {i}}}\n'.encode() for i in range(120)}  # > one page
    files["nested/big.bin"] = bytes(range(256)) * 4000
    folder = tmp_path / "src"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    upstream.upload_folder(folder_path=folder, repo_id="admin/ms-source", repo_type="dataset")
    target = f"admin/ms-mirror-{server.port}"
    done = server.cli(
        "hub",
        "mirror",
        "admin/ms-source",
        "--from",
        upstream_danlu.url,
        "--protocol",
        "modelscope",
        "--type",
        "dataset",
        "--repo",
        target,
        "--token",
        upstream_danlu.admin_key,
    )
    assert "Mirrored" in done.stdout
    from huggingface_hub import snapshot_download

    local = Path(
        snapshot_download(
            target,
            repo_type="dataset",
            endpoint=server.url,
            token=server.admin_key,
            cache_dir=tmp_path / "c",
        )
    )
    for name, data in files.items():
        assert (local / name).read_bytes() == data, name


def test_the_embedded_model_is_a_hub_repo(server: RunningServer) -> None:
    gguf = embedded_gguf_path()
    assert gguf is not None
    info = HfApi(endpoint=server.url).model_info(EMBEDDED_REPO, files_metadata=True)
    entry = next(s for s in info.siblings or [] if s.rfilename.endswith(".gguf"))
    assert entry.lfs is not None and entry.size == gguf.stat().st_size
    assert entry.lfs.sha256 == hashlib.sha256(gguf.read_bytes()).hexdigest()


def test_serve_a_hub_gguf_through_the_gateway(server: RunningServer) -> None:
    admin = {"Authorization": f"Bearer {server.admin_key}"}
    created = httpx.post(
        f"{server.api}/served-models",
        headers=admin,
        timeout=60,
        json={"repo": EMBEDDED_REPO, "name": "hub-smol"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["models"] == ["hub-smol"]
    client = openai.OpenAI(base_url=server.api, api_key=server.admin_key, max_retries=0)
    assert "hub-smol" in {m.id for m in client.models.list()}
    ask = {
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 6,
        "seed": 2,
        "temperature": 0,
    }
    served = client.chat.completions.create(model="hub-smol", **ask)  # type: ignore[call-overload]
    embedded = client.chat.completions.create(model="smollm2-135m-instruct", **ask)  # type: ignore[call-overload]
    assert served.choices[0].message.content == embedded.choices[0].message.content
    assert (
        httpx.post(
            f"{server.api}/served-models",
            headers=admin,
            timeout=60,
            json={"repo": EMBEDDED_REPO, "name": "hub-smol"},
        ).status_code
        == 409
    )
    listed = httpx.get(f"{server.api}/served-models", headers=admin, timeout=30).json()["data"]
    assert [s["name"] for s in listed if s["name"] == "hub-smol"] == ["hub-smol"]
    assert (
        httpx.delete(f"{server.api}/served-models/hub-smol", headers=admin, timeout=30).status_code
        == 204
    )
    assert "hub-smol" not in {m.id for m in client.models.list()}


def test_serving_refuses_what_it_cannot_serve(server: RunningServer) -> None:
    admin = {"Authorization": f"Bearer {server.admin_key}"}
    HfApi(endpoint=server.url, token=server.admin_key).create_repo("admin/no-gguf", exist_ok=True)
    no_gguf = httpx.post(
        f"{server.api}/served-models", headers=admin, json={"repo": "admin/no-gguf"}, timeout=30
    )
    assert no_gguf.status_code == 400 and "no .gguf" in no_gguf.json()["error"]["message"]
    plain = {"Authorization": f"Bearer {server.create_key('not-admin')}"}
    refused = httpx.post(
        f"{server.api}/served-models", headers=plain, json={"repo": EMBEDDED_REPO}, timeout=30
    )
    assert refused.status_code == 403
    missing = httpx.post(
        f"{server.api}/served-models", headers=admin, json={"repo": "admin/absent"}, timeout=30
    )
    assert missing.status_code == 404


def test_served_models_come_back_after_a_restart(tmp_path: Path) -> None:
    first = start_server(tmp_path / "home")
    try:
        response = httpx.post(
            f"{first.api}/served-models",
            timeout=60,
            headers={"Authorization": f"Bearer {first.admin_key}"},
            json={"repo": EMBEDDED_REPO, "name": "kept"},
        )
        assert response.status_code == 201, response.text
    finally:
        first.stop()
    second = start_server(tmp_path / "home")
    try:
        models = httpx.get(
            f"{second.api}/models",
            timeout=30,
            headers={"Authorization": f"Bearer {second.admin_key}"},
        ).json()["data"]
        assert "kept" in {m["id"] for m in models}
    finally:
        second.stop()


@pytest.mark.parametrize("path", ["../x", "/abs/x"])
def test_import_refuses_bad_repo_names(server: RunningServer, tmp_path: Path, path: str) -> None:
    (tmp_path / "f.txt").write_text("x")
    result = server.cli(
        "hub", "import", str(tmp_path / "f.txt"), "--repo", f"admin{path}", check=False
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
