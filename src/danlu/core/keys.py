"""API keys: ``sk-danlu-…`` secrets, stored only as SHA-256, shown once.

A key acts for one user in one workspace, limited to its scopes. Keys carry
enough entropy (256 bits) that a fast hash is safe; a slow password hash would
only add latency to every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from danlu.core.db import Database
from danlu.core.errors import AuthenticationFailed, InvalidRequest, NotFound, PermissionDenied
from danlu.core.ids import new_id
from danlu.core.tables import ApiKey, Membership, User, Workspace, utcnow

KEY_PREFIX = "sk-danlu-"


class Scope:
    """What a key may do. Checked by the API layer for each route."""

    INFERENCE = "inference"
    HUB_READ = "hub:read"
    HUB_WRITE = "hub:write"
    ADMIN = "admin"

    ALL = frozenset({INFERENCE, HUB_READ, HUB_WRITE, ADMIN})
    DEFAULT = (INFERENCE, HUB_READ, HUB_WRITE)


# Writing last_used_at on every request would turn each read into a write.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user and workspace behind a valid key."""

    user_id: str
    username: str
    workspace_id: str
    workspace_slug: str
    key_id: str
    scopes: frozenset[str]
    is_admin: bool
    # Set for an app key: it may run this one app and nothing else.
    app_id: str | None = None

    def require(self, scope: str) -> None:
        if self.app_id is not None:
            raise PermissionDenied(
                "this is an app key: it can only run its own app (POST /v1/apps/{app}/run "
                "or /chat, or the model app:{slug})",
                code="app_key",
            )
        if scope not in self.scopes:
            raise PermissionDenied(
                f"this API key lacks the {scope!r} scope; create a key with it "
                f"(danlu keys create --scope {scope})",
                code="insufficient_scope",
            )


@dataclass(frozen=True)
class KeyView:
    """A key as listings show it: never the secret."""

    id: str
    name: str
    prefix: str
    username: str
    workspace: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= utcnow():
            return "expired"
        return "active"


AUTH_CACHE_SECONDS = 5.0
AUTH_CACHE_MAX = 10_000


