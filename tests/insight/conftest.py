"""Insight's stores under test: the embedded DuckDB store and the PostgreSQL store run the
same suite (each test that takes ``store`` runs on both)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from danlu.insight.stores.base import Store
from danlu.insight.stores.duckdb_store import DuckDBStore
from danlu.insight.stores.postgres_store import PostgresStore
from tests.support.postgres import scratch_database

STORES = ["duckdb", "postgresql"]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store of each kind, per test."""
    if request.param == "duckdb":
        duck = DuckDBStore(tmp_path / "insight.duckdb")
        yield duck
        duck.close()
        return
    with scratch_database() as url:
        postgres = PostgresStore(url)
        yield postgres
        postgres.close()
