"""A hub repo with transformers weights, served through the gateway and used with the real SDK.

The repo is what the refinery publishes: config.json, model.safetensors and a tokenizer with
its chat template, uploaded with huggingface_hub. One server (SQLite, no embedded models,
so it starts fast and a long context costs nothing) serves it; the last test restarts it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from huggingface_hub import HfApi

from tests.support.server import RunningServer, start_server
from tests.support.tiny_lm import build_tiny_lm

REPO = "admin/tiny-refined"
NAME = "tiny-refined"
ENV = {"DANLU_EMBEDDED_MODELS": "0", "DANLU_LLAMA_CONTEXT": "8192"}
ASK = [{"role": "user", "content": "What is a furnace for?"}]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, folder: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("danlu-transformers"), ENV)
    hub = HfApi(endpoint=running.url, token=running.admin_key)
    hub.create_repo(REPO, private=True)
    hub.upload_folder(folder_path=folder, repo_id=REPO)
    yield running
    running.stop()


def admin(server: RunningServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_key}"}


def serve(server: RunningServer, headers: dict[str, str], **body: Any) -> httpx.Response:
    return httpx.post(f"{server.api}/served-models", headers=headers, json=body, timeout=120)


def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.api, api_key=server.admin_key, max_retries=0)


def eos_bias(folder: Path) -> dict[str, float]:
    """Keeps the random model from ending early, so answers have the length asked for."""
    config = json.loads((folder / "config.json").read_text())
    return {str(config["eos_token_id"]): -100}


def prompt_tokens(folder: Path) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    text = tokenizer.apply_chat_template(ASK, add_generation_prompt=True, tokenize=False)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_serve_a_transformers_repo_and_chat_with_the_sdk(
    server: RunningServer, folder: Path
) -> None:
    created = serve(server, admin(server), repo=REPO, name=NAME)
    assert created.status_code == 201, created.text
    shown = created.json()
    assert shown["format"] == "transformers" and shown["file"] is None
    assert shown["models"] == [NAME] and len(shown["commit"]) == 40
    assert (server.home / "served" / shown["commit"] / "model.safetensors").is_file()
    sdk = client(server)
    listed = {m.id: m for m in sdk.models.list()}
    assert NAME in listed and listed[NAME].owned_by == "admin"

    ask: dict[str, Any] = {
        "model": NAME,
        "messages": ASK,
        "max_tokens": 9,
        "temperature": 0,
        "logit_bias": eos_bias(folder),
    }
    whole = sdk.chat.completions.create(**ask)
    assert whole.usage is not None
    assert whole.usage.prompt_tokens == prompt_tokens(folder)
    assert whole.usage.completion_tokens == 9 and whole.choices[0].finish_reason == "length"

    pieces, usage = [], None
    for chunk in sdk.chat.completions.create(
        **ask, stream=True, stream_options={"include_usage": True}
    ):
        if chunk.usage is not None:
            usage = chunk.usage
        pieces.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(pieces) == whole.choices[0].message.content
    assert usage is not None and usage.total_tokens == whole.usage.total_tokens

    text = sdk.completions.create(model=NAME, prompt="The furnace", max_tokens=3, seed=1)
    assert text.usage is not None and text.usage.completion_tokens <= 3

    with pytest.raises(openai.BadRequestError, match="context is 8192 tokens"):
        sdk.chat.completions.create(model=NAME, messages=ASK, max_tokens=9000)

    assert serve(server, admin(server), repo=REPO, name=NAME).status_code == 409
    listing = httpx.get(f"{server.api}/served-models", headers=admin(server), timeout=30)
    assert {"name": NAME, "repo": REPO, "format": "transformers", "file": None}.items() <= next(
        s for s in listing.json()["data"] if s["name"] == NAME
    ).items()


def test_a_client_that_leaves_stops_the_generation(server: RunningServer, folder: Path) -> None:
    def finished() -> dict[str, int]:
        return dict(server.health()["models"][NAME]["finished"])

    before = finished().get("cancelled", 0)
    stream = client(server).chat.completions.create(
        model=NAME,
        messages=ASK,
        max_tokens=8000,  # minutes of tokens, were it not stopped
        logit_bias=eos_bias(folder),
        stream=True,
    )
    for _, _chunk in zip(range(3), stream, strict=False):
        pass
    stream.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        stats = server.health()["models"][NAME]
        if stats["finished"].get("cancelled", 0) > before and stats["active"] == 0:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"generation was not cancelled: {server.health()['models'][NAME]}")


def upload(server: RunningServer, repo: str, files: dict[str, bytes]) -> None:
    hub = HfApi(endpoint=server.url, token=server.admin_key)
    hub.create_repo(repo, exist_ok=True)
    for path, data in files.items():
        hub.upload_file(path_or_fileobj=data, path_in_repo=path, repo_id=repo)


def test_repos_it_cannot_serve_get_clear_4xx(server: RunningServer, folder: Path) -> None:
    headers = admin(server)
    upload(server, "admin/card-only", {"README.md": b"# nothing to run\n"})
    empty = serve(server, headers, repo="admin/card-only")
    message = empty.json()["error"]["message"]
    assert empty.status_code == 400
    assert "no .gguf" in message and "config.json" in message and "safetensors" in message

    config = (folder / "config.json").read_bytes()
    tokenizer = (folder / "tokenizer.json").read_bytes()
    upload(
        server,
        "admin/pickled",
        {"config.json": config, "tokenizer.json": tokenizer, "pytorch_model.bin": b"\x80\x04."},
    )
    pickled = serve(server, headers, repo="admin/pickled")
    assert pickled.status_code == 400 and "pytorch_model.bin" in pickled.json()["error"]["message"]

    upload(
        server,
        "admin/broken",
        {
            "config.json": b'{"model_type": "no-such-architecture"}',
            "model.safetensors": (folder / "model.safetensors").read_bytes(),
            "tokenizer.json": tokenizer,
        },
    )
    broken = serve(server, headers, repo="admin/broken", name="broken")
    assert broken.status_code == 400 and "could not be served" in broken.json()["error"]["message"]
    assert "broken" not in {m.id for m in client(server).models.list()}
    staged = [p.name for p in (server.home / "served").iterdir()]
    assert len(staged) == 1, staged  # the served repo's snapshot; the broken one's is gone

    as_gguf = serve(server, headers, repo=REPO, format="gguf", name="nope")
    assert as_gguf.status_code == 400 and "no .gguf" in as_gguf.json()["error"]["message"]
    with_file = serve(server, headers, repo=REPO, format="transformers", file="x.gguf")
    assert with_file.status_code == 400 and with_file.json()["error"]["param"] == "file"
    as_what = serve(server, headers, repo=REPO, format="safetensors")
    assert as_what.status_code == 400

    plain = {"Authorization": f"Bearer {server.create_key('plain')}"}
    assert serve(server, plain, repo=REPO, name="mine").status_code == 403
    # An admin key that may not read the hub cannot learn that a private repo exists.
    blind = {"Authorization": f"Bearer {server.create_key('blind', '--scope', 'admin')}"}
    assert serve(server, blind, repo=REPO, name="blind").status_code == 404
    assert serve(server, headers, repo="admin/absent").status_code == 404


def test_served_repos_come_back_after_a_restart_and_stop_cleanly(
    server: RunningServer, folder: Path
) -> None:
    """Last in the module: it restarts the server (from the staged files or the blobs)."""
    listing = httpx.get(f"{server.api}/served-models", headers=admin(server), timeout=30)
    commit = next(s for s in listing.json()["data"] if s["name"] == NAME)["commit"]
    snapshot = server.home / "served" / commit
    server.stop()
    # Lost staged files are made again from the blob store; a crash's leftovers are swept.
    for path in sorted(snapshot.iterdir()):
        path.unlink()
    snapshot.rmdir()
    (server.home / "served" / ".staging-crashed").mkdir()
    again = start_server(server.home, ENV)
    server.process, server.port, server.admin_key = again.process, again.port, again.admin_key
    sdk = client(server)
    assert NAME in {m.id for m in sdk.models.list()}
    answer = sdk.chat.completions.create(model=NAME, messages=ASK, max_tokens=2)
    assert answer.usage is not None and answer.usage.prompt_tokens == prompt_tokens(folder)
    assert (snapshot / "config.json").is_file()
    assert not (server.home / "served" / ".staging-crashed").exists()

    stopped = httpx.delete(f"{server.api}/served-models/{NAME}", headers=admin(server), timeout=30)
    assert stopped.status_code == 204
    assert NAME not in {m.id for m in sdk.models.list()}
    assert not snapshot.exists()
