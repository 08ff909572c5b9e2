"""Where insight keeps events and rollups: DuckDB (embedded) or PostgreSQL (scale path).

Both stores run the same SQL (``rollups.py``, ``metrics.py``); a store supplies the
connection, how a timestamp becomes a local date, and how a batch of rows is loaded.
"""

from __future__ import annotations

from danlu.insight.stores.base import Store, Tx, schema

__all__ = ["Store", "Tx", "schema"]
