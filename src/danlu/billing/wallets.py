"""Wallets (a workspace's paid balance) and credit grants (抵扣金), and how money moves.

The rule that keeps money exact across several server processes: **every change
that spends a workspace's money, or holds it, first locks the workspace's wallet
row** (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
already admits one writer at a time). Adding money (top-ups, grants) needs no
lock: it can only make a concurrent check too cautious, never too generous.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Result, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from danlu.billing.tables import CreditGrant, Wallet
from danlu.core.db import Database
from danlu.core.errors import InvalidRequest, NotFound
from danlu.core.ids import new_id
from danlu.core.tables import Workspace, utcnow

SOURCES = ("free_quota", "grant", "redemption")
FREE_QUOTA_KEY = "free_quota"


@dataclass(frozen=True)
class Grant:
    id: str
    workspace_id: str
    amount: int
    remaining: int
    expires_at: datetime | None
    source: str
    note: str
    created_at: datetime

    def usable(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        return self.remaining > 0 and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True)
class Funds:
    """A workspace's money at one moment, in micro-yuan."""

    workspace_id: str
    balance: int  # paid
    credit: int  # unexpired grants' remaining amounts
    held: int  # holds of calls in flight
    grants: tuple[Grant, ...] = ()

    @property
    def available(self) -> int:
        """What a new call may hold: can be negative if a grant expired under a hold."""
        return self.balance + self.credit - self.held


