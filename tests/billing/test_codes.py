"""Redemption codes (兑换码): hashed at rest, once per workspace, never beyond their uses."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from danlu.billing import Billing
from danlu.billing.codes import hash_code
from danlu.billing.tables import RedemptionCode
from danlu.core.accounts import Accounts
from danlu.core.db import Database
from danlu.core.errors import Conflict, NotFound
from danlu.core.tables import utcnow


def _workspaces(db: Database, n: int) -> list[str]:
    accounts = Accounts(db)
    return [accounts.personal_workspace(accounts.create_user(f"user{i}")).id for i in range(n)]


def test_codes_are_hashed_and_redeemed_once_per_workspace(db: Database, billing: Billing) -> None:
    first, second, third = _workspaces(db, 3)
    view, code = billing.codes.create(
        5_000_000, credit_days=30, max_redemptions=2, note="launch", created_by="usr-admin"
    )
    assert code.startswith("DL-") and view.prefix == code[:7] and view.status == "active"
    with db.read() as session:
        stored = session.scalars(select(RedemptionCode)).one()
    assert stored.code_hash == hash_code(code) and code not in repr(vars(stored))

    grant = billing.codes.redeem(code.lower().replace("-", " "), first)  # typed sloppily
    assert (grant.source, grant.amount, grant.remaining) == ("redemption", 5_000_000, 5_000_000)
    assert grant.expires_at is not None
    assert timedelta(days=29) < grant.expires_at - utcnow() <= timedelta(days=30)
    assert billing.wallets.funds(first).credit == 5_000_000
    with pytest.raises(Conflict) as twice:
        billing.codes.redeem(code, first)
    assert twice.value.code == "code_already_redeemed"

    billing.codes.redeem(code, second)
    with pytest.raises(Conflict) as used_up:
        billing.codes.redeem(code, third)
    assert used_up.value.code == "code_used_up"
    assert billing.codes.list()[0].redeemed_count == 2
    assert billing.codes.list()[0].status == "used_up"
    with pytest.raises(NotFound):
        billing.codes.redeem("DL-NOPE-NOPE-NOPE-NOPE-NOPE", third)


def test_expired_and_disabled_codes_are_refused(db: Database, billing: Billing) -> None:
    (workspace,) = _workspaces(db, 1)
    expiring, expiring_code = billing.codes.create(1_000, expires_at=utcnow() + timedelta(hours=1))
    with db.write() as session:
        session.execute(
            update(RedemptionCode)
            .where(RedemptionCode.id == expiring.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    with pytest.raises(Conflict) as expired:
        billing.codes.redeem(expiring_code, workspace)
    assert expired.value.code == "code_expired"

    disabled, disabled_code = billing.codes.create(1_000)
    assert billing.codes.disable(disabled.id).status == "disabled"
    with pytest.raises(Conflict) as off:
        billing.codes.redeem(disabled_code, workspace)
    assert off.value.code == "code_disabled"
    _, forever_code = billing.codes.create(1_000)  # no credit_days: it never expires
    assert billing.codes.redeem(forever_code, workspace).expires_at is None
    assert billing.wallets.funds(workspace).credit == 1_000


def test_concurrent_redemptions_respect_both_limits(db: Database, billing: Billing) -> None:
    workspaces = _workspaces(db, 6)
    _, code = billing.codes.create(1_000, max_redemptions=3)

    def redeem(workspace: str) -> bool:
        try:
            billing.codes.redeem(code, workspace)
            return True
        except Conflict:
            return False

    # Each of 6 workspaces tries twice at once: 3 uses at most, one per workspace.
    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(redeem, workspaces * 2))
    assert sum(results) == 3
    winners = [w for w in workspaces if billing.wallets.funds(w).credit]
    assert len(winners) == 3
    assert all(billing.wallets.funds(w).credit == 1_000 for w in winners)
    assert billing.codes.list()[0].redeemed_count == 3
