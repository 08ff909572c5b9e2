"""Opening danlu's storage: home folder, database, migrations, first admin."""

from __future__ import annotations

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
    return Core(settings, db, accounts, ApiKeys(db), LocalBlobStore(settings.blob_dir))
