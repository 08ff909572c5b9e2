"""Providers added at run time: through the admin API and the CLI, keys sealed at rest."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from danlu.core.db import Database
from danlu.core.errors import ConfigError
from danlu.core.secretbox import SecretBox
from danlu.gateway.tables import StoredProvider
from tests.support.fake_upstream import SECRET, FakeUpstream
from tests.support.server import RunningServer, free_port


def _admin(server: RunningServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.api,
        timeout=60,
        headers={"Authorization": f"Bearer {server.admin_key}"},
    )


def _served(server: RunningServer) -> set[str]:
    models = httpx.get(
        f"{server.api}/models", headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=30
    ).json()["data"]
    return {m["id"] for m in models}


def test_add_use_change_and_remove_a_provider(
    server: RunningServer, fake_upstream: FakeUpstream
) -> None:
    with _admin(server) as admin:
        presets = {p["name"]: p for p in admin.get("/admin/providers/presets").json()["data"]}
        assert {"dashscope", "deepseek", "moonshot", "zhipu", "openai", "vllm", "ollama"} <= set(
            presets
        )
        assert presets["deepseek"]["base_url"] == "https://api.deepseek.com/v1"

        created = admin.post(
            "/admin/providers",
            json={
                "name": "my-deepseek",
                "preset": "deepseek",
                "base_url": fake_upstream.base_url,  # the preset's URL, pointed at our fake
                "api_key": SECRET,
                "models": [{"name": "ds-chat", "upstream": "fake-reasoner"}],
            },
        )
        assert created.status_code == 201, created.text
        shown = created.json()
        assert shown["api_key"] == "ups…cret" and SECRET not in created.text
        assert shown["state"] == "ready" and shown["served_models"] == ["ds-chat"]

        client = openai.OpenAI(base_url=server.api, api_key=server.admin_key)
        answer = client.chat.completions.create(
            model="ds-chat", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.choices[0].message.content == "42"
        reasoning = answer.choices[0].message.reasoning_content  # type: ignore[attr-defined]
        assert reasoning == "Let me think. Done."
        assert fake_upstream.auth_headers[-1] == f"Bearer {SECRET}"
        assert fake_upstream.requests[-1]["model"] == "fake-reasoner"

        # A change that clashes with another provider's model is refused; the old one serves on.
        clash = admin.patch("/admin/providers/my-deepseek", json={"models": ["fake-chat"]})
        assert clash.status_code == 409, clash.text
        assert "ds-chat" in _served(server)
        changed = admin.patch(
            "/admin/providers/my-deepseek",
            json={"models": [{"name": "ds-chat-2", "upstream": "fake-chat"}]},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["served_models"] == ["ds-chat-2"]
        assert "ds-chat-2" in _served(server) and "ds-chat" not in _served(server)
        assert [p["name"] for p in admin.get("/admin/providers").json()["data"]] == ["my-deepseek"]

        for body, status, says in (
            ({"name": "my-deepseek", "preset": "deepseek"}, 409, "already exists"),
            ({"name": "x", "preset": "nope"}, 400, "no preset"),
            ({"name": "x"}, 400, "base_url"),
            ({"name": "bad name!", "base_url": fake_upstream.base_url}, 400, "letters"),
            ({"name": "fake", "base_url": fake_upstream.base_url}, 409, "already exists"),
            (
                # Nothing listed, so the models are discovered: from a port nobody listens on.
                {"name": "down", "base_url": f"http://127.0.0.1:{free_port()}/v1"},
                400,
                "could not be loaded",
            ),
        ):
            response = admin.post("/admin/providers", json=body)
            assert response.status_code == status, response.text
            assert says in response.json()["error"]["message"], response.text

        assert admin.delete("/admin/providers/my-deepseek").status_code == 204
        assert admin.delete("/admin/providers/my-deepseek").status_code == 404
        assert "ds-chat-2" not in _served(server) and "fake-chat" in _served(server)

    outsider = server.create_key("not-admin-providers")
    denied = httpx.get(
        f"{server.api}/admin/providers", headers={"Authorization": f"Bearer {outsider}"}
    )
    assert denied.status_code == 403


def test_the_cli_adds_providers_that_running_servers_pick_up(
    server: RunningServer, fake_upstream: FakeUpstream
) -> None:
    env_key = {"DANLU_PROVIDER_API_KEY": SECRET}
    added = server.cli(
        "providers",
        "add",
        "cli-qwen",
        "--preset",
        "dashscope",
        "--base-url",
        fake_upstream.base_url,
        "--model",
        "qwen-cli=fake-chat",
        env_extra=env_key,
    )
    assert '"api_key": "ups…cret"' in added.stdout
    deadline = time.monotonic() + 20
    while "qwen-cli" not in _served(server):
        assert time.monotonic() < deadline, "the server did not pick up the CLI's provider"
        time.sleep(0.5)
    listed = server.cli("providers", "list").stdout
    assert "cli-qwen" in listed and SECRET not in listed
    server.cli("providers", "remove", "cli-qwen")
    deadline = time.monotonic() + 20
    while "qwen-cli" in _served(server):
        assert time.monotonic() < deadline, "the server kept serving a removed provider"
        time.sleep(0.5)


def test_keys_are_sealed_at_rest(db: Database) -> None:
    box = SecretBox(b"server secret one")
    sealed = box.seal("sk-upstream-123456", context="deepseek")
    with db.write() as session:
        session.add(
            StoredProvider(
                name="deepseek",
                type="openai_compatible",
                options={"base_url": "https://api.deepseek.com/v1"},
                api_key_sealed=sealed,
                created_by="u",
            )
        )
    with db.read() as session:
        row = session.get(StoredProvider, "deepseek")
        assert row is not None and row.api_key_sealed is not None
    assert "sk-upstream" not in row.api_key_sealed
    assert box.open(row.api_key_sealed, context="deepseek") == "sk-upstream-123456"
    with pytest.raises(ConfigError, match="server secret"):
        SecretBox(b"another secret").open(row.api_key_sealed, context="deepseek")
    with pytest.raises(ConfigError):  # a sealed key moved to another provider's row
        box.open(row.api_key_sealed, context="moonshot")
