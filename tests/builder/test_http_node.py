"""The HTTP request node and its SSRF guard, against real local servers."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from danlu.builder.compiler import compile_app
from danlu.builder.dsl import parse_app
from danlu.builder.runtime import EngineServices, run_to_end
from danlu.builder.ssrf import is_public, parse_allowlist
from danlu.core.errors import InvalidRequest
from danlu.core.settings import load_settings
from danlu.gateway.registry import ModelRegistry


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *_: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/hop"):
            self.send_response(302)
            self.send_header("Location", self.path.split("to=", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b'{"weather": "sunny", "city": "\xe6\x9d\xad\xe5\xb7\x9e"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def local_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def engine(tmp_path: Path, allow: str = "") -> EngineServices:
    settings = load_settings({"DANLU_HOME": str(tmp_path), "DANLU_EMBEDDED_MODELS": "0"})
    return EngineServices(models=ModelRegistry({}, [], settings), http_allow=parse_allowlist(allow))


def fetch(services: EngineServices, url: str) -> Any:
    spec = {
        "schema": "danlu.app/v1",
        "app": {"name": "fetch"},
        "graph": {
            "nodes": [
                {
                    "id": "start",
                    "type": "start",
                    "config": {"inputs": [{"name": "url", "type": "string"}]},
                },
                {
                    "id": "get",
                    "type": "http_request",
                    "config": {"url": "{{ start.url }}", "timeout_seconds": 5},
                },
                {
                    "id": "end",
                    "type": "end",
                    "config": {
                        "outputs": [
                            {"name": "status", "selector": "get.status_code"},
                            {"name": "city", "value": "{{ get.json.city }}"},
                        ]
                    },
                },
            ],
            "edges": [{"source": "start", "target": "get"}, {"source": "get", "target": "end"}],
        },
    }
    record, _ = asyncio.run(run_to_end(compile_app(parse_app(spec)), services, {"url": url}))
    return record


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/data",
        "http://localhost:{port}/data",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/data",
        "http://10.0.0.1/",
        "http://0.0.0.0:{port}/",
    ],
)
def test_private_addresses_are_refused(tmp_path: Path, local_server: int, url: str) -> None:
    record = fetch(engine(tmp_path), url.format(port=local_server))
    assert record.status == "failed"
    assert "DANLU_BUILDER_HTTP_ALLOW" in (record.error or "")


def test_an_admin_allowlist_opens_a_range(tmp_path: Path, local_server: int) -> None:
    record = fetch(engine(tmp_path, "127.0.0.1/32"), f"http://127.0.0.1:{local_server}/data")
    assert record.status == "succeeded", record.error
    assert record.outputs == {"status": 200, "city": "杭州"}


def test_redirects_are_checked_hop_by_hop(tmp_path: Path, local_server: int) -> None:
    services = engine(tmp_path, "127.0.0.1/32")
    allowed = f"http://127.0.0.1:{local_server}/data"
    ok = fetch(services, f"http://127.0.0.1:{local_server}/hop?to={allowed}")
    assert ok.status == "succeeded", ok.error
    sneaky = fetch(
        services, f"http://127.0.0.1:{local_server}/hop?to=http://127.0.0.2:{local_server}/data"
    )
    assert sneaky.status == "failed" and "127.0.0.2" in (sneaky.error or "")


def test_non_http_urls_and_bad_allowlists(tmp_path: Path) -> None:
    record = fetch(engine(tmp_path), "file:///etc/passwd")
    assert record.status == "failed" and "not an http" in (record.error or "")
    with pytest.raises(InvalidRequest):
        parse_allowlist("10.0.0.0/8, not-a-range")


def test_address_classification() -> None:
    for private in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
    ]:
        assert not is_public(ipaddress.ip_address(private)), private
    for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"]:
        assert is_public(ipaddress.ip_address(public)), public
