"""Insight events, recorded off the hot path.

:meth:`InsightRecorder.observe` is what the builder calls when a run ends: it only
appends the finished run to an in-memory queue (no I/O, no computing) and never
raises. A background thread turns queued runs into events — tokens per model, cost
at the gateway's prices, time to first token — and writes them in batches, each in
one transaction with its rollups, every ``interval_s`` seconds or ``batch_size``
items. A failing write is logged and retried; after ``max_attempts`` the batch is
dropped (and counted) so one poison row cannot stop the recorder. If the process
dies, queued events are lost; the runs themselves are in the metadata database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from danlu.builder.apps import FinishedRun
from danlu.insight import rollups
from danlu.insight.events import FEEDBACK, Event
from danlu.insight.runs import PriceLookup, run_events
from danlu.insight.stores.base import Store, Tx

log = logging.getLogger(__name__)

Item = FinishedRun | Event


@dataclass
class RecorderStats:
    recorded: int = 0  # events written
    dropped: int = 0  # events or runs given up on
    failures: int = 0  # failed write attempts
    last_error: str | None = None
    skipped_drafts: int = 0


def write_events(store: Store, events: Sequence[Event]) -> None:
    """Append ``events`` and add them to every tracked time zone's rollups, atomically."""
    if not events:
        return
    with store.transaction() as tx:
        tx.stage(events)
        tx.execute("INSERT INTO events SELECT * FROM stage")
        for tz in rollups.tracked(tx):
            rollups.add(tx, store, "stage", tz)
        _merge_feedback(tx, [e for e in events if e.kind == FEEDBACK and e.run_id])


def _merge_feedback(tx: Tx, events: list[Event]) -> None:
    """Keep each run's latest rating and comment (a rating may change; a comment may come alone)."""
    latest: dict[str, dict[str, object]] = {}
    for event in sorted(events, key=lambda e: e.ts):
        row = latest.setdefault(
            str(event.run_id),
            {"rating": None, "comment": None, "rated_at": None},
        )
        row.update(
            run_id=event.run_id,
            workspace_id=event.workspace_id,
            app_id=event.app_id,
            user_id=event.user_id,
            ts=event.ts,
        )
        if event.rating is not None:
            row["rating"], row["rated_at"] = event.rating, event.ts
        if event.comment is not None:
            row["comment"] = event.comment
    for row in latest.values():
        tx.execute(
            """INSERT INTO feedback (run_id, workspace_id, app_id, user_id, rating, comment, ts)
               VALUES (:run_id, :workspace_id, :app_id, :user_id, :rating, :comment,
                       CAST(:ts AS TIMESTAMPTZ))
               ON CONFLICT (run_id) DO UPDATE SET
                   user_id = EXCLUDED.user_id,
                   rating = COALESCE(EXCLUDED.rating, feedback.rating),
                   comment = COALESCE(EXCLUDED.comment, feedback.comment),
                   ts = CASE WHEN EXCLUDED.rating IS NULL THEN feedback.ts ELSE EXCLUDED.ts END""",
            {**row, "ts": row["rated_at"] or row["ts"]},
        )


class InsightRecorder:
    """Queue finished runs and events in memory; write them in batches from a thread."""

    def __init__(
        self,
        store: Store,
        price_of: PriceLookup,
        *,
        interval_s: float = 2.0,
        batch_size: int = 500,
        max_pending: int = 100_000,
        max_attempts: int = 3,
    ):
        if interval_s <= 0 or batch_size < 1 or max_pending < batch_size or max_attempts < 1:
            raise ValueError("need interval_s > 0, batch_size >= 1, max_pending >= batch_size")
        self.store = store
        self.price_of = price_of
        self.interval_s = interval_s
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.max_attempts = max_attempts
        self.stats = RecorderStats()
        self._pending: list[Item] = []
        self._retry: list[Event] = []  # a batch whose write failed, tried again next time
        self._attempts = 0
        self._lock = threading.Lock()
        self._writing = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="danlu-insight", daemon=True)
        self._thread.start()

    # --- the hot path: O(1), never raises -----------------------------------------------

    def observe(self, finished: FinishedRun) -> None:
        """The builder's observer: queue a finished run (drafts are not end-user traffic)."""
        try:
            if finished.version is None:
                self.stats.skipped_drafts += 1
                return
            self._queue(finished)
        except Exception:  # recording must never break a run
            log.exception("insight: could not queue a run")

    def add(self, event: Event) -> None:
        """Queue one event (feedback, or events from elsewhere)."""
        try:
            self._queue(event)
        except Exception:
            log.exception("insight: could not queue an event")

    def _queue(self, item: Item) -> None:
        with self._lock:
            self._pending.append(item)
            overflow = len(self._pending) - self.max_pending
            if overflow > 0:  # the store has been failing for long: keep memory bounded
                del self._pending[:overflow]
                self.stats.dropped += overflow
                log.error("insight: dropped %d unwritten items (store down?)", overflow)
            if len(self._pending) >= self.batch_size:
                self._wake.set()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    # --- the writer thread ------------------------------------------------------------------

    def flush(self) -> int:
        """Write everything queued now; return how many events were written.

        Raises if the write fails; the events are kept for the next flush, up to
        ``max_attempts`` tries, then dropped (and counted in ``stats.dropped``).
        """
        with self._writing:
            with self._lock:
                batch, self._pending = self._pending, []
            events = self._retry + self._events(batch)
            self._retry = []
            if not events:
                return 0
            try:
                write_events(self.store, events)
            except Exception as exc:
                self.stats.failures += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                self._attempts += 1
                if self._attempts >= self.max_attempts:
                    self._attempts = 0
                    self.stats.dropped += len(events)
                    log.error("insight: gave up on %d events after repeated failures", len(events))
                else:
                    self._retry = events
                raise
            self._attempts = 0
            self.stats.recorded += len(events)
            return len(events)

    def _events(self, batch: list[Item]) -> list[Event]:
        events: list[Event] = []
        for item in batch:
            if isinstance(item, Event):
                events.append(item)
                continue
            try:
                events.extend(run_events(item, self.price_of))
            except Exception:  # one odd run must not lose the batch
                self.stats.dropped += 1
                log.exception("insight: could not turn a run into events")
        return events

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            with self._lock:
                if self._closed:
                    return
            try:
                self.flush()
            except Exception:
                log.warning("insight: writing a batch failed", exc_info=True)

    def close(self) -> None:
        """Stop the thread and write what is left (logging, not raising, if that fails)."""
        with self._lock:
            self._closed = True
        self._wake.set()
        self._thread.join()
        for _ in range(self.max_attempts):
            try:
                self.flush()
                return
            except Exception:
                log.warning("insight: writing the last batch failed", exc_info=True)

    def __enter__(self) -> InsightRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


__all__ = ["InsightRecorder", "RecorderStats", "write_events"]
