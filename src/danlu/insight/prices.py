"""The gateway's model prices, read for costing runs (cached briefly: the writer thread asks
once per model per batch, and a price change shows within ``ttl_s``)."""

from __future__ import annotations

import threading
import time

from danlu.billing.prices import Price, Prices
from danlu.core.db import Database


class PriceBook:
    """``price_of(model)``: the billing price of a model, or None if it has none."""

    def __init__(self, db: Database, *, ttl_s: float = 30.0):
        self.prices = Prices(db)
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Price | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, model: str) -> Price | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(model)
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        price = self.prices.get(model)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[model] = (now, price)
        return price
