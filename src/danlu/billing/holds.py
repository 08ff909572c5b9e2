"""Reserve, then settle: how a call's cost is bounded before it runs.

``reserve`` holds the call's worst-case cost (max tokens at the model's price)
against the workspace's available money in one conditional ``UPDATE`` — the
row count says whether it fitted. ``settle`` charges what the call really cost
(never more than the hold) and frees the rest; ``release`` frees it all. So
however many servers share the database, the money held never exceeds the
money there is, and nothing is spent that was not held first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from danlu.billing.money import format_yuan
from danlu.billing.prices import ModelNotPriced, Price, Prices
from danlu.billing.recorder import UsageEntry, UsageRecorder
from danlu.billing.tables import BillingReservation, Wallet
from danlu.billing.wallets import available_now, credit_total, lock_wallet, rowcount, spend
from danlu.core.db import Database
from danlu.core.errors import Conflict, InsufficientBalance, InvalidRequest
from danlu.core.ids import new_id
from danlu.core.tables import utcnow

log = logging.getLogger(__name__)


@dataclass
class Reservation:
    """A call's hold. ``id`` is None when nothing was held (a free model)."""

    id: str | None
    workspace_id: str
    model: str
    amount: int  # micro-yuan held
    price: Price  # the price at reserve time, which settle charges at
    request_id: str
    key_id: str | None
    user_id: str | None
    created_at: datetime
    closed: bool = False  # settled or released by this process


