"""The ``danlu`` command."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from danlu import __version__
from danlu.cli.billing import codes, credits
from danlu.cli.common import home_option, load_cli_settings, open_core
from danlu.cli.hub import hub
from danlu.cli.providers import providers
from danlu.cli.refine import refine
from danlu.core.errors import DanluError
from danlu.core.tables import Role


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="danlu")
def cli() -> None:
    """danlu 丹炉 — a self-hosted AI application platform.

    Start with `danlu serve`, then `danlu keys create --name me` for an API key.
    """


@cli.command()
@home_option
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8000).")
def serve(home: Path | None, host: str | None, port: int | None) -> None:
    """Run the server: API, gateway and embedded models."""
    import uvicorn

    from danlu.api.app import create_app

    settings = load_cli_settings(home=home, host=host, port=port)
    try:
        app = create_app(settings)
    except DanluError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(
        f"danlu {__version__}: data in {settings.home}, serving http://{settings.host}:{settings.port}",
        err=True,
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
    )


@cli.command()
@home_option
@click.option(
    "--settings-markdown", is_flag=True, help="Print the settings reference (docs/settings.md)."
)
def doctor(home: Path | None, settings_markdown: bool) -> None:
    """Show settings, storage and which models can run here, and why not."""
    from danlu.cli.doctor import run_doctor
    from danlu.core.settings import settings_markdown as markdown

    if settings_markdown:
        click.echo(markdown(), nl=False)
        return
    sys.exit(run_doctor(load_cli_settings(home=home)))


@cli.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@home_option
@click.option("--name", required=True, help="A label to tell this key apart.")
@click.option(
    "--user", "username", default="admin", show_default=True, help="The user the key acts for."
)
@click.option(
    "--workspace", default=None, help="Workspace the key acts in (default: the user's own)."
)
@click.option("--admin", is_flag=True, help="Add the 'admin' scope (the user must be an admin).")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="A scope; repeat for several. Default: inference, hub:read, hub:write.",
)
@click.option(
    "--expires-in", type=float, default=None, help="Days until the key expires (default: never)."
)
def keys_create(
    home: Path | None,
    name: str,
    username: str,
    workspace: str | None,
    admin: bool,
    scopes: tuple[str, ...],
    expires_in: float | None,
) -> None:
    """Create a key. The key itself is the last line printed, and is shown only once."""
    from danlu.core.keys import Scope

    core = open_core(home)
    chosen = list(scopes) or list(Scope.DEFAULT)
    if admin:
        chosen.append(Scope.ADMIN)
    expires_at = datetime.now(UTC) + timedelta(days=expires_in) if expires_in else None
    try:
        user = core.accounts.user(username)
        ws = core.accounts.workspace(workspace) if workspace else None
        view, secret = core.keys.create(
            user, name, scopes=chosen, expires_at=expires_at, workspace=ws
        )
    except DanluError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        core.close()
    click.echo(
        f"Created key {view.id} ({view.name}) for {view.username} in {view.workspace}", err=True
    )
    click.echo(f"scopes: {', '.join(view.scopes)}; expires: {view.expires_at or 'never'}", err=True)
    click.echo("Copy it now; it cannot be shown again:", err=True)
    click.echo(secret)


@keys.command("list")
@home_option
@click.option("--user", "username", default=None, help="Only this user's keys.")
def keys_list(home: Path | None, username: str | None) -> None:
    """List keys (never their secrets)."""
    from rich.console import Console
    from rich.table import Table

    core = open_core(home)
    try:
        user_id = core.accounts.user(username).id if username else None
        views = core.keys.list(user_id)
    except DanluError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        core.close()
    table = Table("id", "name", "prefix", "user", "scopes", "status", "created", "last used")
    for view in views:
        table.add_row(
            view.id,
            view.name,
            view.prefix + "…",
            view.username,
            ",".join(view.scopes),
            view.status,
            view.created_at.strftime("%Y-%m-%d %H:%M"),
            view.last_used_at.strftime("%Y-%m-%d %H:%M") if view.last_used_at else "-",
        )
    Console(width=160).print(table)


@keys.command("revoke")
@home_option
@click.argument("key_id")
def keys_revoke(home: Path | None, key_id: str) -> None:
    """Revoke a key by its id (see `danlu keys list`)."""
    core = open_core(home)
    try:
        view = core.keys.revoke(key_id)
    except DanluError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        core.close()
    click.echo(f"Revoked {view.id} ({view.name}).")


@cli.group()
def users() -> None:
    """Create and list users."""


@users.command("create")
@home_option
@click.argument("username")
@click.option("--password", default=None, help="Sign-in password (default: none; API keys only).")
@click.option("--admin", is_flag=True, help="Make the user a site admin.")
def users_create(home: Path | None, username: str, password: str | None, admin: bool) -> None:
    """Create a user with a personal workspace named after them."""
    core = open_core(home)
    try:
        user = core.accounts.create_user(username, password, is_admin=admin)
    except DanluError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        core.close()
    click.echo(f"Created user {user.username}{' (admin)' if user.is_admin else ''}.")


@users.command("list")
@home_option
def users_list(home: Path | None) -> None:
    """List users."""
    core = open_core(home)
    try:
        everyone = core.accounts.users()
    finally:
        core.close()
    for user in everyone:
        flags = " admin" if user.is_admin else ""
        flags += " disabled" if user.disabled else ""
        click.echo(f"{user.username}\t{user.created_at:%Y-%m-%d}{flags}")


@cli.group()
def workspaces() -> None:
    """Create team workspaces and set members' roles."""


@workspaces.command("create")
@home_option
@click.argument("slug")
@click.option("--owner", default="admin", show_default=True, help="The user who owns it.")
@click.option("--name", default="", help="Display name (default: the slug).")
def workspaces_create(home: Path | None, slug: str, owner: str, name: str) -> None:
    """Create a workspace; SLUG becomes its namespace (owner/name in the hub)."""
    core = open_core(home)
    try:
        workspace = core.accounts.create_workspace(slug, name, core.accounts.user(owner))
    except DanluError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        core.close()
    click.echo(f"Created workspace {workspace.slug}, owned by {owner}.")


@workspaces.command("set-role")
@home_option
@click.argument("slug")
@click.argument("username")
@click.argument("role", type=click.Choice([r.value for r in Role]))
def workspaces_set_role(home: Path | None, slug: str, username: str, role: str) -> None:
    """Add USERNAME to workspace SLUG with ROLE, or change their role."""
    core = open_core(home)
    try:
        core.accounts.set_role(
            core.accounts.workspace(slug), core.accounts.user(username), Role(role)
        )
    except DanluError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        core.close()
    click.echo(f"{username} is now {role} of {slug}.")


@workspaces.command("members")
@home_option
@click.argument("slug")
def workspaces_members(home: Path | None, slug: str) -> None:
    """List a workspace's members and their roles."""
    core = open_core(home)
    try:
        members = core.accounts.members(core.accounts.workspace(slug))
    except DanluError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        core.close()
    for username, role in members:
        click.echo(f"{username}\t{role.value}")


cli.add_command(hub)
cli.add_command(providers)
cli.add_command(credits)
cli.add_command(codes)
cli.add_command(refine)


def main() -> None:
    cli()
