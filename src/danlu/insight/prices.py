"""The gateway's model prices, read for costing runs.

Prices are kept in memory and reused while the price table is unchanged: at most once a
second, one small query (how many prices, the latest change) tells whether anyone — this
process or another — set, changed or removed a price since; if so, they are read again.
So a new price costs the very next runs recorded after it, not some runs later."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import func, select

from danlu.billing.prices import Price, Prices
from danlu.billing.tables import ModelPrice
from danlu.core.db import Database


class PriceBook:
    """``price_of(model)``: the billing price of a model, or None if it has none."""

    def __init__(self, db: Database, *, check_every_s: float = 1.0):
        self.db = db
        self.prices = Prices(db)
        self.check_every_s = check_every_s
        self._cache: dict[str, Price | None] = {}
        self._version: tuple[Any, ...] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def _table_version(self) -> tuple[Any, ...]:
        with self.db.read() as session:
            row = session.execute(
                select(func.count(), func.max(ModelPrice.updated_at)).select_from(ModelPrice)
            ).one()
        return tuple(row)

    def __call__(self, model: str) -> Price | None:
        now = time.monotonic()
        if now - self._checked >= self.check_every_s:
            version = self._table_version()
            with self._lock:
                self._checked = now
                if version != self._version:
                    self._version = version
                    self._cache.clear()
        with self._lock:
            if model in self._cache:
                return self._cache[model]
        price = self.prices.get(model)
        with self._lock:
            self._cache[model] = price
        return price
