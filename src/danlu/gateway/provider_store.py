"""Providers configured at run time (API and CLI), kept in the database with sealed keys.

Providers from the providers file are the operator's; these are the ones people add
while danlu runs. Each row is loaded into the model registry; every server process
reconciles its registry with the table on a timer (:meth:`ProviderStore.sync`), so a
provider added through one replica, or with ``danlu providers add`` on the command
line, is served by all of them within seconds.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, select

from danlu.core.db import Database
from danlu.core.errors import (
    ConfigError,
    Conflict,
    DanluError,
    InvalidRequest,
    NotFound,
    UpstreamError,
)
from danlu.core.secretbox import SecretBox, mask
from danlu.core.tables import utcnow
from danlu.gateway.presets import PRESETS
from danlu.gateway.registry import ModelRegistry, ProviderConfig
from danlu.gateway.tables import StoredProvider

log = logging.getLogger(__name__)
TYPE = "openai_compatible"
_OPTIONS = ("base_url", "models", "headers", "timeout", "owned_by")


def build_options(
    preset: str | None,
    *,
    base_url: str | None = None,
    models: list[Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """A provider's options from a preset and overrides (the API key is kept apart)."""
    options: dict[str, Any] = {}
    if preset is not None:
        found = PRESETS.get(preset)
        if found is None:
            raise InvalidRequest(
                f"no preset {preset!r}; presets: {', '.join(sorted(PRESETS))}", param="preset"
            )
        options = {"base_url": found.base_url, "models": list(found.models), "owned_by": preset}
    if base_url is not None:
        options["base_url"] = base_url
    if models is not None:
        options["models"] = models
    if headers:
        options["headers"] = headers
    if timeout is not None:
        options["timeout"] = timeout
    if "base_url" not in options:
        raise InvalidRequest("give a preset or a base_url", param="base_url")
    return options


