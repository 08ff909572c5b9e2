"""The insight service: the store, the recorder, workspace time zones, metrics and feedback.

Built once at start-up (``Insight.open``) and passed to the routes; the builder's
:class:`~danlu.builder.apps.Apps` is told about every run through ``recorder.observe``.
"""

# ruff: noqa: S608 - SQL is assembled from constant fragments (columns, tables, the store's
# date expression); every value is a bound parameter.

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select

from danlu.builder.tables import App, AppRun
from danlu.core.db import Database
from danlu.core.errors import ConfigError, InvalidRequest, NotFound
from danlu.core.settings import Settings
from danlu.core.tables import utcnow
from danlu.insight import cohorts, metrics, rollups
from danlu.insight.events import RATINGS, feedback_event, identity
from danlu.insight.prices import PriceBook
from danlu.insight.recorder import InsightRecorder
from danlu.insight.runs import PriceLookup
from danlu.insight.stores.base import Store
from danlu.insight.tables import InsightWorkspace
from danlu.insight.window import Scope, Window, zone

log = logging.getLogger(__name__)
MAX_COMMENT = 2000


def open_store(settings: Settings, db: Database) -> Store:
    """The store DANLU_INSIGHT_STORE names (``auto``: DuckDB beside SQLite, else PostgreSQL)."""
    choice = settings.insight_store.strip()
    if choice == "auto":
        choice = "duckdb" if db.is_sqlite else "database"
    if choice == "duckdb":
        return _duckdb(settings.home / "insight.duckdb")
    if choice == "database":
        if db.is_sqlite:
            raise ConfigError(
                "DANLU_INSIGHT_STORE=database needs a PostgreSQL metadata database; with "
                "SQLite use duckdb (the default)"
            )
        return _postgres(db.url)
    if choice.startswith("postgresql"):
        return _postgres(choice)
    raise ConfigError(
        "DANLU_INSIGHT_STORE is auto, duckdb, database or a postgresql+psycopg:// URL, "
        f"not {choice!r}"
    )


def _duckdb(path: Path) -> Store:
    from danlu.insight.stores.duckdb_store import DuckDBStore

    try:
        return DuckDBStore(path)
    except Exception as exc:  # most often: another process holds the file
        raise ConfigError(
            f"cannot open the insight store {path}: {exc}. A DuckDB file serves one process; "
            "run several servers against PostgreSQL (DANLU_INSIGHT_STORE=database)"
        ) from exc


def _postgres(url: str) -> Store:
    from danlu.insight.stores.postgres_store import PostgresStore

    return PostgresStore(url)


