"""Billing tables: prices, wallets, credit grants, redemption codes, holds and the ledger.

Money columns are BigInteger micro-yuan (1 yuan = 1,000,000). The money state is
``wallets`` + ``credit_grants`` (+ ``billing_reservations`` for holds in flight);
``usage_records`` is the record of what happened, written in batches off the hot
path, and never read to decide whether a call may run.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from danlu.core.tables import Base, UTCDateTime, utcnow

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64 bits for the ledger.
_LedgerId = BigInteger().with_variant(Integer(), "sqlite")


class ModelPrice(Base):
    """What a model costs, in micro-yuan per million tokens. No row: not billable."""

    __tablename__ = "model_prices"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    input_price: Mapped[int] = mapped_column(BigInteger, default=0)
    cached_input_price: Mapped[int] = mapped_column(BigInteger, default=0)
    output_price: Mapped[int] = mapped_column(BigInteger, default=0)
    free: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Wallet(Base):
    """A workspace's paid balance and the sum of its outstanding holds.

    Every change to a workspace's money first locks this row, so holds, charges
    and grant spending for one workspace happen one at a time across processes.
    """

    __tablename__ = "wallets"
    __table_args__ = (
        # A last line of defence: a bug that would overspend fails its transaction instead.
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        CheckConstraint("held >= 0", name="held_not_negative"),
    )

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    held: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CreditGrant(Base):
    """抵扣金: credit spent before the paid balance, earliest expiry first."""

    __tablename__ = "credit_grants"
    __table_args__ = (
        # 'free_quota' once per workspace, 'code:<id>' once per workspace and code;
        # NULL (plain grants) never collides.
        UniqueConstraint("workspace_id", "once_key", name="uq_credit_grants_workspace_once"),
        CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_in_range"),
        Index("ix_credit_grants_workspace_expires", "workspace_id", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    source: Mapped[str] = mapped_column(String(16))  # free_quota, grant, redemption
    note: Mapped[str] = mapped_column(Text, default="")
    once_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    code_id: Mapped[str | None] = mapped_column(
        ForeignKey("redemption_codes.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RedemptionCode(Base):
    """兑换码: a code worth ``amount`` of credit, stored only as its SHA-256."""

    __tablename__ = "redemption_codes"
    __table_args__ = (
        CheckConstraint("redeemed_count <= max_redemptions", name="within_max_redemptions"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters, so people can tell codes apart in listings.
    prefix: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # How long the credit it grants lasts; NULL: it never expires.
    credit_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_redemptions: Mapped[int] = mapped_column(Integer, default=1)
    redeemed_count: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class BillingReservation(Base):
    """A hold on a workspace's funds for one call in flight, until settled or released."""

    __tablename__ = "billing_reservations"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        # Finding stale holds (a crashed server's) without scanning settled ones.
        Index("ix_billing_reservations_state_created", "state", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    request_id: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    model: Mapped[str] = mapped_column(String(200))
    amount: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), default="held")  # held, settled, released
    charged: Mapped[int] = mapped_column(BigInteger, default=0)
    shortfall: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class UsageRecord(Base):
    """One row per request: the ledger that reports and exports read.

    No foreign keys: a financial record outlives the key, user or workspace it names.
    """

    __tablename__ = "usage_records"
    __table_args__ = (Index("ix_usage_records_workspace_created", "workspace_id", "created_at"),)

    id: Mapped[int] = mapped_column(_LedgerId, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    workspace_id: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    model: Mapped[str] = mapped_column(String(200))
    deployment: Mapped[str | None] = mapped_column(String(200), nullable=True)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    # cost: the price of the tokens; shortfall: the part of it not collected.
    cost: Mapped[int] = mapped_column(BigInteger, default=0)
    shortfall: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16))
    latency_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ttft_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
