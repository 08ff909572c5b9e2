"""Runs are costed at the prices of the moment: a change shows in the next runs recorded."""

from __future__ import annotations

from danlu.billing.prices import Prices
from danlu.core.db import Database
from danlu.insight.prices import PriceBook


def test_a_price_change_applies_to_the_next_lookup(db: Database) -> None:
    book = PriceBook(db, check_every_s=0.0)
    assert book("tea-model") is None
    prices = Prices(db)
    prices.set("tea-model", input_price=2_000_000, output_price=8_000_000)
    first = book("tea-model")
    assert first is not None and first.output_price == 8_000_000
    prices.set("tea-model", input_price=2_000_000, output_price=9_000_000)
    changed = book("tea-model")
    assert changed is not None and changed.output_price == 9_000_000
    prices.delete("tea-model")
    assert book("tea-model") is None


def test_prices_are_reused_between_checks(db: Database) -> None:
    book = PriceBook(db, check_every_s=3600.0)
    Prices(db).set("kept-model", input_price=1, output_price=1)
    assert book("kept-model") is not None
    Prices(db).delete("kept-model")
    assert book("kept-model") is not None  # from memory until the next check
