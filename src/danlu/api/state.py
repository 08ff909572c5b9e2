"""What a running server holds, built once at start-up and passed to routes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fastapi import Request

from danlu.core.accounts import Accounts
from danlu.core.blobs import BlobStore
from danlu.core.db import Database
from danlu.core.keys import ApiKeys
from danlu.core.settings import Settings
from danlu.gateway.registry import ModelRegistry
from danlu.hub.commits import Committer
from danlu.hub.repos import Repos


@dataclass
class Services:
    settings: Settings
    db: Database
    accounts: Accounts
    keys: ApiKeys
    blobs: BlobStore
    models: ModelRegistry
    repos: Repos
    committer: Committer
    started_at: float = field(default_factory=time.time)


def get_services(request: Request) -> Services:
    """FastAPI dependency: the server's services (tests build their own)."""
    services: Services = request.app.state.services
    return services