class Holds:
    """reserve / settle / release, and sweeping holds a crashed server left behind."""

    def __init__(self, db: Database, prices: Prices, recorder: UsageRecorder | None = None):
        self.db = db
        self.prices = prices
        self.recorder = recorder

    def reserve(
        self,
        workspace_id: str,
        model: str,
        max_input_tokens: int,
        max_output_tokens: int,
        request_id: str,
        key_id: str | None,
        *,
        user_id: str | None = None,
    ) -> Reservation:
        """Hold the call's worst-case cost; :class:`InsufficientBalance` if it does not fit.

        Refuses a model without a price (:class:`ModelNotPriced`) unless it is free.
        """
        for name, value in (
            ("max_input_tokens", max_input_tokens),
            ("max_output_tokens", max_output_tokens),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidRequest(f"{name} must be a non-negative int", param=name)
        if not 0 < len(request_id) <= 64 or (key_id is not None and len(key_id) > 32):
            raise InvalidRequest("request_id has 1-64 characters, key_id at most 32")
        price = self.prices.get(model)
        if price is None:
            raise ModelNotPriced(
                f"model {model!r} has no price, so it cannot be billed; an administrator "
                "must set its price (or mark it free) before it can be used",
                param="model",
                code="model_not_priced",
            )
        amount = price.worst_case(max_input_tokens, max_output_tokens)
        now = utcnow()
        reservation = Reservation(
            id=None,
            workspace_id=workspace_id,
            model=model,
            amount=amount,
            price=price,
            request_id=request_id,
            key_id=key_id,
            user_id=user_id,
            created_at=now,
        )
        if amount == 0:
            return reservation  # nothing to hold: no write on the hot path
        with self.db.write() as session:
            lock_wallet(session, workspace_id)
            held = session.execute(
                update(Wallet)
                .where(
                    Wallet.workspace_id == workspace_id,
                    Wallet.balance + credit_total(workspace_id, now) - Wallet.held >= amount,
                )
                .values(held=Wallet.held + amount, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if rowcount(held) != 1:
                available = max(available_now(session, workspace_id, now), 0)
                raise InsufficientBalance(
                    f"insufficient balance: this call to {model!r} may cost up to "
                    f"{format_yuan(amount)} (its token limits at the model's price), and the "
                    f"workspace has {format_yuan(available)} available. Top up the workspace's "
                    "balance or redeem a code (兑换码), or lower max_tokens",
                    needed=amount,
                    available=available,
                )
            reservation.id = new_id("res")
            session.add(
                BillingReservation(
                    id=reservation.id,
                    workspace_id=workspace_id,
                    request_id=request_id,
                    key_id=key_id,
                    model=model,
                    amount=amount,
                    state="held",
                    charged=0,
                    shortfall=0,
                    created_at=now,
                )
            )
        return reservation

    def settle(
        self,
        reservation: Reservation,
        input_tokens: int,
        cached_tokens: int,
        output_tokens: int,
        status: str = "ok",
        *,
        deployment: str | None = None,
        latency_ms: int | None = None,
        ttft_ms: int | None = None,
    ) -> UsageEntry:
        """Charge what the call cost (at most the hold) and free the rest of the hold.

        ``input_tokens`` excludes ``cached_tokens`` (see :func:`split_prompt_tokens`).
        A cost above the hold is charged up to the hold; the rest is the entry's
        ``shortfall``. The entry goes to the recorder, if there is one.
        """
        if reservation.closed:
            raise Conflict(f"reservation {reservation.id} was already settled or released")
        cost = reservation.price.cost(input_tokens, cached_tokens, output_tokens)
        charged = 0
        if reservation.id is not None:
            charged = self._close(reservation, "settled", cost, strict=True)
        reservation.closed = True
        entry = self._entry(
            reservation,
            input_tokens,
            cached_tokens,
            output_tokens,
            cost=cost,
            shortfall=cost - charged,
            status=status,
            deployment=deployment,
            latency_ms=latency_ms,
            ttft_ms=ttft_ms,
        )
        if entry.shortfall:
            log.warning(
                "request %s cost %s but only %s was collected",
                reservation.request_id,
                format_yuan(cost),
                format_yuan(charged),
            )
        if self.recorder is not None:
            self.recorder.add(entry)
        return entry

    def release(
        self,
        reservation: Reservation,
        status: str = "failed",
        *,
        deployment: str | None = None,
        latency_ms: int | None = None,
    ) -> UsageEntry | None:
        """Free the whole hold (the call failed before any token). A no-op once closed,
        so ``finally: release(r)`` after a settle is safe. Records a zero-cost entry."""
        if reservation.closed:
            return None
        if reservation.id is not None:
            self._close(reservation, "released", 0, strict=False)
        reservation.closed = True
        entry = self._entry(
            reservation,
            0,
            0,
            0,
            cost=0,
            shortfall=0,
            status=status,
            deployment=deployment,
            latency_ms=latency_ms,
            ttft_ms=None,
        )
        if self.recorder is not None:
            self.recorder.add(entry)
        return entry

    def release_stale(self, older_than: timedelta = timedelta(hours=1)) -> int:
        """Release holds older than ``older_than`` (their server died); how many.

        Pick an age no call can reach: a call settled after its hold was swept
        finds it closed and raises :class:`Conflict`, uncharged.
        """
        cutoff = utcnow() - older_than
        with self.db.read() as session:
            stale = session.execute(
                select(BillingReservation.id, BillingReservation.workspace_id).where(
                    BillingReservation.state == "held", BillingReservation.created_at < cutoff
                )
            ).all()
        released = 0
        for reservation_id, workspace_id in stale:
            with self.db.write() as session:
                if _close_row(session, reservation_id, workspace_id, "released", 0) is not None:
                    released += 1
        if released:
            log.warning("released %d stale billing holds (older than %s)", released, older_than)
        return released

    def _close(self, reservation: Reservation, state: str, cost: int, *, strict: bool) -> int:
        assert reservation.id is not None
        with self.db.write() as session:
            charged = _close_row(session, reservation.id, reservation.workspace_id, state, cost)
        if charged is None:
            if strict:
                raise Conflict(
                    f"reservation {reservation.id} is no longer held (released as stale?); "
                    "the call was not charged",
                    code="reservation_closed",
                )
            return 0
        return charged

    @staticmethod
    def _entry(
        reservation: Reservation,
        input_tokens: int,
        cached_tokens: int,
        output_tokens: int,
        *,
        cost: int,
        shortfall: int,
        status: str,
        deployment: str | None,
        latency_ms: int | None,
        ttft_ms: int | None,
    ) -> UsageEntry:
        return UsageEntry(
            request_id=reservation.request_id,
            workspace_id=reservation.workspace_id,
            key_id=reservation.key_id,
            user_id=reservation.user_id,
            model=reservation.model,
            deployment=deployment,
            input_tokens=input_tokens,
            cached_tokens=cached_tokens,
            output_tokens=output_tokens,
            cost=cost,
            shortfall=shortfall,
            status=status,
            latency_ms=latency_ms,
            ttft_ms=ttft_ms,
        )


def _close_row(
    session: Session, reservation_id: str, workspace_id: str, state: str, cost: int
) -> int | None:
    """Close a held reservation: charge min(cost, hold), free the hold. None if not held."""
    now = utcnow()
    balance, _ = lock_wallet(session, workspace_id)
    amount = session.scalar(
        select(BillingReservation.amount).where(
            BillingReservation.id == reservation_id, BillingReservation.state == "held"
        )
    )
    if amount is None:
        return None
    charged = spend(session, workspace_id, min(cost, amount), balance=balance, now=now)
    session.execute(
        update(Wallet)
        .where(Wallet.workspace_id == workspace_id)
        .values(held=Wallet.held - amount, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    closed = session.execute(
        update(BillingReservation)
        .where(BillingReservation.id == reservation_id, BillingReservation.state == "held")
        .values(state=state, charged=charged, shortfall=cost - charged, closed_at=now)
        .execution_options(synchronize_session=False)
    )
    if rowcount(closed) != 1:  # impossible while the wallet is locked
        raise RuntimeError(f"reservation {reservation_id} changed under a wallet lock")
    return charged
