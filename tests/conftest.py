"""Shared fixtures: database backends, a fake upstream, real danlu servers.

Storage and end-to-end tests run once per metadata backend (SQLite and
PostgreSQL): the same suite is the conformance test for both.
"""

from __future__ import annotations

import os

# huggingface_hub 1.x+ uploads through Xet storage whenever hf_xet is installed (it is a
# dependency), without asking the server; danlu speaks Git LFS, so its users set this, as the
# docs say. It must be set before huggingface_hub is imported.
os.environ["HF_HUB_DISABLE_XET"] = "1"

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from danlu.core.db import Database
from tests.support.fake_upstream import EMBED_MODEL, RERANK_MODEL, SECRET, FakeUpstream
from tests.support.postgres import scratch_database
from tests.support.server import RunningServer, start_server

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend, per test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'danlu.db'}"
    else:
        with scratch_database() as url:
            yield url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    from danlu.core import migrate

    database = Database(database_url)
    migrate.upgrade(database)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="session")
def upstream_danlu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A second danlu instance, used as an OpenAI-compatible upstream."""
    server = start_server(tmp_path_factory.mktemp("upstream-danlu"))
    yield server
    server.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fake_upstream: FakeUpstream,
    upstream_danlu: RunningServer,
) -> Iterator[RunningServer]:
    """The danlu under test, on each backend, with two upstream providers."""
    home = tmp_path_factory.mktemp(f"danlu-{request.param}")
    relay_key = upstream_danlu.create_key("relay")
    (home / "providers.toml").write_text(
        textwrap.dedent(f"""
        [[providers]]
        name = "fake"
        type = "openai_compatible"
        base_url = "{fake_upstream.base_url}"
        api_key = "{SECRET}"
        models = ["fake-chat", "fake-reasoner", "fake-tools", "fake-500", "fake-400", "fake-cut",
                  "fake-qa",
                  {{ name = "{EMBED_MODEL}", kind = "embedding" }},
                  {{ name = "{RERANK_MODEL}", kind = "rerank" }},
                  {{ name = "fake-rerank-500", upstream = "fake-500", kind = "rerank" }},
                  {{ name = "fake-rerank-400", upstream = "fake-400", kind = "rerank" }}]

        [[providers]]
        name = "upstream-danlu"
        type = "openai_compatible"
        base_url = "{upstream_danlu.api}"
        api_key = "{relay_key}"
        models = [{{ name = "relay-smollm2", upstream = "smollm2-135m-instruct" }},
                  {{ name = "relay-e5", upstream = "multilingual-e5-small", kind = "embedding" }},
                  {{ name = "relay-rerank", upstream = "smollm2-rerank", kind = "rerank" }}]
    """)
    )
    # No fine-tuning worker here: the refinery's tests start servers that have one.
    env = {"DANLU_MAX_BODY_BYTES": str(256 * 1024), "DANLU_REFINERY_WORKERS": "0"}
    if request.param == "postgresql":
        with scratch_database() as url:
            env["DANLU_DATABASE_URL"] = url
            running = start_server(home, env)
            yield running
            running.stop()
    else:
        running = start_server(home, env)
        yield running
        running.stop()
