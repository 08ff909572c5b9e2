"""Helpers of the community's tests: users made in the server's database, HTTP clients, and a
local webhook receiver."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from danlu.core.accounts import Accounts
from danlu.core.db import Database
from danlu.core.keys import ApiKeys, Scope
from danlu.core.tables import Role
from tests.support.server import RunningServer

POSTS_PER_MINUTE = 8


class People:
    """Users and keys made in the server's own database (the CLI costs a second per call)."""

    def __init__(self, server: RunningServer):
        self.server = server
        self.db = Database(f"sqlite:///{server.home / 'danlu.db'}")

    def user(self, name: str, *scopes: str) -> str:
        """A new user and a key of theirs (default scopes)."""
        user = Accounts(self.db).create_user(name)
        _, secret = ApiKeys(self.db).create(user, f"{name}-key", scopes=scopes or Scope.DEFAULT)
        return secret

    def join(self, workspace: str, owner: str, *members: tuple[str, str]) -> None:
        """A team workspace owned by ``owner``, with (user, role) members."""
        accounts = Accounts(self.db)
        space = accounts.create_workspace(workspace, workspace, accounts.user(owner))
        for name, role in members:
            accounts.set_role(space, accounts.user(name), Role(role))


def client(server: RunningServer, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


class Receiver:
    """A webhook receiver on loopback: keeps every POST (headers and raw body)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.append(
                    {"headers": dict(self.headers), "raw": body, "json": json.loads(body)}
                )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.received if r["json"]["event"] == name]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
