"""Every metric against its formula, on histories small enough to count by hand.

Each test runs on the DuckDB store and on the PostgreSQL store (the ``store`` fixture).
Times are local Asia/Shanghai times unless a test says otherwise.
"""

from __future__ import annotations

from danlu.insight import cohorts, metrics, rollups
from danlu.insight.formulas import FORMULAS
from danlu.insight.stores.base import Store
from danlu.insight.window import Scope
from tests.insight.history import app_scope, feedback, load, run, window


def values(series: dict) -> list:  # type: ignore[type-arg]
    return [p["value"] for p in series["data"]]


def overview_values(store: Store, scope: Scope, start: str, end: str) -> dict:  # type: ignore[type-arg]
    return {k: v["value"] for k, v in metrics.overview(store, scope, window(start, end)).items()}


def test_dau_wau_mau_and_stickiness(store: Store) -> None:
    # a: Mar 1, 2, 10 · b: Mar 2 · c: Mar 9, 10 (two runs on the 10th count once)
    load(
        store,
        run("a", "2024-03-01 09:00"),
        run("a", "2024-03-02 09:00"),
        run("b", "2024-03-02 21:00"),
        run("c", "2024-03-09 12:00"),
        run("c", "2024-03-10 08:00"),
        run("c", "2024-03-10 20:00"),
        run("a", "2024-03-10 23:59"),
    )
    w = window("2024-03-01", "2024-03-10")
    assert values(metrics.series(store, app_scope(), w, "dau")) == [1, 2, 0, 0, 0, 0, 0, 0, 1, 2]
    # WAU(d): users active on d-6 … d.  Mar 8: days 2-8 → {a, b}; Mar 9: 3-9 → {c};
    # Mar 10: 4-10 → {a, c}.
    assert values(metrics.series(store, app_scope(), w, "wau")) == [1, 2, 2, 2, 2, 2, 2, 2, 1, 2]
    assert values(metrics.series(store, app_scope(), w, "mau")) == [1, 2, 2, 2, 2, 2, 2, 2, 3, 3]
    stickiness = metrics.series(store, app_scope(), w, "stickiness")
    assert values(stickiness)[-1] == round(2 / 3, 4)
    assert stickiness["data"][-1]["dau"] == 2 and stickiness["data"][-1]["mau"] == 3
    assert stickiness["formula"] == "DAU(d) ÷ MAU(d)"

    found = overview_values(store, app_scope(), "2024-03-01", "2024-03-10")
    assert found["active_users"] == 3
    assert found["dau"] == 2 and found["wau"] == 2 and found["mau"] == 3
    # user-days: 1 + 2 + 1 + 2 = 6 over 10 days; stickiness = avg DAU ÷ MAU(to)
    assert found["avg_dau"] == 0.6
    assert found["stickiness"] == 0.2
    assert found["runs"] == 7 and found["messages"] == 7


def test_mau_counts_activity_before_the_window(store: Store) -> None:
    # d was active 29 days before Mar 10 (Feb 10, leap year: Feb 10 + 29 = Mar 10) and 30
    # days before Mar 11: in MAU on Mar 10, out of it on Mar 11.
    load(store, run("d", "2024-02-10 12:00"), run("e", "2024-03-11 12:00"))
    mau = metrics.series(store, app_scope(), window("2024-03-09", "2024-03-11"), "mau")
    assert values(mau) == [1, 1, 1]  # Mar 11: d is gone, e arrived
    dau = metrics.series(store, app_scope(), window("2024-03-09", "2024-03-11"), "dau")
    assert values(dau) == [0, 0, 1]
    wau = metrics.series(store, app_scope(), window("2024-03-09", "2024-03-11"), "wau")
    assert values(wau) == [0, 0, 1]


def test_new_and_returning_users_first_seen_late_in_the_window(store: Store) -> None:
    load(
        store,
        run("h", "2024-02-20 10:00"),  # first seen before the window: returning
        run("h", "2024-03-02 10:00"),
        run("a", "2024-03-01 10:00"),
        run("f", "2024-03-05 23:30"),  # first seen on the window's last day
    )
    found = overview_values(store, app_scope(), "2024-03-01", "2024-03-05")
    assert found["active_users"] == 3
    assert found["new_users"] == 2  # a, f
    assert found["returning_users"] == 1  # h
    w = window("2024-03-01", "2024-03-05")
    assert values(metrics.series(store, app_scope(), w, "new_users")) == [1, 0, 0, 0, 1]
    assert values(metrics.series(store, app_scope(), w, "returning_users")) == [0, 1, 0, 0, 0]
    users = cohorts.users(store, app_scope(), w)
    assert users["summary"] == {
        "active_users": 3,
        "new_users": 2,
        "returning_users": 1,
        "known_users": 3,
        "anonymous_users": 0,
    }
    listed = {u["user"]: u for u in users["data"]}
    assert listed["h"]["first_seen"] == "2024-02-20" and listed["h"]["active_days"] == 1


