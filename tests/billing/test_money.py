"""Units, exact yuan text and the cost of a call: pure functions, no database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from danlu.billing import (
    Price,
    cost_units,
    format_yuan,
    parse_price,
    split_prompt_tokens,
    yuan_to_units,
)
from danlu.core.errors import InvalidRequest


def test_yuan_text_round_trips_exactly() -> None:
    assert yuan_to_units("0.0005") == 500
    assert yuan_to_units("1") == 1_000_000
    assert yuan_to_units("0.001") == 1_000  # 1 厘
    assert yuan_to_units("¥12.345678") == 12_345_678
    assert yuan_to_units("0.1000000") == 100_000  # trailing zeros are still exact
    assert yuan_to_units(Decimal("2.5")) == 2_500_000
    assert yuan_to_units(3) == 3_000_000
    assert yuan_to_units("-0.5") == -500_000
    assert format_yuan(500) == "¥0.000500"
    assert format_yuan(12_345_678) == "¥12.345678"
    assert format_yuan(-1) == "-¥0.000001"
    assert format_yuan(7, symbol=False) == "0.000007"
    for units in (0, 1, 999_999, 1_000_000, 123_456_789_012, -42):
        assert yuan_to_units(format_yuan(units)) == units


@pytest.mark.parametrize("text", ["0.0000005", "1e-7", "abc", "", "NaN", "Infinity", "--1"])
def test_bad_or_too_precise_yuan_is_refused(text: str) -> None:
    with pytest.raises(InvalidRequest):
        yuan_to_units(text)


def test_floats_never_become_money() -> None:
    with pytest.raises(TypeError):
        yuan_to_units(0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        format_yuan(1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        parse_price(0.5)  # type: ignore[arg-type]


def test_prices_parse_per_million_or_per_thousand() -> None:
    assert parse_price("0.5") == 500_000
    assert parse_price("0.0005", per="thousand") == 500_000
    assert parse_price("0.002", per="thousand") == 2_000_000
    assert parse_price("0.0000005", per="thousand") == 500  # exact per million
    with pytest.raises(InvalidRequest):
        parse_price("0.0000000005", per="thousand")  # 0.5 micro-yuan per million
    with pytest.raises(InvalidRequest):
        parse_price("-1")


def test_cost_rounds_up_to_a_micro_yuan_with_exact_ints() -> None:
    def cost(i: int, c: int, o: int, ip: int, cp: int, op: int) -> int:
        return cost_units(i, c, o, input_price=ip, cached_price=cp, output_price=op)

    assert cost(0, 0, 0, 1, 1, 1) == 0
    assert cost(1, 0, 0, 1, 0, 0) == 1  # a millionth of a micro-yuan still costs one
    assert cost(1_000_000, 0, 0, 1, 0, 0) == 1
    assert cost(1_000_001, 0, 0, 1, 0, 0) == 2
    # 1234 in at ¥0.5/M, 100 cached at ¥0.1/M, 77 out at ¥2/M:
    # (617_000_000 + 10_000_000 + 154_000_000) / 1e6 = 781 exactly.
    assert cost(1234, 100, 77, 500_000, 100_000, 2_000_000) == 781
    assert cost(1, 1, 1, 333_333, 333_333, 333_334) == 1
    assert cost(3, 0, 0, 333_333, 0, 0) == 1  # 0.999999 → 1
    # Huge numbers stay exact (a float would lose the last unit).
    assert cost(10**12, 0, 1, 10**9, 0, 1) == 10**15 + 1
    with pytest.raises(InvalidRequest):
        cost(-1, 0, 0, 1, 1, 1)


def test_worst_case_and_free_prices() -> None:
    price = Price("m", input_price=1_000_000, cached_input_price=100_000, output_price=2_000_000)
    assert price.worst_case(1000, 500) == 2000
    assert price.cost(300, 100, 200) == 710
    dear_cache = Price("m", input_price=1, cached_input_price=5_000_000, output_price=0)
    assert dear_cache.worst_case(1_000, 0) == 5_000  # the dearer rate bounds the prompt
    free = Price("f", 10, 10, 10, free=True)
    assert free.cost(10**6, 0, 10**6) == 0 and free.worst_case(10**6, 10**6) == 0


def test_openai_prompt_tokens_split_into_uncached_and_cached() -> None:
    assert split_prompt_tokens(1000, 300) == (700, 300)
    assert split_prompt_tokens(10, 50) == (0, 10)
    assert split_prompt_tokens(10, 0) == (10, 0)
