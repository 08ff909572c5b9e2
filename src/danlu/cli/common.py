"""Helpers shared by the CLI commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from danlu.core import bootstrap
from danlu.core.bootstrap import Core
from danlu.core.errors import DanluError
from danlu.core.settings import Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def home_option(func: F) -> F:
    return click.option(
        "--home",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Data folder (default: $DANLU_HOME or ~/.danlu).",
    )(func)


def load_cli_settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except DanluError as exc:
        raise click.ClickException(exc.message) from exc


def open_core(home: Path | None) -> Core:
    """Open storage (migrating, creating the first admin) for a CLI command."""
    try:
        return bootstrap.open_core(
            load_cli_settings(home=home), announce=lambda message: click.echo(message, err=True)
        )
    except DanluError as exc:
        raise click.ClickException(exc.message) from exc
