"""``danlu credits`` and ``danlu codes``: credit grants (抵扣金) and redemption codes (兑换码)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from danlu.cli.common import home_option, open_core
from danlu.core.errors import DanluError


@click.group()
def credits() -> None:
    """Grant credit to a workspace, top up its balance, or show its funds."""


@credits.command("grant")
@home_option
@click.argument("workspace")
@click.argument("amount")
@click.option("--days", type=int, default=None, help="Days the credit stays valid (default: ever).")
@click.option("--note", default="", help="Why (e.g. 'startup programme').")
def grant(home: Path | None, workspace: str, amount: str, days: int | None, note: str) -> None:
    """Grant AMOUNT yuan of credit to WORKSPACE (its slug); spent before the paid balance."""
    from danlu.billing import Billing
    from danlu.billing.money import format_yuan, yuan_to_units

    core = open_core(home)
    try:
        made = Billing(core.db).wallets.grant(
            core.accounts.workspace(workspace).id,
            yuan_to_units(amount),
            valid_days=days,
            note=note,
        )
    except DanluError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        core.close()
    until = made.expires_at.date().isoformat() if made.expires_at else "no expiry"
    click.echo(f"Granted {format_yuan(made.amount)} to {workspace} ({until}).")


@credits.command("top-up")
@home_option
@click.argument("workspace")
@click.argument("amount")
def top_up(home: Path | None, workspace: str, amount: str) -> None:
    """Add AMOUNT yuan to WORKSPACE's paid balance."""
    from danlu.billing import Billing
    from danlu.billing.money import format_yuan, yuan_to_units

    core = open_core(home)
    try:
        funds = Billing(core.db).wallets.top_up(
            core.accounts.workspace(workspace).id, yuan_to_units(amount)
        )
    except DanluError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        core.close()
    click.echo(
        f"{workspace}: balance {format_yuan(funds.balance)}, credit {format_yuan(funds.credit)}"
    )


@credits.command("show")
@home_option
@click.argument("workspace")
def show(home: Path | None, workspace: str) -> None:
    """WORKSPACE's balance, credits, holds and what a call may use."""
    from danlu.billing import Billing
    from danlu.billing.money import format_yuan

    core = open_core(home)
    try:
        funds = Billing(core.db).wallets.funds(core.accounts.workspace(workspace).id)
    except DanluError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        core.close()
    for label, units in (
        ("balance", funds.balance),
        ("credit", funds.credit),
        ("held", funds.held),
        ("available", funds.available),
    ):
        click.echo(f"{label:10s} {format_yuan(units)}")


@click.group()
def codes() -> None:
    """Make, list and disable redemption codes."""


@codes.command("create")
@home_option
@click.argument("amount")
@click.option(
    "--uses", type=int, default=1, show_default=True, help="How many workspaces may redeem it."
)
@click.option("--credit-days", type=int, default=None, help="Days the credit lasts once redeemed.")
@click.option("--expires-in", type=float, default=None, help="Days the code itself stays valid.")
@click.option("--note", default="")
def create(
    home: Path | None,
    amount: str,
    uses: int,
    credit_days: int | None,
    expires_in: float | None,
    note: str,
) -> None:
    """Make a code worth AMOUNT yuan of credit. The code is the last line printed, once."""
    from danlu.billing import Billing
    from danlu.billing.money import format_yuan, yuan_to_units

    core = open_core(home)
    expires = datetime.now(UTC) + timedelta(days=expires_in) if expires_in else None
    try:
        view, code = Billing(core.db).codes.create(
            yuan_to_units(amount),
            expires_at=expires,
            credit_days=credit_days,
            max_redemptions=uses,
            note=note,
        )
    except DanluError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        core.close()
    click.echo(f"Code {view.id}: {format_yuan(view.amount)}, {uses} use(s); shown once:", err=True)
    click.echo(code)


@codes.command("list")
@home_option
def listing(home: Path | None) -> None:
    """Codes with their state (never the codes themselves)."""
    from rich.console import Console
    from rich.table import Table

    from danlu.billing import Billing
    from danlu.billing.money import format_yuan

    core = open_core(home)
    try:
        views = Billing(core.db).codes.list()
    finally:
        core.close()
    table = Table("id", "prefix", "amount", "status", "redeemed", "note")
    for view in views:
        table.add_row(
            view.id,
            view.prefix,
            format_yuan(view.amount),
            view.status,
            f"{view.redeemed_count}/{view.max_redemptions}",
            view.note,
        )
    Console().print(table)
