"""``danlu providers``: upstream providers kept in the database (running servers pick them up)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from danlu.cli.common import home_option, load_cli_settings, open_core
from danlu.core.errors import DanluError
from danlu.core.secretbox import SecretBox


@click.group()
def providers() -> None:
    """Add, list and remove upstream providers (DashScope, DeepSeek, vLLM, Ollama …).

    Providers added here are stored with their API keys encrypted; every running
    `danlu serve` on the same database starts serving them within seconds.
    """


def _with_store(home: Path | None, action: Any) -> Any:
    """Run ``action(store)`` against a registry of its own (nothing local is loaded)."""
    from danlu.gateway.provider_store import ProviderStore
    from danlu.gateway.registry import ModelRegistry

    settings = load_cli_settings(home=home, embedded_models=False)
    core = open_core(home)
    registry = ModelRegistry(_types(), [], settings)

    async def run() -> Any:
        store = ProviderStore(core.db, SecretBox(core.secret), registry)
        try:
            return await action(store)
        finally:
            await registry.aclose()

    try:
        return asyncio.run(run())
    except DanluError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        core.close()


def _types() -> dict[str, Any]:
    from danlu.gateway.providers.openai_compatible import OpenAICompatibleProvider

    return {OpenAICompatibleProvider.type: OpenAICompatibleProvider}


@providers.command("presets")
def presets() -> None:
    """Known providers, with their base URLs and usual models."""
    from rich.console import Console
    from rich.table import Table

    from danlu.gateway.presets import PRESETS

    table = Table("preset", "provider", "base URL", "models")
    for preset in PRESETS.values():
        models = ", ".join(m if isinstance(m, str) else m["name"] for m in preset.models)
        table.add_row(preset.name, preset.title, preset.base_url, models or "(discovered)")
    Console().print(table)


@providers.command("list")
@home_option
def listing(home: Path | None) -> None:
    """Providers added with this command or the API (keys shown masked)."""
    from rich.console import Console
    from rich.table import Table

    async def action(store: Any) -> list[dict[str, Any]]:
        return [store.describe(row) for row in store.rows()]

    table = Table("name", "preset", "base URL", "models", "key")
    for item in _with_store(home, action):
        models = ", ".join(m if isinstance(m, str) else m["name"] for m in item.get("models", []))
        table.add_row(
            item["name"], item["preset"] or "", item["base_url"], models, item["api_key"] or ""
        )
    Console().print(table)


@providers.command("add")
@home_option
@click.argument("name")
@click.option("--preset", default=None, help="dashscope, deepseek, moonshot, zhipu, openai, …")
@click.option("--base-url", default=None, help="The API's base URL (default: the preset's).")
@click.option(
    "--api-key",
    default=None,
    envvar="DANLU_PROVIDER_API_KEY",
    help="The upstream key (or set DANLU_PROVIDER_API_KEY); stored encrypted.",
)
@click.option(
    "--model",
    "--models",
    "models",
    multiple=True,
    help="Models to serve: repeat, or separate with commas; 'served=upstream' renames. "
    "Default: the preset's.",
)
def add(
    home: Path | None,
    name: str,
    preset: str | None,
    base_url: str | None,
    api_key: str | None,
    models: tuple[str, ...],
) -> None:
    """Add a provider: it is loaded once to check it, then stored."""
    from danlu.gateway.provider_store import build_options

    chosen: list[Any] | None = None
    models = tuple(m.strip() for group in models for m in group.split(",") if m.strip())
    if models:
        chosen = [
            {"name": m.split("=", 1)[0], "upstream": m.split("=", 1)[1]} if "=" in m else m
            for m in models
        ]

    async def action(store: Any) -> dict[str, Any]:
        options = build_options(preset, base_url=base_url, models=chosen)
        row = await store.create(name, options, api_key=api_key, preset=preset, created_by="cli")
        return dict(store.describe(row))

    added = _with_store(home, action)
    click.echo(json.dumps(added, ensure_ascii=False, indent=2))


@providers.command("remove")
@home_option
@click.argument("name")
def remove(home: Path | None, name: str) -> None:
    """Remove a provider; servers stop serving its models within seconds."""

    async def action(store: Any) -> None:
        await store.delete(name)

    _with_store(home, action)
    click.echo(f"Removed provider {name}.", err=True)
