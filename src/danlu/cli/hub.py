"""``danlu hub``: bring models and datasets into the hub from disk or from another hub."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from danlu.cli.common import home_option, open_core
from danlu.core.errors import DanluError
from danlu.hub.commits import Committer
from danlu.hub.repos import Repos
from danlu.hub.tables import RepoType
from danlu.hub.transfer import import_path as import_files
from danlu.hub.transfer import mirror, plan_import

_TYPES = click.Choice([t.value for t in RepoType])


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )


def _hub(core: Any) -> tuple[Repos, Committer]:
    repos = Repos(core.db)
    return repos, Committer(
        core.db, core.blobs, repos, max_file_bytes=core.settings.hub_max_file_bytes
    )


def _protocol(choice: str, endpoint: str) -> str:
    if choice != "auto":
        return choice
    return "modelscope" if "modelscope" in endpoint.lower() else "huggingface"


@click.group()
def hub() -> None:
    """Import and mirror models and datasets."""


@hub.command("import")
@home_option
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--repo", "repo_id", required=True, help="Target repo, owner/name (created if missing)."
)
@click.option("--type", "repo_type", type=_TYPES, default="model", show_default=True)
@click.option("--user", "username", default="admin", show_default=True, help="Who commits.")
@click.option("--private", is_flag=True, help="Create the repo as private.")
@click.option("--message", default=None, help="Commit message.")
def import_command(
    home: Path | None,
    path: Path,
    repo_id: str,
    repo_type: str,
    username: str,
    private: bool,
    message: str | None,
) -> None:
    """Import a local folder, or a single file such as a GGUF, as one commit."""
    core = open_core(home)
    try:
        user = core.accounts.user(username)
        principal = core.keys.local_principal(user, core.accounts.personal_workspace(user))
        total = sum(item.size for _, item in plan_import(path))
        repos, committer = _hub(core)
        with _progress() as bar:
            task = bar.add_task(f"import {path.name}", total=total)
            done = import_files(
                repos,
                committer,
                core.blobs,
                principal,
                path,
                repo_id,
                repo_type=RepoType(repo_type),
                private=private,
                message=message,
                progress=lambda n: bar.advance(task, n),
            )
    except DanluError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        core.close()
    click.echo(f"Imported {path} into {repo_id} as commit {done.id}.")


@hub.command("mirror")
@home_option
@click.argument("source")
@click.option(
    "--from",
    "endpoint",
    required=True,
    help="The upstream hub: https://huggingface.co, another danlu's URL, a mirror…",
)
@click.option("--repo", "target", default=None, help="Target repo (default: same as SOURCE).")
@click.option("--type", "repo_type", type=_TYPES, default="model", show_default=True)
@click.option(
    "--revision", default=None, help="Branch, tag or commit (default: main; master for ModelScope)."
)
@click.option(
    "--protocol",
    type=click.Choice(["auto", "huggingface", "modelscope"]),
    default="auto",
    show_default=True,
    help="The upstream's protocol; auto picks modelscope for modelscope.cn URLs.",
)
@click.option(
    "--token",
    envvar="DANLU_MIRROR_TOKEN",
    default=None,
    help="Token for the upstream (or DANLU_MIRROR_TOKEN).",
)
@click.option("--user", "username", default="admin", show_default=True, help="Who commits.")
@click.option("--private", is_flag=True, help="Create the repo as private.")
def mirror_command(
    home: Path | None,
    source: str,
    endpoint: str,
    target: str | None,
    repo_type: str,
    revision: str | None,
    protocol: str,
    token: str | None,
    username: str,
    private: bool,
) -> None:
    """Copy SOURCE (owner/name) at a revision from an upstream hub into this one."""
    core = open_core(home)
    try:
        user = core.accounts.user(username)
        principal = core.keys.local_principal(user, core.accounts.personal_workspace(user))
        repos, committer = _hub(core)
        with _progress() as bar:
            task = bar.add_task(f"mirror {source}", total=None)
            done = mirror(
                repos,
                committer,
                core.blobs,
                principal,
                endpoint,
                source,
                target or source,
                repo_type=RepoType(repo_type),
                revision=revision,
                token=token,
                protocol=_protocol(protocol, endpoint),
                private=private,
                progress=lambda n: bar.advance(task, n),
                on_total=lambda total: bar.update(task, total=total),
            )
    except DanluError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        core.close()
    click.echo(
        f"Mirrored {source}@{revision or 'default branch'} from {endpoint} "
        f"into {target or source} as commit {done.id}."
    )
