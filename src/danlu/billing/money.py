"""Money as integers: micro-yuan units, exact yuan strings, and the cost of a call.

Every amount danlu stores or adds is an ``int`` of micro-yuan (1 yuan = 1,000,000
units; 1 厘 = 1,000 units). Floats never touch money: 0.1 + 0.2 != 0.3 is a
rounding bug on someone's invoice. Text in and out goes through ``Decimal``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Literal

from danlu.core.errors import InvalidRequest

UNITS_PER_YUAN = 1_000_000
UNITS_PER_LI = 1_000  # 1 厘 = 0.001 yuan
# Prices are per million tokens, so a cost is a sum of tokens x price / this.
TOKENS_PER_PRICE = 1_000_000

_SYMBOLS = ("¥", "￥")


def yuan_to_units(amount: str | Decimal | int) -> int:
    """``"0.0005"`` yuan → 500 units, exactly.

    Refuses floats (already inexact) and anything finer than a micro-yuan,
    rather than rounding someone's money silently. A leading ``¥`` is allowed,
    so :func:`format_yuan`'s output reads back.
    """
    if isinstance(amount, bool) or not isinstance(amount, str | Decimal | int):
        raise TypeError(f"amounts are str, Decimal or int yuan, not {type(amount).__name__}")
    value = _decimal(amount) if isinstance(amount, str) else Decimal(amount)
    if not value.is_finite():
        raise InvalidRequest(f"{amount!r} is not an amount of money")
    units = value * UNITS_PER_YUAN
    if units != units.to_integral_value():
        raise InvalidRequest(
            f"{amount!r} yuan is finer than a micro-yuan (0.000001); use at most 6 decimal places"
        )
    return int(units)


def format_yuan(units: int, *, symbol: bool = True) -> str:
    """500 units → ``"¥0.000500"``: always six decimals, so the value is exact."""
    if isinstance(units, bool) or not isinstance(units, int):
        raise TypeError(f"units are int, not {type(units).__name__}")
    sign = "-" if units < 0 else ""
    whole, micro = divmod(abs(units), UNITS_PER_YUAN)
    return f"{sign}{'¥' if symbol else ''}{whole}.{micro:06d}"


def parse_price(
    text: str | Decimal | int, *, per: Literal["million", "thousand"] = "million"
) -> int:
    """A price in yuan per million tokens (or per thousand) → units per million tokens.

    ``parse_price("0.5")`` and ``parse_price("0.0005", per="thousand")`` are both
    500_000. The per-million result must be a whole number of micro-yuan.
    """
    if isinstance(text, bool) or not isinstance(text, str | Decimal | int):
        raise TypeError(f"prices are str, Decimal or int yuan, not {type(text).__name__}")
    value = _decimal(text) if isinstance(text, str) else Decimal(text)
    if per == "thousand":
        value *= 1000
    elif per != "million":
        raise InvalidRequest(f"per must be 'million' or 'thousand', not {per!r}")
    units = yuan_to_units(value)
    if units < 0:
        raise InvalidRequest(f"a price cannot be negative: {text!r}")
    return units


def cost_units(
    input_tokens: int,
    cached_tokens: int,
    output_tokens: int,
    *,
    input_price: int,
    cached_price: int,
    output_price: int,
) -> int:
    """The cost in units, rounded up to the next micro-yuan.

    ``input_tokens`` are the prompt tokens *not* served from cache;
    ``cached_tokens`` are the cached ones (OpenAI's prompt_tokens counts both;
    see :func:`split_prompt_tokens`). Prices are units per million tokens.
    """
    for name, value in (
        ("input_tokens", input_tokens),
        ("cached_tokens", cached_tokens),
        ("output_tokens", output_tokens),
        ("input_price", input_price),
        ("cached_price", cached_price),
        ("output_price", output_price),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidRequest(f"{name} must be a non-negative int, not {value!r}")
    total = input_tokens * input_price + cached_tokens * cached_price + output_tokens * output_price
    return -(-total // TOKENS_PER_PRICE)  # integer ceiling


def split_prompt_tokens(prompt_tokens: int, cached_tokens: int) -> tuple[int, int]:
    """OpenAI usage (prompt tokens including cached ones) → (uncached, cached)."""
    cached = min(max(cached_tokens, 0), max(prompt_tokens, 0))
    return max(prompt_tokens, 0) - cached, cached


def _decimal(text: str) -> Decimal:
    cleaned = text.strip()
    negative = cleaned.startswith("-")
    if negative:
        cleaned = cleaned[1:]
    for symbol in _SYMBOLS:
        cleaned = cleaned.removeprefix(symbol)
    try:
        if negative and cleaned.startswith(("-", "+")):
            raise InvalidOperation
        value = Decimal(cleaned)
    except InvalidOperation:
        raise InvalidRequest(
            f"{text!r} is not an amount of yuan (e.g. '12.5' or '0.0005')", param="amount"
        ) from None
    return -value if negative else value
