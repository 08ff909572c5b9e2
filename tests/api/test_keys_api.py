"""The /v1/keys API: secrets shown once, stored hashed, scoped to their owner."""

from __future__ import annotations

import hashlib

import httpx
from sqlalchemy import create_engine, text

from tests.support.server import RunningServer


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_create_list_revoke_over_http(server: RunningServer) -> None:
    created = httpx.post(
        f"{server.api}/keys", json={"name": "laptop"}, headers=_auth(server.admin_key), timeout=30
    )
    assert created.status_code == 201
    body = created.json()
    secret = body["key"]
    assert secret.startswith("sk-danlu-") and body["status"] == "active"
    assert secret.startswith(body["prefix"])

    listed = httpx.get(f"{server.api}/keys", headers=_auth(secret), timeout=30).json()["data"]
    mine = [k for k in listed if k["id"] == body["id"]]
    assert mine and "key" not in mine[0] and secret not in str(listed)

    gone = httpx.delete(
        f"{server.api}/keys/{body['id']}", headers=_auth(server.admin_key), timeout=30
    )
    assert gone.status_code == 204
    assert httpx.get(f"{server.api}/models", headers=_auth(secret), timeout=30).status_code == 401


def test_keys_are_stored_only_as_hashes(server: RunningServer) -> None:
    secret = server.create_key("hash-check")
    url = server.env.get("DANLU_DATABASE_URL") or f"sqlite:///{server.home / 'danlu.db'}"
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(text("select key_hash, prefix from api_keys")).all()
    engine.dispose()
    assert hashlib.sha256(secret.encode()).hexdigest() in {row.key_hash for row in rows}
    dump = str(rows)
    assert secret not in dump


def test_a_key_cannot_grant_more_than_it_has(server: RunningServer) -> None:
    narrow = server.create_key("narrow", "--scope", "inference")
    response = httpx.post(
        f"{server.api}/keys",
        json={"name": "wider", "scopes": ["inference", "hub:write"]},
        headers=_auth(narrow),
        timeout=30,
    )
    assert response.status_code == 403


def test_users_cannot_see_or_revoke_each_others_keys(server: RunningServer) -> None:
    server.cli("users", "create", "mei", "--password", "a-long-password")
    mei_key = server.create_key("mei-key", "--user", "mei")
    admin_owned = httpx.post(
        f"{server.api}/keys",
        json={"name": "admin-owned"},
        headers=_auth(server.admin_key),
        timeout=30,
    ).json()

    seen_by_mei = httpx.get(f"{server.api}/keys", headers=_auth(mei_key), timeout=30).json()["data"]
    assert {k["user"] for k in seen_by_mei} == {"mei"}
    # Another user's key answers 404, as if it did not exist.
    response = httpx.delete(
        f"{server.api}/keys/{admin_owned['id']}", headers=_auth(mei_key), timeout=30
    )
    assert response.status_code == 404
    assert (
        httpx.get(f"{server.api}/models", headers=_auth(admin_owned["key"]), timeout=30).status_code
        == 200
    )

    # mei cannot mint an admin key; the admin's admin-scoped key sees everyone's.
    refused = httpx.post(
        f"{server.api}/keys",
        json={"name": "x", "scopes": ["admin"]},
        headers=_auth(mei_key),
        timeout=30,
    )
    assert refused.status_code == 403
    everyone = httpx.get(f"{server.api}/keys", headers=_auth(server.admin_key), timeout=30).json()[
        "data"
    ]
    assert {"mei", "admin"} <= {k["user"] for k in everyone}


def test_any_key_can_manage_its_users_keys_within_its_scopes(server: RunningServer) -> None:
    hub_only = server.create_key("hub-reader", "--scope", "hub:read")
    listed = httpx.get(f"{server.api}/keys", headers=_auth(hub_only), timeout=30)
    assert listed.status_code == 200
    narrower = httpx.post(
        f"{server.api}/keys",
        json={"name": "n", "scopes": ["hub:read"]},
        headers=_auth(hub_only),
        timeout=30,
    )
    assert narrower.status_code == 201
    wider = httpx.post(
        f"{server.api}/keys", json={"name": "w"}, headers=_auth(hub_only), timeout=30
    )
    assert wider.status_code == 403