class Insight:
    """Analytics for apps and workspaces."""

    def __init__(
        self,
        db: Database,
        store: Store,
        *,
        default_timezone: str = "Asia/Shanghai",
        price_of: PriceLookup | None = None,
        flush_interval_s: float = 2.0,
    ):
        try:
            zone(default_timezone)
        except InvalidRequest:
            raise ConfigError(
                f"DANLU_INSIGHT_TIMEZONE {default_timezone!r} is not an IANA time zone "
                "(e.g. Asia/Shanghai, UTC)"
            ) from None
        self.db = db
        self.store = store
        self.default_timezone = default_timezone
        rollups.track(store, default_timezone)
        self.recorder = InsightRecorder(
            store, price_of or PriceBook(db), interval_s=flush_interval_s
        )

    @classmethod
    def open(cls, settings: Settings, db: Database) -> Insight:
        return cls(
            db,
            open_store(settings, db),
            default_timezone=settings.insight_timezone,
            flush_interval_s=settings.insight_flush_seconds,
        )

    def close(self) -> None:
        """Write what the recorder holds, then close the store."""
        self.recorder.close()
        self.store.close()

    # --- time zones ---------------------------------------------------------------------

    def timezone_of(self, workspace_id: str) -> str:
        with self.db.read() as session:
            row = session.get(InsightWorkspace, workspace_id)
        return row.timezone if row is not None else self.default_timezone

    def set_timezone(self, workspace_id: str, tz: str) -> str:
        """Count this workspace's days in ``tz`` (its rollups are built now if they are new)."""
        zone(tz)
        rollups.track(self.store, tz)
        with self.db.write() as session:
            row = session.get(InsightWorkspace, workspace_id)
            if row is None:
                session.add(InsightWorkspace(workspace_id=workspace_id, timezone=tz))
            else:
                row.timezone, row.updated_at = tz, utcnow()
        return tz

    def window(
        self, workspace_id: str, start: date | None, end: date | None, tz: str | None
    ) -> Window:
        """The window asked for, in ``tz`` or the workspace's zone (its rollups made ready)."""
        found = Window.of(start, end, tz or self.timezone_of(workspace_id))
        rollups.track(self.store, found.tz)
        return found

    # --- metrics --------------------------------------------------------------------------

    def overview(self, scope: Scope, window: Window) -> dict[str, Any]:
        return {
            "object": "insight.overview",
            "scope": {"kind": scope.kind, "id": scope.id},
            "tz": window.tz,
            "from": str(window.start),
            "to": str(window.end),
            "metrics": metrics.overview(self.store, scope, window),
        }

    def series(self, scope: Scope, window: Window, metric: str) -> dict[str, Any]:
        return metrics.series(self.store, scope, window, metric)

    def retention(
        self, scope: Scope, window: Window, grain: cohorts.Grain, periods: int | None
    ) -> dict[str, Any]:
        return cohorts.retention(self.store, scope, window, grain, periods)

    def users(self, scope: Scope, window: Window, limit: int, offset: int) -> dict[str, Any]:
        return cohorts.users(self.store, scope, window, limit=limit, offset=offset)

    def apps(self, workspace_id: str, window: Window) -> list[dict[str, Any]]:
        """Per-app totals of a workspace, deleted apps included (their history stays)."""
        rows = metrics.apps_breakdown(self.store, Scope("workspace", workspace_id), window)
        with self.db.read() as session:
            known = {
                a.id: a
                for a in session.scalars(select(App).where(App.workspace_id == workspace_id))
            }
        shown = []
        for row in rows:
            app = known.get(row["app_id"])
            shown.append(
                {
                    **row,
                    "slug": app.slug if app else None,
                    "name": app.name if app else None,
                    "deleted": app is None,
                }
            )
        return shown

    # --- feedback -------------------------------------------------------------------------

    def feedback(
        self,
        app: App,
        run_id: str,
        *,
        rating: str | None,
        comment: str | None,
        user: str | None,
        key_id: str,
    ) -> dict[str, Any]:
        """Record an end user's like, dislike or comment on one run's answer."""
        if rating is None and comment is None:
            raise InvalidRequest("send a rating (like, dislike or none) or a comment")
        if rating is not None and rating not in RATINGS:
            raise InvalidRequest(
                f"rating is one of {', '.join(RATINGS)}, not {rating!r}", param="rating"
            )
        if comment is not None and len(comment) > MAX_COMMENT:
            raise InvalidRequest(f"a comment has at most {MAX_COMMENT} characters", param="comment")
        with self.db.read() as session:
            run = session.get(AppRun, run_id)
        if run is None or run.app_id != app.id:
            raise NotFound(f"no run {run_id!r} in this app", param="run_id")
        if run.version is None:
            raise InvalidRequest(
                "this run is of the draft: feedback counts for published runs only",
                param="run_id",
            )
        user_id, user_kind = identity(user or run.end_user, run.conversation_id, key_id)
        event = feedback_event(
            workspace_id=app.workspace_id,
            app_id=app.id,
            run_id=run.id,
            user_id=user_id,
            user_kind=user_kind,
            rating=rating,
            comment=comment,
            conversation_id=run.conversation_id,
        )
        self.recorder.add(event)
        return {
            "object": "insight.feedback",
            "run_id": run.id,
            "rating": rating,
            "comment": comment,
            "user": user_id,
            "recorded": True,
        }

    def feedback_of(self, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The latest rating and comment of each of these runs (those that have one)."""
        if not run_ids:
            return {}
        names = {f"r{i}": run_id for i, run_id in enumerate(run_ids[:1000])}
        rows = self.store.fetch(
            "SELECT run_id, rating, comment FROM feedback WHERE run_id IN ("
            + ", ".join(":" + name for name in names)
            + ")",
            names,
        )
        return {str(r[0]): {"rating": r[1], "comment": r[2]} for r in rows}

    def run_record(self, run_id: str) -> dict[str, Any] | None:
        """What insight recorded about a run: cost, tokens, time to first token, node starts."""
        rows = self.store.fetch(
            """SELECT model, input_tokens, output_tokens, cost, latency_ms, ttft_ms, detail,
                      user_id, user_kind
               FROM events WHERE run_id = :run AND kind = 'run' LIMIT 1""",
            {"run": run_id},
        )
        if not rows:
            return None
        model, tokens_in, tokens_out, cost, latency, ttft, detail, user_id, user_kind = rows[0]
        return {
            "model": model,
            "input_tokens": int(tokens_in),
            "output_tokens": int(tokens_out),
            "cost": int(cost),
            "latency_ms": latency,
            "ttft_ms": ttft,
            "detail": detail,
            "user": user_id,
            "user_kind": user_kind,
        }


__all__ = ["Insight", "open_store"]
