"""The service over a real metadata database (SQLite and PostgreSQL): deleted apps keep
their history in the workspace's numbers, workspace time zones, feedback checks, and the
choice of store."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from danlu.builder.apps import Apps
from danlu.builder.runtime import EngineServices
from danlu.builder.tables import App, AppRun
from danlu.core.accounts import Accounts
from danlu.core.db import Database
from danlu.core.errors import ConfigError, InvalidRequest, NotFound
from danlu.core.keys import ApiKeys
from danlu.core.settings import load_settings
from danlu.core.tables import Workspace
from danlu.insight.recorder import write_events
from danlu.insight.service import Insight, open_store
from danlu.insight.stores.duckdb_store import DuckDBStore
from danlu.insight.window import Scope
from tests.insight.history import run, window


@pytest.fixture
def insight(db: Database, tmp_path: Path) -> Iterator[tuple[Insight, str]]:
    owner = Accounts(db).create_user("owner")
    with db.read() as session:
        workspace = session.query(Workspace).filter_by(slug=owner.username).one()
        workspace_id = workspace.id
    with db.write() as session:
        for app_id in ("app-keep", "app-gone"):
            session.add(
                App(
                    id=app_id,
                    slug=app_id,
                    workspace_id=workspace_id,
                    name=app_id,
                    mode="chat",
                    draft={},
                    created_by="owner",
                )
            )
    service = Insight(db, DuckDBStore(tmp_path / "insight.duckdb"), price_of=lambda m: None)
    yield service, workspace_id
    service.close()


def test_a_deleted_apps_history_stays_in_its_workspace(
    insight: tuple[Insight, str], db: Database
) -> None:
    service, workspace_id = insight
    write_events(
        service.store,
        run("a", "2024-03-01 10:00", app="app-keep", workspace=workspace_id)
        + run("b", "2024-03-01 11:00", app="app-gone", workspace=workspace_id)
        + run("b", "2024-03-02 11:00", app="app-gone", workspace=workspace_id),
    )
    with db.write() as session:
        gone = session.get(App, "app-gone")
        assert gone is not None
        session.delete(gone)
    w = window("2024-03-01", "2024-03-02")
    workspace = service.overview(Scope("workspace", workspace_id), w)["metrics"]
    assert workspace["active_users"]["value"] == 2 and workspace["runs"]["value"] == 3
    apps = {a["app_id"]: a for a in service.apps(workspace_id, w)}
    assert apps["app-gone"]["deleted"] is True and apps["app-gone"]["name"] is None
    assert apps["app-gone"]["runs"] == 2 and apps["app-gone"]["active_users"] == 1
    assert apps["app-keep"]["deleted"] is False and apps["app-keep"]["slug"] == "app-keep"
    # the app itself is gone: its own dashboard answers 404 like any unknown app
    keys = ApiKeys(db)
    owner = Accounts(db).user("owner")
    _, secret = keys.create(owner, "k")
    principal = keys.authenticate(secret)
    apps_service = Apps(db, keys, EngineServices(models=None))  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        apps_service.get(principal, "app-gone")


def test_workspace_time_zone(insight: tuple[Insight, str]) -> None:
    service, workspace_id = insight
    assert service.timezone_of(workspace_id) == "Asia/Shanghai"
    assert service.set_timezone(workspace_id, "Europe/Berlin") == "Europe/Berlin"
    assert service.timezone_of(workspace_id) == "Europe/Berlin"
    assert service.window(workspace_id, None, None, None).tz == "Europe/Berlin"
    with pytest.raises(InvalidRequest):
        service.set_timezone(workspace_id, "Europe/Atlantis")


def test_feedback_is_checked_and_queued(insight: tuple[Insight, str], db: Database) -> None:
    service, _ = insight
    with db.write() as session:
        session.add(
            AppRun(
                id="run-1",
                app_id="app-keep",
                version=1,
                status="succeeded",
                inputs={},
                outputs={},
                nodes=[],
                usage={},
                elapsed_ms=1.0,
                end_user="carol",
            )
        )
        session.add(
            AppRun(
                id="run-draft",
                app_id="app-keep",
                version=None,
                status="succeeded",
                inputs={},
                outputs={},
                nodes=[],
                usage={},
                elapsed_ms=1.0,
            )
        )
    with db.read() as session:
        app = session.get(App, "app-keep")
        other = session.get(App, "app-gone")
    assert app is not None and other is not None
    with pytest.raises(NotFound):
        service.feedback(other, "run-1", rating="like", comment=None, user=None, key_id="k")
    with pytest.raises(InvalidRequest):
        service.feedback(app, "run-1", rating=None, comment=None, user=None, key_id="k")
    with pytest.raises(InvalidRequest):
        service.feedback(app, "run-1", rating="love", comment=None, user=None, key_id="k")
    with pytest.raises(InvalidRequest, match="draft"):
        service.feedback(app, "run-draft", rating="like", comment=None, user=None, key_id="k")
    shown = service.feedback(app, "run-1", rating="like", comment="ok", user=None, key_id="k")
    assert shown["user"] == "carol"  # the run's end user
    deadline = time.monotonic() + 5
    while not service.feedback_of(["run-1"]) and time.monotonic() < deadline:
        service.recorder.flush()
    assert service.feedback_of(["run-1"]) == {"run-1": {"rating": "like", "comment": "ok"}}


SECOND_PROCESS = """
import sys
from danlu.core.db import Database
from danlu.core.settings import load_settings
from danlu.insight.service import open_store
home = sys.argv[1]
open_store(load_settings({"DANLU_HOME": home}), Database(f"sqlite:///{home}/danlu.db"))
"""


def test_the_store_setting(tmp_path: Path) -> None:
    sqlite = Database(f"sqlite:///{tmp_path / 'danlu.db'}")
    settings = load_settings({"DANLU_HOME": str(tmp_path)})
    store = open_store(settings, sqlite)  # auto with SQLite: DuckDB in HOME
    assert store.kind == "duckdb" and (tmp_path / "insight.duckdb").exists()
    # A second server process on the same home is told why it cannot start.
    second = subprocess.run(
        [sys.executable, "-c", SECOND_PROCESS, str(tmp_path)], capture_output=True, text=True
    )
    assert second.returncode != 0 and "PostgreSQL (DANLU_INSIGHT_STORE=database)" in second.stderr
    store.close()
    for value, message in (("database", "PostgreSQL"), ("clickhouse", "auto, duckdb")):
        chosen = load_settings({"DANLU_HOME": str(tmp_path), "DANLU_INSIGHT_STORE": value})
        with pytest.raises(ConfigError, match=message):
            open_store(chosen, sqlite)
    with pytest.raises(ConfigError, match="time zone"):
        Insight(sqlite, DuckDBStore(":memory:"), default_timezone="Mars/Base")
    sqlite.dispose()
