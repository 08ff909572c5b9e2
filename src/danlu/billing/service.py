"""One object for the gateway: prices, wallets, codes, and reserve/settle/release."""

from __future__ import annotations

from danlu.billing.codes import RedemptionCodes
from danlu.billing.holds import Holds
from danlu.billing.prices import Prices
from danlu.billing.recorder import UsageRecorder
from danlu.billing.wallets import Wallets
from danlu.core.db import Database


class Billing(Holds):
    """``Billing(db, recorder)``: ``reserve``/``settle``/``release`` plus ``.prices``,
    ``.wallets`` and ``.codes``. Settled and released calls go to ``recorder``."""

    def __init__(self, db: Database, recorder: UsageRecorder | None = None):
        super().__init__(db, Prices(db), recorder)
        self.wallets = Wallets(db)
        self.codes = RedemptionCodes(db)
