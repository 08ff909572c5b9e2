"""The usage ledger: batched writes off the hot path, reports and CSV exports."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from danlu.billing import (
    Billing,
    UsageEntry,
    UsageRecorder,
    records_csv,
    report_csv,
    usage_records,
    usage_report,
)
from danlu.billing.tables import UsageRecord
from danlu.core.db import Database
from tests.billing.conftest import CHAT


def _rows(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(UsageRecord)) or 0)


def _entry(n: int, **overrides: object) -> UsageEntry:
    fields: dict[str, object] = {
        "request_id": f"req-{n}",
        "workspace_id": "ws_x",
        "key_id": "key-a",
        "user_id": "usr-a",
        "model": CHAT,
        "deployment": None,
        "input_tokens": 10,
        "cached_tokens": 0,
        "output_tokens": 5,
        "cost": 20,
        "shortfall": 0,
        "status": "ok",
    }
    fields.update(overrides)
    return UsageEntry(**fields)  # type: ignore[arg-type]


def test_settled_calls_are_written_in_batches_and_on_close(
    db: Database, billing: Billing, workspace_id: str
) -> None:
    billing.wallets.top_up(workspace_id, 1_000_000)
    recorder = UsageRecorder(db, batch_size=5, interval_s=3600)
    billing.recorder = recorder
    for n in range(4):
        reservation = billing.reserve(workspace_id, CHAT, 100, 100, f"req-{n}", "key-1")
        billing.settle(reservation, 50, 0, 50, latency_ms=10)
    # Money is exact at once; the ledger has not been written yet.
    assert billing.wallets.funds(workspace_id).balance == 1_000_000 - 4 * 150
    assert _rows(db) == 0 and recorder.pending == 4
    failed = billing.reserve(workspace_id, CHAT, 100, 100, "req-4", "key-1")
    billing.release(failed, "upstream_error")  # the fifth entry fills a batch
    deadline = time.monotonic() + 10
    while _rows(db) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _rows(db) == 5 and recorder.pending == 0
    free = billing.prices.set("gift", free=True)
    billing.settle(billing.reserve(workspace_id, free.model, 1, 1, "req-5", None), 1, 0, 1)
    assert recorder.pending == 1
    recorder.close()  # writes what is left
    assert _rows(db) == 6
    recorder.add(_entry(99, workspace_id=workspace_id))  # after close: written at once
    assert _rows(db) == 7
    records = usage_records(db, workspace_id, date.today() - timedelta(days=1), date.today())
    assert [r.request_id for r in records][:6] == [f"req-{n}" for n in range(6)]
    assert records[0].cost == 150 and records[0].latency_ms == 10
    assert records[4].status == "upstream_error" and records[4].cost == 0


def test_the_recorder_flushes_on_its_interval(db: Database) -> None:
    with UsageRecorder(db, batch_size=1000, interval_s=0.05) as recorder:
        recorder.add(_entry(1))
        deadline = time.monotonic() + 10
        while _rows(db) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _rows(db) == 1


def test_reports_group_by_key_model_and_utc_day_and_export_exact_csv(db: Database) -> None:
    day1 = datetime(2025, 3, 1, 23, 59, 59, tzinfo=UTC)
    day2 = datetime(2025, 3, 2, 0, 0, 0, tzinfo=UTC)
    # 07:30 on the 2nd in Beijing is 23:30 on the 1st in UTC: days are UTC days.
    beijing = datetime(2025, 3, 2, 7, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    with UsageRecorder(db, batch_size=100, interval_s=3600) as recorder:
        recorder.add(_entry(1, created_at=day1, cost=1, output_tokens=1))
        recorder.add(_entry(2, created_at=day2, cost=500, key_id=None, shortfall=100))
        recorder.add(_entry(3, created_at=beijing, model="=cmd|' /C calc'!A0", cost=2_000_001))
        recorder.add(_entry(4, created_at=day2, workspace_id="ws_other", cost=7))
        recorder.add(_entry(5, created_at=day2 + timedelta(days=1), cost=9))  # outside the range

    by_day = usage_report(db, "ws_x", date(2025, 3, 1), date(2025, 3, 2), by="day")
    assert [(r.group, r.requests, r.cost) for r in by_day] == [
        ("2025-03-01", 2, 2_000_002),
        ("2025-03-02", 1, 500),
    ]
    by_key = usage_report(db, "ws_x", date(2025, 3, 1), date(2025, 3, 2), by="key")
    assert [(r.group, r.requests, r.cost, r.charged) for r in by_key] == [
        ("", 1, 500, 400),
        ("key-a", 2, 2_000_002, 2_000_002),
    ]
    by_model = usage_report(db, "ws_x", date(2025, 3, 1), date(2025, 3, 2), by="model")
    assert {r.group: r.output_tokens for r in by_model} == {"=cmd|' /C calc'!A0": 5, CHAT: 6}

    text = report_csv(by_key, by="key")
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == [
        "key", "requests", "input_tokens", "cached_tokens", "output_tokens", "cost_yuan",
        "charged_yuan",
    ]  # fmt: skip
    assert parsed[1] == ["", "1", "10", "0", "5", "0.000500", "0.000400"]
    assert parsed[2] == ["key-a", "2", "20", "0", "6", "2.000002", "2.000002"]
    model_csv = list(csv.reader(io.StringIO(report_csv(by_model, by="model"))))
    assert model_csv[1][0] == "'=cmd|' /C calc'!A0"  # not a formula in a spreadsheet

    ledger = list(
        csv.DictReader(
            io.StringIO(records_csv(usage_records(db, "ws_x", date(2025, 3, 1), date(2025, 3, 1))))
        )
    )
    assert [row["request_id"] for row in ledger] == ["req-3", "req-1"]
    assert ledger[0]["created_at"] == "2025-03-01T23:30:00+00:00"
    assert ledger[0]["model"] == "'=cmd|' /C calc'!A0"
    assert ledger[1]["cost_yuan"] == "0.000001" and ledger[1]["latency_ms"] == ""


def test_a_failed_write_keeps_the_entries_for_the_next_try(tmp_path: Path) -> None:
    from danlu.core import migrate

    db = Database(f"sqlite:///{tmp_path / 'late.db'}")  # not migrated yet: writes fail
    try:
        recorder = UsageRecorder(db, batch_size=10, interval_s=3600)
        recorder.add(_entry(1))
        recorder.add(_entry(2))
        with pytest.raises(OperationalError):
            recorder.flush()
        assert recorder.pending == 2
        migrate.upgrade(db)
        recorder.close()
        assert _rows(db) == 2
    finally:
        db.dispose()
