"""Reserve, settle and release: exact, and never overspent under concurrency."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from danlu.billing import Billing
from danlu.billing.tables import BillingReservation, CreditGrant, Wallet
from danlu.core.db import Database
from danlu.core.errors import Conflict, InsufficientBalance
from danlu.core.tables import utcnow
from tests.billing.conftest import CHAT
from tests.billing.workers import reserve_and_settle_until_refused, set_start


def _states(db: Database) -> dict[str, int]:
    with db.read() as session:
        rows = session.execute(
            select(BillingReservation.state, func.count()).group_by(BillingReservation.state)
        ).all()
    return {state: count for state, count in rows}


def test_settle_charges_the_actual_cost_and_frees_the_rest(
    billing: Billing, workspace_id: str
) -> None:
    billing.wallets.top_up(workspace_id, 10_000)
    # Worst case: 1000 prompt tokens at ¥1/M + 500 output at ¥2/M = 2000 units.
    reservation = billing.reserve(workspace_id, CHAT, 1000, 500, "req-1", "key-1", user_id="usr-1")
    assert reservation.amount == 2_000
    funds = billing.wallets.funds(workspace_id)
    assert (funds.balance, funds.held, funds.available) == (10_000, 2_000, 8_000)
    # 300 uncached + 100 cached in, 200 out: 300 + 10 + 400 = 710 units.
    entry = billing.settle(
        reservation, 300, 100, 200, "ok", deployment="east", latency_ms=120, ttft_ms=30
    )
    assert (entry.cost, entry.charged, entry.shortfall) == (710, 710, 0)
    assert (entry.key_id, entry.user_id, entry.deployment, entry.ttft_ms) == (
        "key-1",
        "usr-1",
        "east",
        30,
    )
    funds = billing.wallets.funds(workspace_id)
    assert (funds.balance, funds.held, funds.available) == (9_290, 0, 9_290)
    with pytest.raises(Conflict):
        billing.settle(reservation, 1, 0, 0)  # settling twice would charge twice
    assert billing.release(reservation) is None  # `finally: release()` after settle is harmless
    assert billing.wallets.funds(workspace_id).balance == 9_290


def test_a_call_that_cost_more_than_its_hold_is_charged_the_hold(
    billing: Billing, workspace_id: str
) -> None:
    billing.wallets.top_up(workspace_id, 10_000)
    reservation = billing.reserve(workspace_id, CHAT, 100, 100, "req", None)
    assert reservation.amount == 300
    entry = billing.settle(reservation, 1_000, 0, 1_000)  # 3000 units: the upstream overran
    assert (entry.cost, entry.charged, entry.shortfall) == (3_000, 300, 2_700)
    assert billing.wallets.funds(workspace_id).balance == 9_700
    with billing.db.read() as session:
        row = session.get(BillingReservation, reservation.id)
        assert row is not None
        assert (row.state, row.charged, row.shortfall) == ("settled", 300, 2_700)


def test_release_frees_everything_and_stale_holds_are_swept(
    db: Database, billing: Billing, workspace_id: str
) -> None:
    billing.wallets.top_up(workspace_id, 3_000)
    failed = billing.reserve(workspace_id, CHAT, 0, 500, "req-failed", None)
    entry = billing.release(failed, "upstream_error")
    assert entry is not None and entry.cost == 0 and entry.status == "upstream_error"
    assert billing.release(failed) is None
    assert billing.wallets.funds(workspace_id).available == 3_000

    crashed = billing.reserve(workspace_id, CHAT, 0, 500, "req-crashed", None)
    fresh = billing.reserve(workspace_id, CHAT, 0, 250, "req-fresh", None)
    with db.write() as session:  # its server died an hour ago
        session.execute(
            update(BillingReservation)
            .where(BillingReservation.id == crashed.id)
            .values(created_at=utcnow() - timedelta(hours=2))
        )
    assert billing.release_stale(timedelta(hours=1)) == 1
    assert billing.wallets.funds(workspace_id).held == 500  # only the fresh hold
    with pytest.raises(Conflict):
        billing.settle(crashed, 0, 0, 10)  # swept: not charged, and says so
    billing.settle(fresh, 0, 0, 250)
    funds = billing.wallets.funds(workspace_id)
    assert (funds.balance, funds.held) == (2_500, 0)
    assert _states(db) == {"released": 2, "settled": 1}


def test_a_grant_that_expires_mid_call_is_not_spent(
    db: Database, billing: Billing, workspace_id: str
) -> None:
    grant = billing.wallets.grant(workspace_id, 1_000, expires_at=utcnow() + timedelta(hours=1))
    billing.wallets.top_up(workspace_id, 300)
    reservation = billing.reserve(workspace_id, CHAT, 0, 500, "req", None)
    with db.write() as session:
        session.execute(
            update(CreditGrant)
            .where(CreditGrant.id == grant.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    entry = billing.settle(reservation, 0, 0, 400)  # 800 units; only the 300 paid are left
    assert (entry.cost, entry.charged, entry.shortfall) == (800, 300, 500)
    funds = billing.wallets.funds(workspace_id)
    assert (funds.balance, funds.held, funds.grants[0].remaining) == (0, 0, 1_000)


def test_concurrent_holds_never_exceed_the_money(
    db: Database, billing: Billing, workspace_id: str
) -> None:
    # 10.5 worst cases of money, in two grants and a balance; 48 concurrent attempts.
    worst = 2_000  # 1000 output tokens
    billing.wallets.grant(workspace_id, 3 * worst, expires_at=utcnow() + timedelta(days=1))
    billing.wallets.grant(workspace_id, 5 * worst // 2)
    billing.wallets.top_up(workspace_id, 5 * worst)
    start = threading.Barrier(16)
    engines = [Database(db.url) for _ in range(4)]  # separate pools, as separate servers have

    def attempt(n: int) -> int:
        holds = Billing(engines[n % 4])
        start.wait()
        won = 0
        for _ in range(3):
            try:
                holds.reserve(workspace_id, CHAT, 0, 1000, f"req-{n}", None)
                won += 1
            except InsufficientBalance:
                pass
        return won

    try:
        with ThreadPoolExecutor(16) as pool:
            won = sum(pool.map(attempt, range(16)))
    finally:
        for engine in engines:
            engine.dispose()
    assert won == 10  # exactly as many as fit: none too many, none refused wrongly
    funds = billing.wallets.funds(workspace_id)
    assert funds.held == 10 * worst and funds.available == worst // 2
    assert _states(db) == {"held": 10}


def test_reserve_and_settle_from_many_processes_conserves_money(
    db: Database, billing: Billing, workspace_id: str
) -> None:
    # Holds of 2000 units settle for 600..2000, from 2 processes and 3 threads at once,
    # until the money runs out. A hold that was truly backed is always collected in full,
    # so any shortfall would mean a hold was granted against money that was not there.
    total = 100_000
    billing.wallets.grant(workspace_id, 30_000, expires_at=utcnow() + timedelta(days=1))
    billing.wallets.grant(workspace_id, 20_000)
    billing.wallets.top_up(workspace_id, 50_000)
    outputs = [300, 1000, 650, 900]
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(5)  # 2 processes + 3 threads
    args = (db.url, workspace_id, CHAT, 1000, outputs)
    with (
        ProcessPoolExecutor(2, mp_context=spawn, initializer=set_start, initargs=(start,)) as procs,
        ThreadPoolExecutor(3) as threads,
    ):
        futures = [procs.submit(reserve_and_settle_until_refused, *args) for _ in range(2)]
        futures += [
            threads.submit(reserve_and_settle_until_refused, *args, start) for _ in range(3)
        ]
        results = [future.result(timeout=90) for future in futures]
    calls = sum(c for c, _ in results)
    charged = sum(c for _, c in results)
    funds = billing.wallets.funds(workspace_id)
    with db.read() as session:
        wallet = session.get(Wallet, workspace_id)
        recorded = session.scalar(select(func.sum(BillingReservation.charged)))
        shortfall = session.scalar(select(func.sum(BillingReservation.shortfall)))
        remaining = session.scalar(select(func.sum(CreditGrant.remaining)))
    assert wallet is not None and wallet.held == 0 and wallet.balance >= 0
    assert remaining is not None and remaining >= 0
    assert calls > 0 and _states(db) == {"settled": calls}
    # Every unit is either charged exactly once or still there; nothing created or lost.
    assert charged == recorded and shortfall == 0
    assert charged + funds.balance + funds.credit == total
    assert charged <= total
    assert funds.available < 2_000  # stopped only when a worst case no longer fitted