class Wallets:
    """Balances, top-ups and credit grants of workspaces."""

    def __init__(self, db: Database):
        self.db = db

    def funds(self, workspace_id: str) -> Funds:
        now = utcnow()
        with self.db.read() as session:
            wallet = session.get(Wallet, workspace_id)
            rows = session.scalars(
                select(CreditGrant)
                .where(CreditGrant.workspace_id == workspace_id)
                .order_by(*spending_order())
            ).all()
        grants = tuple(_grant(row) for row in rows)
        return Funds(
            workspace_id=workspace_id,
            balance=wallet.balance if wallet else 0,
            credit=sum(g.remaining for g in grants if g.usable(now)),
            held=wallet.held if wallet else 0,
            grants=grants,
        )

    def top_up(self, workspace_id: str, amount: int) -> Funds:
        """Add paid balance (after a payment, or by an admin)."""
        _check_amount(amount)
        with self.db.write() as session:
            ensure_wallet(session, workspace_id)
            session.execute(
                update(Wallet)
                .where(Wallet.workspace_id == workspace_id)
                .values(balance=Wallet.balance + amount, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
        return self.funds(workspace_id)

    def grant(
        self,
        workspace_id: str,
        amount: int,
        *,
        expires_at: datetime | None = None,
        valid_days: int | None = None,
        source: str = "grant",
        note: str = "",
    ) -> Grant:
        """Give a workspace credit, spent before its paid balance."""
        with self.db.write() as session:
            return add_grant(
                session,
                workspace_id,
                amount,
                expires_at=_expiry(expires_at, valid_days),
                source=source,
                note=note,
            )

    def grant_free_quota(
        self, workspace_id: str, amount: int, *, valid_days: int | None = None, note: str = ""
    ) -> Grant | None:
        """A new workspace's free quota; ``None`` if it already had it (once per workspace)."""
        try:
            with self.db.write() as session:
                taken = session.scalar(
                    select(CreditGrant.id).where(
                        CreditGrant.workspace_id == workspace_id,
                        CreditGrant.once_key == FREE_QUOTA_KEY,
                    )
                )
                if taken is not None:
                    return None
                return add_grant(
                    session,
                    workspace_id,
                    amount,
                    expires_at=_expiry(None, valid_days),
                    source="free_quota",
                    note=note or "free quota for a new workspace",
                    once_key=FREE_QUOTA_KEY,
                )
        except IntegrityError:
            return None  # another process granted it at the same moment

    def grants(self, workspace_id: str) -> list[Grant]:
        """Every grant, in the order they are spent (spent and expired ones included)."""
        return list(self.funds(workspace_id).grants)


# The money protocol, shared by holds and redemption: functions on an open write session.


def spending_order() -> tuple[ColumnElement[Any], ...]:
    """Earliest expiry first, grants that never expire last, then oldest first."""
    return (
        CreditGrant.expires_at.asc().nulls_last(),
        CreditGrant.created_at.asc(),
        CreditGrant.id.asc(),
    )


def usable_grants(workspace_id: str, now: datetime) -> ColumnElement[bool]:
    return and_(
        CreditGrant.workspace_id == workspace_id,
        CreditGrant.remaining > 0,
        or_(CreditGrant.expires_at.is_(None), CreditGrant.expires_at > now),
    )


def ensure_wallet(session: Session, workspace_id: str) -> None:
    """Create the wallet row if missing, racing other processes harmlessly."""
    if session.get(Workspace, workspace_id) is None:
        raise NotFound(f"no workspace with id {workspace_id!r}", param="workspace")
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(Wallet)
        .values(workspace_id=workspace_id, balance=0, held=0, updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["workspace_id"])
    )


def lock_wallet(session: Session, workspace_id: str) -> tuple[int, int]:
    """Lock the workspace's wallet row (creating it) until commit; its (balance, held).

    On PostgreSQL the lock is what makes the next statements exact: under READ
    COMMITTED an ``UPDATE`` that waited for a concurrent transaction re-checks only
    the row it updates, with a stale view of every other table (the grants). Once
    this lock is held, each later statement of the transaction starts with a fresh
    view, and no one else can spend or hold this workspace's money meanwhile.
    """
    query = (
        select(Wallet.balance, Wallet.held)
        .where(Wallet.workspace_id == workspace_id)
        .with_for_update()  # ignored by SQLite, which already serializes writers
    )
    row = session.execute(query).first()
    if row is None:
        ensure_wallet(session, workspace_id)
        row = session.execute(query).first()
        assert row is not None
    return int(row[0]), int(row[1])


def credit_total(workspace_id: str, now: datetime) -> Any:
    """The unexpired credit of a workspace, as a scalar subquery."""
    return (
        select(func.coalesce(func.sum(CreditGrant.remaining), 0))
        .where(usable_grants(workspace_id, now))
        .scalar_subquery()
    )


def available_now(session: Session, workspace_id: str, now: datetime) -> int:
    balance, held = session.execute(
        select(Wallet.balance, Wallet.held).where(Wallet.workspace_id == workspace_id)
    ).one()
    credit = session.scalar(select(credit_total(workspace_id, now)))
    return int(balance) + int(credit or 0) - int(held)


def spend(session: Session, workspace_id: str, amount: int, *, balance: int, now: datetime) -> int:
    """Take ``amount`` from unexpired grants (earliest expiry first), then the balance.

    Call with the wallet locked (``balance`` as :func:`lock_wallet` read it).
    Returns what was taken: less than ``amount`` only if the funds ran out (a
    grant expired while its call ran), never below zero anywhere.
    """
    left = amount
    if left > 0:
        grants = session.execute(
            select(CreditGrant.id, CreditGrant.remaining)
            .where(usable_grants(workspace_id, now))
            .order_by(*spending_order())
        ).all()
        for grant_id, remaining in grants:
            take = min(int(remaining), left)
            taken = session.execute(
                update(CreditGrant)
                .where(CreditGrant.id == grant_id, CreditGrant.remaining >= take)
                .values(remaining=CreditGrant.remaining - take)
                .execution_options(synchronize_session=False)
            )
            if rowcount(taken) != 1:  # impossible while the wallet is locked
                raise RuntimeError(f"credit grant {grant_id} changed under a wallet lock")
            left -= take
            if left == 0:
                break
    from_balance = min(balance, left)
    if from_balance:
        taken = session.execute(
            update(Wallet)
            .where(Wallet.workspace_id == workspace_id, Wallet.balance >= from_balance)
            .values(balance=Wallet.balance - from_balance, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if rowcount(taken) != 1:
            raise RuntimeError(f"the wallet of {workspace_id} changed under its lock")
    return amount - left + from_balance


def add_grant(
    session: Session,
    workspace_id: str,
    amount: int,
    *,
    expires_at: datetime | None,
    source: str,
    note: str = "",
    once_key: str | None = None,
    code_id: str | None = None,
) -> Grant:
    _check_amount(amount)
    if source not in SOURCES:
        raise InvalidRequest(f"a grant's source is one of {list(SOURCES)}", param="source")
    if session.get(Workspace, workspace_id) is None:
        raise NotFound(f"no workspace with id {workspace_id!r}", param="workspace")
    row = CreditGrant(
        id=new_id("grt"),
        workspace_id=workspace_id,
        amount=amount,
        remaining=amount,
        expires_at=expires_at,
        source=source,
        note=note,
        once_key=once_key,
        code_id=code_id,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return _grant(row)


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE/DELETE touched (typed: Session.execute hides it)."""
    return cast(CursorResult[Any], result).rowcount


def _expiry(expires_at: datetime | None, valid_days: int | None) -> datetime | None:
    if expires_at is not None and valid_days is not None:
        raise InvalidRequest("give expires_at or valid_days, not both", param="valid_days")
    if valid_days is not None:
        if valid_days <= 0:
            raise InvalidRequest("valid_days must be positive", param="valid_days")
        return utcnow() + timedelta(days=valid_days)
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidRequest("expires_at must be in the future", param="expires_at")
    return expires_at


def _check_amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidRequest(
            f"an amount is a positive int of micro-yuan (¥1 = 1000000), not {amount!r}; "
            "parse yuan with danlu.billing.yuan_to_units",
            param="amount",
        )


def _grant(row: CreditGrant) -> Grant:
    return Grant(
        id=row.id,
        workspace_id=row.workspace_id,
        amount=row.amount,
        remaining=row.remaining,
        expires_at=row.expires_at,
        source=row.source,
        note=row.note,
        created_at=row.created_at,
    )