def test_retention_by_day_classic_and_unbounded(store: Store) -> None:
    load(
        store,
        # cohort Mar 1: a (active 1, 2, 4) and e (active 1, 3)
        run("a", "2024-03-01 09:00"),
        run("a", "2024-03-02 09:00"),
        run("a", "2024-03-04 09:00"),
        run("e", "2024-03-01 18:00"),
        run("e", "2024-03-03 18:00"),
        # cohort Mar 4: g (4, 5); cohort Mar 5: f, first seen on the last day
        run("g", "2024-03-04 12:00"),
        run("g", "2024-03-05 12:00"),
        run("f", "2024-03-05 22:00"),
        # first seen before the window: in no cohort of it
        run("h", "2024-02-20 10:00"),
        run("h", "2024-03-02 10:00"),
    )
    table = cohorts.retention(store, app_scope(), window("2024-03-01", "2024-03-05"), "day", 3)
    rows = {r["cohort"]: r for r in table["cohorts"]}
    assert [r["cohort"] for r in table["cohorts"]] == [f"2024-03-0{i}" for i in range(1, 6)]
    mar1 = rows["2024-03-01"]
    assert mar1["size"] == 2
    assert mar1["classic_users"] == [2, 1, 1, 1]  # day 1: a; day 2: e; day 3: a
    assert mar1["classic"] == [1.0, 0.5, 0.5, 0.5]
    assert mar1["unbounded_users"] == [2, 2, 2, 1]  # e's last day is day 2, a's day 3
    assert rows["2024-03-02"]["size"] == 0
    assert rows["2024-03-02"]["classic"] == [None, None, None, None]  # nobody to divide
    assert rows["2024-03-04"]["classic_users"] == [1, 1, None, None]  # Mar 6+ is after `to`
    assert rows["2024-03-05"]["classic_users"] == [1, None, None, None]
    # users-weighted average per period over cohorts that can show it
    assert table["average"]["classic"][:2] == [1.0, round(2 / 3, 4)]
    assert table["formula"]["classic"] == FORMULAS["retention_classic"].formula


def test_retention_by_week(store: Store) -> None:
    # 2024-03-04 is a Monday. Cohort week of Mar 4: p (Mar 4, Mar 13, Mar 27), q (Mar 10);
    # cohort week of Mar 11: r (Mar 17, Mar 18).
    load(
        store,
        run("p", "2024-03-04 10:00"),
        run("p", "2024-03-13 10:00"),
        run("p", "2024-03-27 10:00"),
        run("q", "2024-03-10 23:00"),
        run("r", "2024-03-17 10:00"),
        run("r", "2024-03-18 10:00"),
    )
    table = cohorts.retention(store, app_scope(), window("2024-03-06", "2024-03-28"), "week", 3)
    rows = {r["cohort"]: r for r in table["cohorts"]}
    assert list(rows) == ["2024-03-04", "2024-03-11", "2024-03-18", "2024-03-25"]
    assert rows["2024-03-04"]["size"] == 2
    assert rows["2024-03-04"]["classic_users"] == [2, 1, 0, 1]
    assert rows["2024-03-04"]["unbounded_users"] == [2, 1, 1, 1]
    assert rows["2024-03-11"]["classic_users"] == [1, 1, 0, None]  # week of Apr 1 not begun
    assert rows["2024-03-18"]["size"] == 0


def test_timezone_boundaries(store: Store) -> None:
    # 15:59:59 UTC is 23:59:59 in Shanghai; 16:00:00 UTC is already the next day there.
    x = run("x", "2024-03-01 15:59:59", tz="UTC")
    y = run("y", "2024-03-01 16:00:00", tz="UTC")
    load(store, x, y)
    shanghai = metrics.series(store, app_scope(), window("2024-03-01", "2024-03-02"), "dau")
    assert values(shanghai) == [1, 1]
    rollups.track(store, "UTC")  # built from the raw events, once
    utc = metrics.series(store, app_scope(), window("2024-03-01", "2024-03-02", "UTC"), "dau")
    assert values(utc) == [2, 0]
    # Both zones are kept from now on: a later batch lands in each.
    load(store, run("z", "2024-03-02 07:00", tz="UTC"))
    assert values(
        metrics.series(store, app_scope(), window("2024-03-01", "2024-03-02"), "dau")
    ) == [1, 2]
    assert values(
        metrics.series(store, app_scope(), window("2024-03-01", "2024-03-02", "UTC"), "dau")
    ) == [2, 1]
    # Daylight saving: New York moved to UTC-4 at 2024-03-10 02:00 local.
    rollups.track(store, "America/New_York")
    load(store, run("n", "2024-03-10 04:30", tz="UTC"), run("o", "2024-03-10 04:30", tz="UTC"))
    load(store, run("n", "2024-03-11 03:30", tz="UTC"))  # 23:30 EDT on Mar 10
    ny = metrics.series(
        store, app_scope(), window("2024-03-09", "2024-03-10", "America/New_York"), "dau"
    )
    assert values(ny) == [2, 1]  # 04:30 UTC is 23:30 EST on Mar 9


