"""One real danlu server for the community's tests (SQLite; the storage conformance across
backends is in test_backends.py), its users, and a webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.community.support import POSTS_PER_MINUTE, People, Receiver
from tests.support.server import RunningServer, start_server


@pytest.fixture(scope="session")
def community_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """No embedded models (no test here runs one); webhooks may reach loopback."""
    env = {
        "DANLU_EMBEDDED_MODELS": "0",
        "DANLU_BUILDER_HTTP_ALLOW": "127.0.0.1/32",
        "DANLU_COMMUNITY_POSTS_PER_MINUTE": str(POSTS_PER_MINUTE),
    }
    server = start_server(tmp_path_factory.mktemp("community"), env)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def people(community_server: RunningServer) -> Iterator[People]:
    found = People(community_server)
    yield found
    found.db.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()
