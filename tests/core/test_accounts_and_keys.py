"""Accounts and keys on every metadata backend (the `db` fixture runs SQLite and PostgreSQL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from danlu.core import migrate
from danlu.core.accounts import Accounts
from danlu.core.db import Database
from danlu.core.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
)
from danlu.core.keys import ApiKeys, Scope, hash_key
from danlu.core.tables import ApiKey, Role
from danlu.schema import metadata


def test_migrations_build_exactly_the_declared_schema(db: Database) -> None:
    assert migrate.current_revision(db) == migrate.head_revision()
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    assert diff == []


def test_migrating_twice_is_harmless(db: Database) -> None:
    migrate.upgrade(db)
    assert migrate.current_revision(db) == migrate.head_revision()


def test_bootstrap_creates_one_admin_once(db: Database) -> None:
    accounts = Accounts(db)
    first = accounts.bootstrap("")
    assert first is not None and first.generated and len(first.password) >= 12
    assert accounts.bootstrap("") is None
    admin = accounts.check_password("admin", first.password)
    assert admin.is_admin
    assert accounts.role_in(admin.id, accounts.personal_workspace(admin).id) is Role.OWNER
    with pytest.raises(AuthenticationFailed):
        accounts.check_password("admin", "wrong")


def test_concurrent_bootstrap_makes_one_admin(db: Database) -> None:
    accounts = Accounts(db)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: accounts.bootstrap("pw-123456"), range(4)))
    assert sum(result is not None for result in results) == 1
    assert [u.username for u in accounts.users()] == ["admin"]


def test_names_are_validated_and_unique(db: Database) -> None:
    accounts = Accounts(db)
    accounts.create_user("li-lei")
    with pytest.raises(Conflict):
        accounts.create_user("LI-LEI")
    for bad in ["../x", "a/b", "-x", "x" * 65, "", "a\x00b", "api"]:
        with pytest.raises(InvalidRequest):
            accounts.create_user(bad)


def test_workspaces_and_roles(db: Database) -> None:
    accounts = Accounts(db)
    owner = accounts.create_user("owner")
    member = accounts.create_user("member")
    team = accounts.create_workspace("team-ai", "Team AI", owner)
    with pytest.raises(Conflict):
        accounts.create_workspace("owner", "clash with a user", owner)
    assert accounts.role_in(owner.id, team.id) is Role.OWNER
    assert accounts.role_in(member.id, team.id) is None
    accounts.set_role(team, member, Role.VIEWER)
    assert accounts.role_in(member.id, team.id) is Role.VIEWER
    accounts.set_role(team, member, Role.MEMBER)
    role = accounts.role_in(member.id, team.id)
    assert role is Role.MEMBER and role.at_least(Role.VIEWER) and not role.at_least(Role.ADMIN)


def test_key_lifecycle(db: Database) -> None:
    accounts, keys = Accounts(db), ApiKeys(db)
    user = accounts.create_user("wang")
    view, secret = keys.create(user, "laptop")
    assert secret.startswith("sk-danlu-") and len(secret) > 40
    assert view.prefix == secret[: len(view.prefix)] and view.status == "active"
    principal = keys.authenticate(secret)
    assert principal.username == "wang" and principal.workspace_slug == "wang"
    assert principal.scopes == frozenset(Scope.DEFAULT)
    with pytest.raises(PermissionDenied):
        principal.require(Scope.ADMIN)
    with db.read() as session:
        stored = session.get(ApiKey, view.id)
        assert stored is not None and stored.key_hash == hash_key(secret)
        assert stored.last_used_at is not None
    keys.revoke(view.id)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        keys.authenticate(secret)
    assert keys.list(user.id)[0].status == "revoked"


def test_key_rules(db: Database) -> None:
    accounts, keys = Accounts(db), ApiKeys(db)
    user = accounts.create_user("zhao")
    other = accounts.create_user("qian")
    with pytest.raises(PermissionDenied):
        keys.create(user, "sneaky", scopes=[Scope.ADMIN])
    with pytest.raises(InvalidRequest):
        keys.create(user, "typo", scopes=["inferense"])
    with pytest.raises(InvalidRequest):
        keys.create(user, "past", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(InvalidRequest):
        keys.create(user, "   ")
    view, _ = keys.create(user, "mine")
    with pytest.raises(NotFound):
        keys.revoke(view.id, by_user_id=other.id)
    for bad in ["", "sk-danlu-", "sk-danlu-nope", "Bearer x", "sk-other"]:
        with pytest.raises(AuthenticationFailed):
            keys.authenticate(bad)


def test_expired_key_is_refused(db: Database) -> None:
    accounts, keys = Accounts(db), ApiKeys(db)
    user = accounts.create_user("sun")
    view, secret = keys.create(user, "soon", expires_at=datetime.now(UTC) + timedelta(hours=1))
    with db.write() as session:
        stored = session.get(ApiKey, view.id)
        assert stored is not None
        stored.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    with pytest.raises(AuthenticationFailed, match="expired"):
        keys.authenticate(secret)


def test_disabled_user_keys_stop_working(db: Database) -> None:
    from danlu.core.tables import User

    accounts, keys = Accounts(db), ApiKeys(db)
    user = accounts.create_user("zhou")
    _, secret = keys.create(user, "k")
    with db.write() as session:
        stored = session.get(User, user.id)
        assert stored is not None
        stored.disabled = True
    with pytest.raises(AuthenticationFailed, match="disabled"):
        keys.authenticate(secret)


def test_failed_write_rolls_back(db: Database) -> None:
    accounts = Accounts(db)
    with pytest.raises(RuntimeError), db.write() as session:
        from danlu.core.tables import Workspace

        session.add(Workspace(id="ws_x", slug="ghost", name="ghost"))
        session.flush()
        raise RuntimeError("boom")
    with pytest.raises(NotFound):
        accounts.workspace("ghost")


def test_timestamps_come_back_aware_utc(db: Database) -> None:
    user = Accounts(db).create_user("wu")
    assert user.created_at.tzinfo is UTC
    view, _ = ApiKeys(db).create(user, "t")
    listed = ApiKeys(db).list(user.id)[0]
    assert listed.created_at.tzinfo is UTC
    assert abs((listed.created_at - view.created_at).total_seconds()) < 1


def test_keys_only_act_in_workspaces_their_user_belongs_to(db: Database) -> None:
    accounts, keys = Accounts(db), ApiKeys(db)
    owner = accounts.create_user("boss")
    outsider = accounts.create_user("outsider")
    team = accounts.create_workspace("crew", "Crew", owner)
    with pytest.raises(PermissionDenied, match="not a member"):
        keys.create(outsider, "sneak", workspace=team)
    accounts.set_role(team, outsider, Role.VIEWER)
    _, secret = keys.create(outsider, "ok", workspace=team)
    assert keys.authenticate(secret).workspace_slug == "crew"
