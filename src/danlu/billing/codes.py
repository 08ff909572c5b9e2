"""Redemption codes (兑换码): a code turns into a credit grant for the workspace that redeems it.

Codes are stored only as SHA-256, like API keys: 100 random bits make a fast
hash safe, and a leaked table gives nobody a code to redeem. A workspace can
redeem a code once, and a code at most ``max_redemptions`` times; both hold
under concurrency (a unique constraint and a conditional ``UPDATE``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from danlu.billing.tables import CreditGrant, RedemptionCode
from danlu.billing.wallets import Grant, add_grant, rowcount
from danlu.core.db import Database
from danlu.core.errors import Conflict, InvalidRequest, NotFound
from danlu.core.ids import new_id
from danlu.core.tables import utcnow

CODE_PREFIX = "DL"
# Crockford-like: no 0/O or 1/I/L to misread when a code is typed from a card.
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_GROUPS, _GROUP_LEN = 5, 4  # 20 characters: about 99 bits


def normalize_code(code: str) -> str:
    """What was typed → what is hashed: case, spaces and dashes do not matter."""
    return "".join(ch for ch in code.upper() if ch not in " -\t\n")


def hash_code(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def _new_code() -> str:
    groups = ("".join(secrets.choice(_ALPHABET) for _ in range(_GROUP_LEN)) for _ in range(_GROUPS))
    return "-".join((CODE_PREFIX, *groups))


@dataclass(frozen=True)
class CodeView:
    """A code as listings show it: never the code itself."""

    id: str
    prefix: str
    amount: int
    expires_at: datetime | None
    credit_days: int | None
    max_redemptions: int
    redeemed_count: int
    note: str
    created_by: str | None
    created_at: datetime
    disabled_at: datetime | None

    @property
    def status(self) -> str:
        if self.disabled_at is not None:
            return "disabled"
        if self.expires_at is not None and self.expires_at <= utcnow():
            return "expired"
        if self.redeemed_count >= self.max_redemptions:
            return "used_up"
        return "active"


class RedemptionCodes:
    """Create, list, disable and redeem codes."""

    def __init__(self, db: Database):
        self.db = db

    def create(
        self,
        amount: int,
        *,
        expires_at: datetime | None = None,
        credit_days: int | None = None,
        max_redemptions: int = 1,
        note: str = "",
        created_by: str | None = None,
    ) -> tuple[CodeView, str]:
        """Make a code worth ``amount`` micro-yuan of credit; return it and the code,
        which is never retrievable again. ``expires_at``: the code's own deadline;
        ``credit_days``: how long the credit lasts once redeemed (None: forever)."""
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise InvalidRequest("a code's amount is a positive int of micro-yuan", param="amount")
        if max_redemptions < 1:
            raise InvalidRequest("max_redemptions must be at least 1", param="max_redemptions")
        if credit_days is not None and credit_days < 1:
            raise InvalidRequest("credit_days must be at least 1", param="credit_days")
        if expires_at is not None and expires_at <= utcnow():
            raise InvalidRequest("expires_at must be in the future", param="expires_at")
        code = _new_code()
        with self.db.write() as session:
            row = RedemptionCode(
                id=new_id("rc"),
                code_hash=hash_code(code),
                prefix=code[: len(CODE_PREFIX) + 1 + _GROUP_LEN],
                amount=amount,
                expires_at=expires_at,
                credit_days=credit_days,
                max_redemptions=max_redemptions,
                redeemed_count=0,
                note=note,
                created_by=created_by,
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            return _view(row), code

    def list(self) -> list[CodeView]:
        with self.db.read() as session:
            rows = session.scalars(
                select(RedemptionCode).order_by(
                    RedemptionCode.created_at.desc(), RedemptionCode.id.desc()
                )
            )
            return [_view(row) for row in rows]

    def disable(self, code_id: str) -> CodeView:
        """Stop a code from being redeemed again (grants already made stay)."""
        with self.db.write() as session:
            row = session.get(RedemptionCode, code_id)
            if row is None:
                raise NotFound(f"no redemption code with id {code_id!r}", param="code_id")
            if row.disabled_at is None:
                row.disabled_at = utcnow()
            return _view(row)

    def redeem(self, code: str, workspace_id: str) -> Grant:
        """Turn a code into a credit grant for the workspace."""
        digest = hash_code(code)
        now = utcnow()
        try:
            with self.db.write() as session:
                row = session.scalar(
                    select(RedemptionCode).where(RedemptionCode.code_hash == digest)
                )
                if row is None or not hmac.compare_digest(row.code_hash, digest):
                    raise NotFound(
                        "no such redemption code; check it was typed correctly",
                        param="code",
                        code="invalid_code",
                    )
                if row.disabled_at is not None:
                    raise Conflict("this redemption code was disabled", code="code_disabled")
                if row.expires_at is not None and row.expires_at <= now:
                    raise Conflict(
                        f"this redemption code expired at {row.expires_at.isoformat()}",
                        code="code_expired",
                    )
                once_key = f"code:{row.id}"
                if session.scalar(
                    select(CreditGrant.id).where(
                        CreditGrant.workspace_id == workspace_id, CreditGrant.once_key == once_key
                    )
                ):
                    raise _already_redeemed()
                # The guard against concurrent redemptions: counted only while uses remain.
                counted = session.execute(
                    update(RedemptionCode)
                    .where(
                        RedemptionCode.id == row.id,
                        RedemptionCode.redeemed_count < RedemptionCode.max_redemptions,
                        RedemptionCode.disabled_at.is_(None),
                        or_(RedemptionCode.expires_at.is_(None), RedemptionCode.expires_at > now),
                    )
                    .values(redeemed_count=RedemptionCode.redeemed_count + 1)
                    .execution_options(synchronize_session=False)
                )
                if rowcount(counted) != 1:
                    raise Conflict("this redemption code has been used up", code="code_used_up")
                expires = now + timedelta(days=row.credit_days) if row.credit_days else None
                return add_grant(
                    session,
                    workspace_id,
                    row.amount,
                    expires_at=expires,
                    source="redemption",
                    note=f"redemption code {row.prefix}…",
                    once_key=once_key,
                    code_id=row.id,
                )
        except IntegrityError:
            # The same workspace redeemed it at the same moment in another transaction.
            raise _already_redeemed() from None


def _already_redeemed() -> Conflict:
    return Conflict("this workspace has already redeemed this code", code="code_already_redeemed")


def _view(row: RedemptionCode) -> CodeView:
    return CodeView(
        id=row.id,
        prefix=row.prefix,
        amount=row.amount,
        expires_at=row.expires_at,
        credit_days=row.credit_days,
        max_redemptions=row.max_redemptions,
        redeemed_count=row.redeemed_count,
        note=row.note,
        created_by=row.created_by,
        created_at=row.created_at,
        disabled_at=row.disabled_at,
    )
