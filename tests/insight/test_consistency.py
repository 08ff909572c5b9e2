"""Rollups kept batch by batch equal rollups built at once, and both equal a brute-force
count over the raw history — for an app and for its workspace, on both stores."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from danlu.insight import cohorts, metrics, rollups
from danlu.insight.events import Event
from danlu.insight.recorder import write_events
from danlu.insight.stores.base import Store
from danlu.insight.window import Scope, Window
from tests.insight.history import SHANGHAI, at, run

# Etc/GMT-8 is UTC+8 like Asia/Shanghai (no DST since 1991): the same days, another zone.
SAME_DAYS = "Etc/GMT-8"
START, END = date(2024, 3, 1), date(2024, 4, 9)


def history(seed: int = 11) -> list[Event]:
    rng = random.Random(seed)
    events: list[Event] = []
    for n in range(40):
        user = f"u{n}"
        first = START - timedelta(days=rng.randrange(0, 20)) + timedelta(days=rng.randrange(0, 45))
        for offset in range(0, 50):
            day = first + timedelta(days=offset)
            if day > END or (offset and rng.random() > 0.25 / (1 + offset / 10)):
                continue
            for _ in range(rng.randrange(1, 3)):
                app = rng.choice(["app-a", "app-b", "app-c"])
                events += run(
                    user,
                    f"{day} {rng.randrange(0, 24):02d}:{rng.randrange(0, 60):02d}",
                    app=app,
                    conversation=f"{user}-{app}-{rng.randrange(0, 3)}",
                    cost=rng.randrange(0, 50),
                    ok=rng.random() > 0.1,
                )
    return events


def reference(events: list[Event], app: str | None) -> dict[str, dict[str, set[date]]]:
    """Each user's set of active local days (runs), in one app or the whole workspace."""
    days: dict[str, set[date]] = defaultdict(set)
    for e in events:
        if e.kind == "run" and (app is None or e.app_id == app):
            days[e.user_id].add(e.ts.astimezone(ZoneInfo(SHANGHAI)).date())
    return {"days": days}  # type: ignore[dict-item]


def test_incremental_rollups_equal_a_fresh_build_and_a_brute_force_count(store: Store) -> None:
    events = history()
    rollups.track(store, SHANGHAI)
    shuffled = events[:]
    random.Random(3).shuffle(shuffled)  # out of order: late events land in earlier days
    for lo in range(0, len(shuffled), 37):
        write_events(store, shuffled[lo : lo + 37])
    assert rollups.track(store, SAME_DAYS)  # built from the raw events in one go

    for scope, app in ((Scope("app", "app-b"), "app-b"), (Scope("workspace", "ws-1"), None)):
        active = reference(events, app)["days"]
        first = {u: min(ds) for u, ds in active.items()}
        kept = Window(START, END, SHANGHAI)
        built = Window(START, END, SAME_DAYS)
        counts = metrics.active_counts(store, scope, kept)
        assert counts == metrics.active_counts(store, scope, built)
        for day in kept.each_day():
            dau = sum(day in ds for ds in active.values())
            wau = sum(
                any(day - timedelta(days=k) in ds for k in range(7)) for ds in active.values()
            )
            mau = sum(
                any(day - timedelta(days=k) in ds for k in range(30)) for ds in active.values()
            )
            assert counts[day] == (dau, wau, mau), (scope, day)

        retention = cohorts.retention(store, scope, kept, "day", 14)
        assert retention["cohorts"] == cohorts.retention(store, scope, built, "day", 14)["cohorts"]
        for row in retention["cohorts"]:
            cohort = date.fromisoformat(row["cohort"])
            members = [u for u, f in first.items() if f == cohort]
            assert row["size"] == len(members)
            for n in range(15):
                if cohort + timedelta(days=n) > END:
                    assert row["classic_users"][n] is None
                    continue
                target = cohort + timedelta(days=n)
                assert row["classic_users"][n] == sum(target in active[u] for u in members)
                assert row["unbounded_users"][n] == sum(
                    any(target <= x <= END for x in active[u]) for u in members
                )
        weekly = cohorts.retention(store, scope, kept, "week", 4)
        assert weekly["cohorts"] == cohorts.retention(store, scope, built, "week", 4)["cohorts"]

        ov_kept = metrics.overview(store, scope, kept)
        ov_built = metrics.overview(store, scope, built)
        assert ov_kept == ov_built
        in_window = {u for u, ds in active.items() if any(START <= x <= END for x in ds)}
        assert ov_kept["active_users"]["value"] == len(in_window)
        assert ov_kept["new_users"]["value"] == sum(START <= first[u] <= END for u in in_window)
        runs = [e for e in events if e.kind == "run" and (app is None or e.app_id == app)]
        assert ov_kept["runs"]["value"] == sum(
            START <= e.ts.astimezone(ZoneInfo(SHANGHAI)).date() <= END for e in runs
        )
        sessions = {
            e.conversation_id
            for e in runs
            if START <= e.ts.astimezone(ZoneInfo(SHANGHAI)).date() <= END
        }
        assert ov_kept["sessions"]["value"] == len(sessions)
        for name in metrics.SERIES:
            assert (
                metrics.series(store, scope, kept, name)["data"]
                == (metrics.series(store, scope, built, name)["data"])
            ), name


def test_a_workspace_counts_a_user_of_two_apps_once(store: Store) -> None:
    rollups.track(store, SHANGHAI)
    write_events(
        store,
        run("a", at("2024-03-01 10:00"), app="app-a")
        + run("a", at("2024-03-01 11:00"), app="app-b")
        + run("b", at("2024-03-01 12:00"), app="app-b"),
    )
    day = Window(date(2024, 3, 1), date(2024, 3, 1), SHANGHAI)
    workspace = metrics.overview(store, Scope("workspace", "ws-1"), day)
    assert workspace["active_users"]["value"] == 2 and workspace["runs"]["value"] == 3
    assert metrics.overview(store, Scope("app", "app-b"), day)["active_users"]["value"] == 2
    breakdown = metrics.apps_breakdown(store, Scope("workspace", "ws-1"), day)
    assert [(r["app_id"], r["runs"], r["active_users"]) for r in breakdown] == [
        ("app-b", 2, 2),
        ("app-a", 1, 1),
    ]
