"""Prices per model, in micro-yuan per million tokens.

A model without a price is not billable: :meth:`Holds.reserve` refuses it, so a
newly added upstream model cannot be used for free by mistake. Mark a model
``free`` to serve it without charge.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from danlu.billing.money import cost_units
from danlu.billing.tables import ModelPrice
from danlu.billing.wallets import rowcount
from danlu.core.db import Database
from danlu.core.errors import InvalidRequest, NotFound, PermissionDenied
from danlu.core.tables import utcnow


class ModelNotPriced(PermissionDenied):
    """The model has no price and is not free: billing fails closed (HTTP 403)."""


@dataclass(frozen=True)
class Price:
    """Units (micro-yuan) per million tokens of each kind."""

    model: str
    input_price: int
    cached_input_price: int
    output_price: int
    free: bool = False
    updated_at: datetime | None = None

    def cost(self, input_tokens: int, cached_tokens: int, output_tokens: int) -> int:
        """What these tokens cost, rounded up to a micro-yuan; 0 for a free model."""
        if self.free:
            return 0
        return cost_units(
            input_tokens,
            cached_tokens,
            output_tokens,
            input_price=self.input_price,
            cached_price=self.cached_input_price,
            output_price=self.output_price,
        )

    def worst_case(self, max_input_tokens: int, max_output_tokens: int) -> int:
        """The most a call with these limits can cost: every prompt token at the dearer rate."""
        dearer = max(self.input_price, self.cached_input_price)
        if self.free:
            return 0
        return cost_units(
            max_input_tokens,
            0,
            max_output_tokens,
            input_price=dearer,
            cached_price=0,
            output_price=self.output_price,
        )


class Prices:
    """Set, read, list and delete model prices."""

    def __init__(self, db: Database):
        self.db = db

    def set(
        self,
        model: str,
        *,
        input_price: int = 0,
        output_price: int = 0,
        cached_input_price: int | None = None,
        free: bool = False,
    ) -> Price:
        """Create or replace a model's price. Cached input costs the input price unless given."""
        model = model.strip()
        if not model or len(model) > 200:
            raise InvalidRequest("a model name has 1-200 characters", param="model")
        cached = input_price if cached_input_price is None else cached_input_price
        for name, value in (
            ("input_price", input_price),
            ("cached_input_price", cached),
            ("output_price", output_price),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidRequest(
                    f"{name} must be a non-negative int of micro-yuan per million tokens "
                    "(parse yuan with danlu.billing.parse_price)",
                    param=name,
                )
        with self.db.write() as session:
            row = session.get(ModelPrice, model)
            if row is None:
                row = ModelPrice(model=model)
                session.add(row)
            row.input_price = input_price
            row.cached_input_price = cached
            row.output_price = output_price
            row.free = free
            row.updated_at = utcnow()
            session.flush()
            return _price(row)

    def get(self, model: str) -> Price | None:
        with self.db.read() as session:
            row = session.get(ModelPrice, model)
            return _price(row) if row is not None else None

    def list(self) -> list[Price]:
        with self.db.read() as session:
            return [_price(row) for row in session.scalars(select(ModelPrice).order_by("model"))]

    def delete(self, model: str) -> None:
        """Remove a price; the model stops being billable (reserve refuses it)."""
        with self.db.write() as session:
            gone = rowcount(session.execute(delete(ModelPrice).where(ModelPrice.model == model)))
        if not gone:
            raise NotFound(f"model {model!r} has no price", param="model")


def _price(row: ModelPrice) -> Price:
    return Price(
        model=row.model,
        input_price=row.input_price,
        cached_input_price=row.cached_input_price,
        output_price=row.output_price,
        free=row.free,
        updated_at=row.updated_at,
    )
