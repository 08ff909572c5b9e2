"""A workspace and a priced model on every backend."""

from __future__ import annotations

import pytest

from danlu.billing import Billing
from danlu.core.accounts import Accounts
from danlu.core.db import Database

# ¥1 per million input tokens, ¥0.1 per million cached, ¥2 per million output.
CHAT = "chat"
IN, CACHED, OUT = 1_000_000, 100_000, 2_000_000


@pytest.fixture
def workspace_id(db: Database) -> str:
    accounts = Accounts(db)
    return accounts.personal_workspace(accounts.create_user("alice")).id


@pytest.fixture
def billing(db: Database) -> Billing:
    billing = Billing(db)
    billing.prices.set(CHAT, input_price=IN, cached_input_price=CACHED, output_price=OUT)
    return billing
