"""Opening danlu's storage: home folder, database, migrations, first admin."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from danlu.core import migrate
from danlu.core.accounts import Accounts
from danlu.core.blobs import LocalBlobStore
from danlu.core.db import Database
from danlu.core.keys import ApiKeys
from danlu.core.settings import Settings


@dataclass
class Core:
    settings: Settings
    db: Database
    accounts: Accounts
    keys: ApiKeys
    blobs: LocalBlobStore
    secret: bytes

    def close(self) -> None:
        self.db.dispose()


def open_core(settings: Settings, announce: Callable[[str], None] = print) -> Core:
    """Create the home folder, migrate the database and make the first admin.

    ``announce`` receives the one-time message with a generated admin password.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    migrate.upgrade(db)
    accounts = Accounts(db)
    created = accounts.bootstrap(settings.admin_password)
    if created is not None:
        if created.generated:
            announce(
                f"Created the admin user {created.username!r} with password {created.password} "
                "— shown only this once. Set DANLU_ADMIN_PASSWORD to choose it yourself."
            )
        else:
            announce(
                f"Created the admin user {created.username!r} (password from DANLU_ADMIN_PASSWORD)."
            )
    return Core(
        settings,
        db,
        accounts,
        ApiKeys(db),
        LocalBlobStore(settings.blob_dir),
        server_secret(settings),
    )


def server_secret(settings: Settings) -> bytes:
    """DANLU_SECRET_KEY, or a random secret kept in HOME/secret.key (created once, mode 0600)."""
    if settings.secret_key:
        return settings.secret_key.encode()
    path = settings.home / "secret.key"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # atomic; loses cleanly if another process got there first
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip().encode()
