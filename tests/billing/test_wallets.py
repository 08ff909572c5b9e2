"""Prices, grants (抵扣金) and the paid balance, on every backend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from danlu.billing import Billing, ModelNotPriced, format_yuan
from danlu.billing.tables import CreditGrant
from danlu.core.db import Database
from danlu.core.errors import InsufficientBalance, InvalidRequest, NotFound
from danlu.core.tables import utcnow
from tests.billing.conftest import CACHED, CHAT, IN, OUT


def _expire(db: Database, grant_id: str) -> None:
    with db.write() as session:
        session.execute(
            update(CreditGrant)
            .where(CreditGrant.id == grant_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


def test_prices_are_set_read_listed_and_deleted(billing: Billing) -> None:
    prices = billing.prices
    price = prices.get(CHAT)
    assert price is not None
    assert (price.input_price, price.cached_input_price, price.output_price) == (IN, CACHED, OUT)
    embed = prices.set("embed", input_price=500_000)
    assert embed.cached_input_price == 500_000  # defaults to the input price
    prices.set("embed", input_price=700_000, output_price=1)  # replaces
    assert [p.model for p in prices.list()] == [CHAT, "embed"]
    assert prices.get("embed") == prices.list()[1]
    assert prices.get("embed").input_price == 700_000  # type: ignore[union-attr]
    prices.delete("embed")
    assert prices.get("embed") is None
    with pytest.raises(NotFound):
        prices.delete("embed")
    with pytest.raises(InvalidRequest):
        prices.set("bad", input_price=-1)


def test_unpriced_models_are_refused_and_free_ones_hold_nothing(
    billing: Billing, workspace_id: str
) -> None:
    with pytest.raises(ModelNotPriced) as refused:
        billing.reserve(workspace_id, "nobody-priced-me", 10, 10, "req-1", None)
    assert refused.value.code == "model_not_priced"
    billing.prices.set("gift", free=True, input_price=10**6)
    # Free: no money needed, nothing held, nothing charged.
    reservation = billing.reserve(workspace_id, "gift", 10**6, 10**6, "req-2", "key-1")
    assert reservation.id is None and reservation.amount == 0
    entry = billing.settle(reservation, 5_000, 0, 7_000)
    assert (entry.cost, entry.charged, entry.shortfall) == (0, 0, 0)
    assert billing.wallets.funds(workspace_id).held == 0
    # Unpricing a model fails closed again.
    billing.prices.delete("gift")
    with pytest.raises(ModelNotPriced):
        billing.reserve(workspace_id, "gift", 1, 1, "req-3", None)


def test_grants_are_spent_earliest_expiry_first_then_the_balance(
    db: Database, billing: Billing, workspace_id: str
) -> None:
    wallets = billing.wallets
    now = utcnow()
    forever = wallets.grant(workspace_id, 1_000, note="no expiry")
    late = wallets.grant(workspace_id, 1_000, expires_at=now + timedelta(days=30))
    soon = wallets.grant(workspace_id, 1_000, expires_at=now + timedelta(days=1))
    gone = wallets.grant(workspace_id, 5_000, expires_at=now + timedelta(days=1))
    _expire(db, gone.id)  # expired grants are never spent, nor counted
    wallets.top_up(workspace_id, 2_000)
    funds = wallets.funds(workspace_id)
    assert (funds.balance, funds.credit, funds.held, funds.available) == (2_000, 3_000, 0, 5_000)
    assert [g.id for g in funds.grants] == [gone.id, soon.id, late.id, forever.id]

    def spend(units: int) -> None:
        # An output token costs 2 units (¥2/M): charge exactly `units`.
        reservation = billing.reserve(workspace_id, CHAT, 0, units // 2, "r", None)
        assert billing.settle(reservation, 0, 0, units // 2).charged == units

    spend(1_500)  # all of `soon`, half of `late`
    remaining = {g.id: g.remaining for g in wallets.grants(workspace_id)}
    assert remaining == {gone.id: 5_000, soon.id: 0, late.id: 500, forever.id: 1_000}
    assert wallets.funds(workspace_id).balance == 2_000
    spend(2_000)  # the rest of `late`, all of `forever`, then 500 of the balance
    funds = wallets.funds(workspace_id)
    assert [g.remaining for g in funds.grants] == [5_000, 0, 0, 0]
    assert (funds.balance, funds.credit, funds.available) == (1_500, 0, 1_500)


def test_free_quota_is_granted_once_per_workspace(billing: Billing, workspace_id: str) -> None:
    first = billing.wallets.grant_free_quota(workspace_id, 5_000_000, valid_days=30)
    assert first is not None and first.source == "free_quota" and first.expires_at is not None
    assert billing.wallets.grant_free_quota(workspace_id, 5_000_000) is None
    assert billing.wallets.funds(workspace_id).credit == 5_000_000
    with pytest.raises(NotFound):
        billing.wallets.grant_free_quota("ws_missing", 1)
    with pytest.raises(InvalidRequest):
        billing.wallets.grant(workspace_id, 0)
    with pytest.raises(InvalidRequest):
        billing.wallets.grant(workspace_id, 1, expires_at=utcnow() - timedelta(days=1))


def test_a_call_that_might_cost_more_than_is_available_is_refused(
    db: Database, billing: Billing, workspace_id: str
) -> None:
    # Worst case of 1000 in + 500 out at ¥1/M and ¥2/M: 2000 units.
    with pytest.raises(InsufficientBalance) as empty:
        billing.reserve(workspace_id, CHAT, 1000, 500, "req", None)
    assert empty.value.status == 402 and empty.value.code == "insufficient_balance"
    assert empty.value.needed == 2_000 and empty.value.available == 0
    assert "redeem a code" in empty.value.message and format_yuan(2_000) in empty.value.message

    billing.wallets.top_up(workspace_id, 1_500)
    grant = billing.wallets.grant(workspace_id, 499, expires_at=utcnow() + timedelta(hours=1))
    with pytest.raises(InsufficientBalance) as short:
        billing.reserve(workspace_id, CHAT, 1000, 500, "req", None)
    assert short.value.available == 1_999
    billing.wallets.grant(workspace_id, 1)
    held = billing.reserve(workspace_id, CHAT, 1000, 500, "req", None)
    assert billing.wallets.funds(workspace_id).available == 0
    billing.release(held)
    _expire(db, grant.id)  # an expired grant no longer counts towards a hold
    with pytest.raises(InsufficientBalance):
        billing.reserve(workspace_id, CHAT, 1000, 500, "req", None)
