"""The usage ledger, written off the hot path.

Settling a call changes money at once (wallets, grants); the ledger row saying
what happened can wait. :class:`UsageRecorder` queues entries in memory and
writes them in one ``INSERT`` per batch, every ``batch_size`` entries or
``interval_s`` seconds, and on :meth:`close`. If the process dies first, the
queued rows are lost but every balance is still exact; the ledger is the
record, not the source of truth.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from types import TracebackType

from sqlalchemy import insert

from danlu.billing.tables import UsageRecord
from danlu.core.db import Database
from danlu.core.tables import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UsageEntry:
    """One request, as the ledger records it. Money in micro-yuan."""

    request_id: str
    workspace_id: str
    key_id: str | None
    user_id: str | None
    model: str
    deployment: str | None
    input_tokens: int  # prompt tokens not served from cache
    cached_tokens: int
    output_tokens: int
    cost: int  # what the tokens cost at the price held at reserve time
    shortfall: int  # the part of cost not collected (cost above the hold, or funds gone)
    status: str
    latency_ms: int | None = None
    ttft_ms: int | None = None
    created_at: datetime = field(default_factory=utcnow)

    @property
    def charged(self) -> int:
        return self.cost - self.shortfall


class UsageRecorder:
    """Queue :class:`UsageEntry` rows in memory; write them in batches from a thread.

    ``add`` never touches the database, so it is safe on an event loop.
    """

    def __init__(
        self,
        db: Database,
        *,
        batch_size: int = 200,
        interval_s: float = 2.0,
        max_pending: int = 100_000,
    ):
        if batch_size < 1 or interval_s <= 0 or max_pending < batch_size:
            raise ValueError("need batch_size >= 1, interval_s > 0, max_pending >= batch_size")
        self.db = db
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.max_pending = max_pending
        self.dropped = 0
        self._pending: list[UsageEntry] = []
        self._lock = threading.Lock()  # guards _pending
        self._writing = threading.Lock()  # one batch at a time, so rows keep their order
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="danlu-usage-recorder", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def add(self, entry: UsageEntry) -> None:
        entry = _fit(entry)
        with self._lock:
            if self._closed:
                closed = True
            else:
                closed = False
                self._pending.append(entry)
                overflow = len(self._pending) - self.max_pending
                if overflow > 0:
                    # The database has been failing for a long time: keep memory bounded.
                    del self._pending[:overflow]
                    self.dropped += overflow
                    log.error(
                        "usage ledger: dropped %d unwritten entries (database down?)", overflow
                    )
                if len(self._pending) >= self.batch_size:
                    self._wake.set()
        if closed:
            # Late arrivals after shutdown (a call finishing) are written at once.
            self._write([entry])

    def flush(self) -> int:
        """Write everything queued now; return how many rows were written."""
        with self._writing:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return 0
            try:
                self._write(batch)
            except BaseException:
                with self._lock:
                    self._pending[:0] = batch  # keep them for the next try
                raise
            return len(batch)

    def close(self) -> None:
        """Stop the thread and write what is left (raises if that last write fails)."""
        with self._lock:
            self._closed = True
        self._wake.set()
        self._thread.join()
        self.flush()

    def __enter__(self) -> UsageRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

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
                log.exception("usage ledger: writing a batch failed; will retry")

    def _write(self, batch: list[UsageEntry]) -> None:
        with self.db.write() as session:
            session.execute(insert(UsageRecord), [asdict(entry) for entry in batch])


def _fit(entry: UsageEntry) -> UsageEntry:
    """Cut text to its column, so one odd entry cannot make every batch fail."""
    return replace(
        entry,
        request_id=entry.request_id[:64],
        workspace_id=entry.workspace_id[:32],
        key_id=entry.key_id[:32] if entry.key_id else entry.key_id,
        user_id=entry.user_id[:32] if entry.user_id else entry.user_id,
        model=entry.model[:200],
        deployment=entry.deployment[:200] if entry.deployment else entry.deployment,
        status=entry.status[:16],
    )