class ProviderStore:
    def __init__(self, db: Database, box: SecretBox, registry: ModelRegistry):
        self.db = db
        self.box = box
        self.registry = registry
        self._loaded: dict[str, int] = {}  # name -> revision this process serves
        self.problems: dict[str, str] = {}  # name -> why it could not be loaded

    # --- what the API and CLI call ---------------------------------------------------------

    def rows(self) -> list[StoredProvider]:
        with self.db.read() as session:
            return list(session.scalars(select(StoredProvider).order_by(StoredProvider.name)))

    def describe(self, row: StoredProvider) -> dict[str, Any]:
        key = self._key(row)
        status = next((s for s in self.registry.statuses if s.name == row.name), None)
        return {
            "name": row.name,
            "type": row.type,
            "preset": row.preset,
            **{k: row.options[k] for k in _OPTIONS if k in row.options},
            "api_key": mask(key) if key else None,
            "state": status.state if status else "not loaded",
            "served_models": status.models if status else [],
            "error": self.problems.get(row.name) or (status.reason if status else None),
            "created_at": row.created_at.isoformat().replace("+00:00", "Z"),
            "updated_at": row.updated_at.isoformat().replace("+00:00", "Z"),
        }

    def get(self, name: str) -> StoredProvider:
        with self.db.read() as session:
            row = session.get(StoredProvider, name)
        if row is None:
            raise NotFound(f"no provider {name!r} was added through the API", param="name")
        return row

    async def create(
        self,
        name: str,
        options: dict[str, Any],
        *,
        api_key: str | None,
        preset: str | None,
        created_by: str,
    ) -> StoredProvider:
        """Load the provider first, so a typo or unreachable upstream fails now, then keep it."""
        config = self._config(name, options, api_key)
        if self._exists(name):
            raise Conflict(f"a provider named {name!r} already exists", param="name")
        await self._load(config)
        row = StoredProvider(
            name=name,
            type=TYPE,
            preset=preset,
            options=options,
            api_key_sealed=self.box.seal(api_key, context=name) if api_key else None,
            revision=1,
            enabled=True,
            created_by=created_by,
        )
        try:
            with self.db.write() as session:
                session.add(row)
        except Exception:
            await self.registry.remove(name)
            raise
        self._loaded[name] = 1
        return row

    async def update(
        self, name: str, changes: dict[str, Any], *, api_key: str | None
    ) -> StoredProvider:
        row = self.get(name)
        options = {**row.options, **{k: v for k, v in changes.items() if v is not None}}
        key = api_key if api_key is not None else self._key(row)
        config = self._config(name, options, key)
        # Swap: the old provider serves until the new one has loaded.
        if name in self._loaded:
            await self.registry.remove(name)
        try:
            await self._load(config)
        except DanluError:
            await self._reload(row)  # put the old one back
            raise
        with self.db.write() as session:
            stored = session.get(StoredProvider, name)
            assert stored is not None
            stored.options = options
            if api_key is not None:
                stored.api_key_sealed = self.box.seal(api_key, context=name) if api_key else None
            stored.revision += 1
            stored.updated_at = utcnow()
            row = stored
        self._loaded[name] = row.revision
        return row

    async def delete(self, name: str) -> None:
        self.get(name)
        with self.db.write() as session:
            session.execute(delete(StoredProvider).where(StoredProvider.name == name))
        if name in self._loaded:
            await self.registry.remove(name)
            del self._loaded[name]
        self.problems.pop(name, None)

    # --- keeping every process in step -----------------------------------------------------

    async def sync(self) -> None:
        """Load new or changed rows, drop deleted ones; failures are kept in ``problems``."""
        rows = {row.name: row for row in self.rows() if row.enabled}
        for name in [n for n in self._loaded if n not in rows]:
            await self.registry.remove(name)
            del self._loaded[name]
        for name, row in rows.items():
            if self._loaded.get(name) == row.revision:
                continue
            if name in self._loaded:
                await self.registry.remove(name)
                del self._loaded[name]
            await self._reload(row)

    async def _reload(self, row: StoredProvider) -> None:
        try:
            key = self._key(row)
            await self._load(self._config(row.name, row.options, key))
        except DanluError as exc:
            self.problems[row.name] = exc.message
            log.warning("provider %s could not be loaded: %s", row.name, exc.message)
            self._loaded.pop(row.name, None)
            return
        self.problems.pop(row.name, None)
        self._loaded[row.name] = row.revision

    # --- helpers -------------------------------------------------------------------------

    def _key(self, row: StoredProvider) -> str | None:
        return self.box.open(row.api_key_sealed, context=row.name) if row.api_key_sealed else None

    def _exists(self, name: str) -> bool:
        with self.db.read() as session:
            stored = session.get(StoredProvider, name) is not None
        return stored or any(s.name == name for s in self.registry.statuses)

    @staticmethod
    def _config(name: str, options: dict[str, Any], api_key: str | None) -> ProviderConfig:
        try:
            secret = {"api_key": api_key} if api_key else {}
            return ProviderConfig(name=name, type=TYPE, options={**options, **secret})
        except ValueError:
            raise InvalidRequest(
                "a provider name is letters, digits, '.', '_' or '-' (at most 64)", param="name"
            ) from None

    async def _load(self, config: ProviderConfig) -> None:
        try:
            await self.registry.add(config)
        except ConfigError as exc:
            # Bad options (a typo, a malformed URL) or a clash of names: the caller's to fix.
            raise InvalidRequest(exc.message, param="options") from None
        except UpstreamError as exc:  # discovery could not reach the upstream, or was refused
            raise InvalidRequest(
                f"provider {config.name!r} could not be loaded: {exc.message}; check base_url "
                "and api_key, or list its models so nothing needs discovering",
                param="base_url",
            ) from None
        except DanluError:
            raise
        except Exception as exc:  # the provider's own load failed in another way
            raise InvalidRequest(
                f"provider {config.name!r} could not be loaded: {type(exc).__name__}: {exc}",
                param="base_url",
            ) from None
