"""Every table of every pillar, in one metadata: what migrations are checked against."""

from __future__ import annotations

from danlu.billing import tables as billing_tables
from danlu.builder import tables as builder_tables
from danlu.community import tables as community_tables
from danlu.core import tables as core_tables
from danlu.gateway import tables as gateway_tables
from danlu.hub import tables as hub_tables
from danlu.insight import tables as insight_tables
from danlu.knowledge import tables as knowledge_tables
from danlu.refinery import job_tables as refinery_tables

metadata = core_tables.Base.metadata

__all__ = [
    "billing_tables",
    "builder_tables",
    "community_tables",
    "core_tables",
    "gateway_tables",
    "hub_tables",
    "insight_tables",
    "knowledge_tables",
    "metadata",
    "refinery_tables",
]
