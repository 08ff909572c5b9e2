"""The `danlu` command, run as a real subprocess."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from danlu import __version__
from tests.support.server import danlu_cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DANLU_")}
    environment["DANLU_HOME"] = str(tmp_path / "home")
    return environment


def test_version_and_help(env: dict[str, str]) -> None:
    assert danlu_cli("--version", env=env).stdout.strip() == f"danlu, version {__version__}"
    help_text = danlu_cli("--help", env=env).stdout
    for command in ("serve", "doctor", "keys", "users"):
        assert command in help_text
    serve_help = danlu_cli("serve", "--help", env=env).stdout
    assert "--host" in serve_help and "--port" in serve_help and "--home" in serve_help


def test_doctor_reports_models_and_storage(env: dict[str, str]) -> None:
    result = danlu_cli("doctor", env=env)
    out = result.stdout
    assert "smollm2" not in out or "available" in out
    assert "embedded-chat" in out and "embedded-embeddings" in out
    assert "reachable" in out
    assert "All good." in out


def test_doctor_says_why_a_provider_cannot_run(env: dict[str, str], tmp_path: Path) -> None:
    providers = tmp_path / "providers.toml"
    providers.write_text(
        '[[providers]]\nname = "mine"\ntype = "llama_cpp"\n'
        'model_path = "/nowhere/model.gguf"\nmodel_name = "mine"\n'
    )
    env["DANLU_PROVIDERS_FILE"] = str(providers)
    result = danlu_cli("doctor", env=env, check=False)
    assert result.returncode == 1
    assert "/nowhere/model.gguf does not exist" in result.stdout


def test_malformed_providers_file_is_a_clear_error(env: dict[str, str], tmp_path: Path) -> None:
    providers = tmp_path / "providers.toml"
    providers.write_text(
        '[[providers]]\nname = "x"\ntype = "openai_compatible"\nbase_url = "not a url"\n'
    )
    env["DANLU_PROVIDERS_FILE"] = str(providers)
    result = danlu_cli("serve", "--port", "1", env=env, check=False)
    assert result.returncode != 0
    assert "provider 'x'" in result.stderr and "base_url" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_setting_is_a_clear_error(env: dict[str, str]) -> None:
    env["DANLU_PORT"] = "eighty"
    result = danlu_cli("doctor", env=env, check=False)
    assert result.returncode != 0 and "DANLU_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_keys_create_list_revoke(env: dict[str, str]) -> None:
    created = danlu_cli("keys", "create", "--name", "ci", env=env)
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("sk-danlu-")
    assert "admin" in created.stderr  # first use created the admin and said so
    admin_key = danlu_cli("keys", "create", "--name", "root", "--admin", env=env).stdout.strip()
    assert admin_key.startswith("sk-danlu-") and admin_key != key

    listing = danlu_cli("keys", "list", env=env).stdout
    assert "ci" in listing and "root" in listing and key not in listing and "active" in listing
    key_id = next(line.split()[1] for line in listing.splitlines() if " ci " in line)
    assert key_id.startswith("key_")
    assert "Revoked" in danlu_cli("keys", "revoke", key_id, env=env).stdout
    assert "revoked" in danlu_cli("keys", "list", env=env).stdout

    missing = danlu_cli("keys", "revoke", "key_nope", env=env, check=False)
    assert missing.returncode != 0 and "no API key" in missing.stderr


def test_keys_for_other_users(env: dict[str, str]) -> None:
    danlu_cli("users", "create", "lin", env=env)
    key = danlu_cli("keys", "create", "--name", "k", "--user", "lin", env=env).stdout.strip()
    assert key.startswith("sk-danlu-")
    refused = danlu_cli(
        "keys", "create", "--name", "k", "--user", "lin", "--admin", env=env, check=False
    )
    assert refused.returncode != 0 and "admin" in refused.stderr
    unknown = danlu_cli("keys", "create", "--name", "k", "--user", "ghost", env=env, check=False)
    assert unknown.returncode != 0 and "no user named 'ghost'" in unknown.stderr
    assert "lin" in danlu_cli("users", "list", env=env).stdout


def test_workspaces_and_roles(env: dict[str, str]) -> None:
    danlu_cli("users", "create", "fang", env=env)
    assert (
        "Created workspace"
        in danlu_cli("workspaces", "create", "studio", "--owner", "fang", env=env).stdout
    )
    danlu_cli("workspaces", "set-role", "studio", "admin", "viewer", env=env)
    members = danlu_cli("workspaces", "members", "studio", env=env).stdout.splitlines()
    assert members == ["fang\towner", "admin\tviewer"]
    bad_role = danlu_cli("workspaces", "set-role", "studio", "admin", "king", env=env, check=False)
    assert bad_role.returncode != 0 and "king" in bad_role.stderr
    taken = danlu_cli("workspaces", "create", "fang", env=env, check=False)
    assert taken.returncode != 0 and "already taken" in taken.stderr
    key = danlu_cli(
        "keys", "create", "--name", "team", "--user", "fang", "--workspace", "studio", env=env
    ).stdout.strip()
    assert key.startswith("sk-danlu-")