class ApiKeys:
    """Create, list, revoke and check API keys."""

    def __init__(self, db: Database):
        self.db = db
        # Recently authenticated keys (digest -> until, principal, the key's expiry): the hot
        # path of every API call skips the database for AUTH_CACHE_SECONDS. A key revoked
        # in another process keeps working at most that long; here, revoking evicts it.
        self._recent: dict[str, tuple[float, Principal, datetime | None]] = {}

    def create(
        self,
        user: User,
        name: str,
        *,
        scopes: list[str] | tuple[str, ...] = Scope.DEFAULT,
        expires_at: datetime | None = None,
        workspace: Workspace | None = None,
        app_id: str | None = None,
    ) -> tuple[KeyView, str]:
        """Make a key; return it and its secret, which is never retrievable again."""
        name = name.strip()
        if not name or len(name) > 128:
            raise InvalidRequest("a key needs a name of 1-128 characters", param="name")
        unknown = set(scopes) - Scope.ALL
        if unknown:
            raise InvalidRequest(
                f"unknown scope(s) {sorted(unknown)}; choose from {sorted(Scope.ALL)}",
                param="scopes",
            )
        if Scope.ADMIN in scopes and not user.is_admin:
            raise PermissionDenied("only admin users can hold keys with the 'admin' scope")
        if expires_at is not None and expires_at <= utcnow():
            raise InvalidRequest("expires_at must be in the future", param="expires_at")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.db.write() as session:
            if workspace is None:
                workspace = session.scalar(select(Workspace).where(Workspace.slug == user.username))
                assert workspace is not None, "every user has a personal workspace"
            elif session.get(Membership, (workspace.id, user.id)) is None:
                raise PermissionDenied(
                    f"{user.username} is not a member of workspace {workspace.slug!r}; "
                    "add them first (danlu workspaces set-role)",
                    param="workspace",
                )
            key = ApiKey(
                id=new_id("key"),
                name=name,
                key_hash=hash_key(secret),
                prefix=secret[: len(KEY_PREFIX) + 4],
                user_id=user.id,
                workspace_id=workspace.id,
                scopes=sorted(set(scopes)),
                expires_at=expires_at,
                app_id=app_id,
            )
            session.add(key)
            session.flush()
            return self._view(key, user.username, workspace.slug), secret

    def list(self, user_id: str | None = None) -> list[KeyView]:
        """All keys, or one user's, newest first."""
        query = (
            select(ApiKey, User.username, Workspace.slug)
            .join(User, User.id == ApiKey.user_id)
            .join(Workspace, Workspace.id == ApiKey.workspace_id)
            .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
        )
        if user_id is not None:
            query = query.where(ApiKey.user_id == user_id)
        with self.db.read() as session:
            return [
                self._view(key, username, slug) for key, username, slug in session.execute(query)
            ]

    def revoke(self, key_id: str, *, by_user_id: str | None = None) -> KeyView:
        """Revoke a key by id. ``by_user_id`` limits it to that user's own keys."""
        with self.db.write() as session:
            row = session.execute(
                select(ApiKey, User.username, Workspace.slug)
                .join(User, User.id == ApiKey.user_id)
                .join(Workspace, Workspace.id == ApiKey.workspace_id)
                .where(ApiKey.id == key_id)
            ).first()
            if row is None or (by_user_id is not None and row[0].user_id != by_user_id):
                raise NotFound(f"no API key with id {key_id!r}", param="key_id")
            key, username, slug = row
            if key.revoked_at is None:
                key.revoked_at = utcnow()
            self._recent.pop(key.key_hash, None)
            return self._view(key, username, slug)

    def forget_app(self, app_id: str) -> None:
        """Drop remembered app keys of a deleted app: they stop working at once here."""
        for digest in [d for d, entry in self._recent.items() if entry[1].app_id == app_id]:
            self._recent.pop(digest, None)

    def recently_authenticated(self, secret: str) -> Principal | None:
        """The principal of a key authenticated in the last few seconds, without the database."""
        entry = self._recent.get(hash_key(secret))
        if entry is None:
            return None
        until, principal, expires_at = entry
        if time.monotonic() > until or (expires_at is not None and expires_at <= utcnow()):
            return None
        return principal

    def authenticate(self, secret: str) -> Principal:
        """The principal behind ``secret``; :class:`AuthenticationFailed` otherwise."""
        if not secret.startswith(KEY_PREFIX):
            raise AuthenticationFailed(
                "invalid API key: danlu keys start with 'sk-danlu-'; create one with "
                "`danlu keys create --name NAME`",
                code="invalid_api_key",
            )
        digest = hash_key(secret)
        with self.db.read() as session:
            row = session.execute(
                select(ApiKey, User, Workspace)
                .join(User, User.id == ApiKey.user_id)
                .join(Workspace, Workspace.id == ApiKey.workspace_id)
                .where(ApiKey.key_hash == digest)
            ).first()
        if row is None or not hmac.compare_digest(row[0].key_hash, digest):
            raise AuthenticationFailed(
                "invalid API key; check it was copied whole, or create a new one with "
                "`danlu keys create --name NAME`",
                code="invalid_api_key",
            )
        key, user, workspace = row
        now = utcnow()
        if key.revoked_at is not None:
            raise AuthenticationFailed(
                f"API key {key.prefix}… was revoked; create a new one", code="revoked_api_key"
            )
        if key.expires_at is not None and key.expires_at <= now:
            raise AuthenticationFailed(
                f"API key {key.prefix}… expired at {key.expires_at.isoformat()}; create a new one",
                code="expired_api_key",
            )
        if user.disabled:
            raise AuthenticationFailed("the user of this API key is disabled", code="user_disabled")
        if key.last_used_at is None or now - key.last_used_at > _LAST_USED_RESOLUTION:
            self._touch(key.id, now)
        principal = Principal(
            user_id=user.id,
            username=user.username,
            workspace_id=workspace.id,
            workspace_slug=workspace.slug,
            key_id=key.id,
            scopes=frozenset(key.scopes),
            is_admin=user.is_admin,
            app_id=key.app_id,
        )
        if len(self._recent) > AUTH_CACHE_MAX:
            self._recent.clear()  # rare, and only costs a database lookup per key again
        self._recent[digest] = (time.monotonic() + AUTH_CACHE_SECONDS, principal, key.expires_at)
        return principal

    @staticmethod
    def local_principal(user: User, workspace: Workspace) -> Principal:
        """The user as the local CLI acts for them: with their own rights, no key involved."""
        scopes = {*Scope.DEFAULT, Scope.ADMIN} if user.is_admin else set(Scope.DEFAULT)
        return Principal(
            user_id=user.id,
            username=user.username,
            workspace_id=workspace.id,
            workspace_slug=workspace.slug,
            key_id="local-cli",
            scopes=frozenset(scopes),
            is_admin=user.is_admin,
        )

    def _touch(self, key_id: str, when: datetime) -> None:
        with self.db.write() as session:
            key = session.get(ApiKey, key_id)
            if key is not None:
                key.last_used_at = when

    @staticmethod
    def _view(key: ApiKey, username: str, workspace_slug: str) -> KeyView:
        return KeyView(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            username=username,
            workspace=workspace_slug,
            scopes=list(key.scopes),
            created_at=key.created_at,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
            last_used_at=key.last_used_at,
        )
