"""Billing: prices, balances, credit grants, redemption codes, holds and the usage ledger.

All money is integer micro-yuan (1 yuan = 1,000,000 units); see docs/billing.md.
"""

from __future__ import annotations

from danlu.billing.codes import CodeView, RedemptionCodes
from danlu.billing.holds import Holds, Reservation
from danlu.billing.money import (
    UNITS_PER_LI,
    UNITS_PER_YUAN,
    cost_units,
    format_yuan,
    parse_price,
    split_prompt_tokens,
    yuan_to_units,
)
from danlu.billing.prices import ModelNotPriced, Price, Prices
from danlu.billing.recorder import UsageEntry, UsageRecorder
from danlu.billing.reports import (
    UsageRow,
    records_csv,
    report_csv,
    usage_records,
    usage_report,
)
from danlu.billing.service import Billing
from danlu.billing.wallets import Funds, Grant, Wallets

__all__ = [
    "UNITS_PER_LI",
    "UNITS_PER_YUAN",
    "Billing",
    "CodeView",
    "Funds",
    "Grant",
    "Holds",
    "ModelNotPriced",
    "Price",
    "Prices",
    "RedemptionCodes",
    "Reservation",
    "UsageEntry",
    "UsageRecorder",
    "UsageRow",
    "Wallets",
    "cost_units",
    "format_yuan",
    "parse_price",
    "records_csv",
    "report_csv",
    "split_prompt_tokens",
    "usage_records",
    "usage_report",
    "yuan_to_units",
]