def test_churn(store: Store) -> None:
    # window Mar 11-20, previous period Mar 1-10
    load(
        store,
        run("stays", "2024-03-05 10:00"),
        run("stays", "2024-03-15 10:00"),
        run("leaves", "2024-03-03 10:00"),
        run("leaves", "2024-03-08 10:00"),
        run("arrives", "2024-03-12 10:00"),
        run("older", "2024-02-20 10:00"),  # before the previous period: not counted
    )
    found = metrics.overview(store, app_scope(), window("2024-03-11", "2024-03-20"))
    assert found["churn"]["value"] == 0.5
    assert found["churn"]["inputs"]["churned"] == 1
    assert found["churn"]["inputs"]["previous_period_users"] == 2
    assert found["churn"]["inputs"]["previous_period"] == ["2024-03-01", "2024-03-10"]


def test_messages_sessions_satisfaction_errors_and_cost(store: Store) -> None:
    c1 = [
        run("a", f"2024-03-01 10:0{i}", conversation="c1", new_conversation=i == 0, cost=10)
        for i in range(3)
    ]
    c2 = [
        run("b", "2024-03-01 11:00", conversation="c2", new_conversation=True, cost=20),
        run("b", "2024-03-02 11:00", conversation="c2", cost=20),
    ]
    workflow = run("d", "2024-03-02 12:00", cost=100, tokens=(50, 7))
    failed = run("d", "2024-03-02 12:05", ok=False)
    liked = feedback(c1[0], "2024-03-01 10:30", rating="like")
    changed = [
        feedback(c2[0], "2024-03-01 12:00", rating="like"),
        feedback(c2[0], "2024-03-02 12:00", rating="dislike"),  # a like taken back
    ]
    comment_only = feedback(workflow, "2024-03-02 13:00", comment="useful")
    load(store, *c1, *c2, workflow, failed, [liked], changed, [comment_only])
    found = overview_values(store, app_scope(), "2024-03-01", "2024-03-02")
    assert found["runs"] == 7 and found["failed_runs"] == 1
    assert found["error_rate"] == round(1 / 7, 4)
    assert found["messages"] == 6
    assert found["conversations"] == 2
    assert found["sessions"] == 2  # c1 and c2 (c2 on two days is one conversation)
    assert found["messages_per_session"] == 2.5  # 5 answers in conversations ÷ 2
    assert found["likes"] == 1 and found["dislikes"] == 1 and found["comments"] == 1
    assert found["satisfaction"] == round(1000 * 1 / 6, 1)
    assert found["cost"] == 170
    assert found["cost_per_user"] == round(170 / 3, 1)
    assert found["cost_per_conversation"] == 35.0  # (30 + 40) ÷ 2
    assert found["input_tokens"] == 50 and found["output_tokens"] == 7
    # per day
    w = window("2024-03-01", "2024-03-02")
    assert values(metrics.series(store, app_scope(), w, "sessions")) == [2, 1]
    assert values(metrics.series(store, app_scope(), w, "cost")) == [50, 120]
    assert values(metrics.series(store, app_scope(), w, "errors")) == [0.0, 0.3333]
    assert values(metrics.series(store, app_scope(), w, "cost_per_user")) == [25.0, 60.0]
    # likes on the day they were given: c1's like on Mar 1; c2's like moved to a dislike
    assert values(metrics.series(store, app_scope(), w, "satisfaction")) == [250.0, 0.0]
    assert values(metrics.series(store, app_scope(), w, "tokens")) == [0, 57]


def test_latency_percentiles_from_the_histogram(store: Store) -> None:
    latencies = [100.0 * i for i in range(1, 21)]  # 100 … 2000 ms
    load(
        store,
        *(run("a", "2024-03-01 10:00", latency_ms=ms, ttft_ms=ms / 10) for ms in latencies),
        run("a", "2024-03-01 11:00", ok=False, latency_ms=99_999.0),  # failures not counted
    )
    found = metrics.overview(store, app_scope(), window("2024-03-01", "2024-03-01"))
    # nearest rank: p50 = the 10th smallest (1000 ms), p95 = the 19th (1900 ms)
    for name, exact in (
        ("latency_p50", 1000),
        ("latency_p95", 1900),
        ("ttft_p50", 100),
        ("ttft_p95", 190),
    ):
        value = found[name]["value"]
        assert exact <= value <= exact * 1.02 + 0.1, (name, value)
        assert found[name]["inputs"]["runs"] == 20
    daily = metrics.series(store, app_scope(), window("2024-03-01", "2024-03-01"), "latency")
    assert daily["data"][0]["p50"] == found["latency_p50"]["value"]
    assert daily["data"][0]["p95"] == found["latency_p95"]["value"]


def test_every_overview_metric_states_its_formula(store: Store) -> None:
    load(store, run("a", "2024-03-01 10:00"))
    found = metrics.overview(store, app_scope(), window("2024-03-01", "2024-03-01"))
    for name, shown in found.items():
        assert shown["formula"] == FORMULAS[name].formula, name
        assert shown["unit"] == FORMULAS[name].unit
    for name in metrics.SERIES:
        assert metrics.series(store, app_scope(), window("2024-03-01", "2024-03-01"), name)[
            "formula"
        ]
