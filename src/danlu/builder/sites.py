"""Published apps' web surfaces: the public page, share link, iframe and chat bubble.

An app's ``site_access`` says who may use them: ``public`` (anyone with the link),
``signed_in`` (anyone with a key on this danlu) or ``off`` (only the app's API). Only the
published version is ever reachable this way; drafts stay with their editors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from danlu.builder.dsl import parse_app
from danlu.builder.tables import App, AppVersion, Conversation
from danlu.core.db import Database
from danlu.core.errors import AuthenticationFailed, InvalidRequest, NotFound

SITE_ACCESS = ("public", "signed_in", "off")


@dataclass(frozen=True)
class Site:
    app: App
    spec: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        """What the public page needs: name, mode and the start node's input form."""
        parsed = parse_app(self.spec)
        inputs: list[dict[str, Any]] = []
        for node in parsed.graph.nodes:
            if node.type == "start":
                inputs = list(node.config.get("inputs") or [])
        return {
            "slug": self.app.slug,
            "name": self.app.name,
            "mode": self.app.mode,
            "description": self.app.description or parsed.app.description,
            "icon": parsed.app.icon,
            "access": self.app.site_access,
            "version": self.app.published_version,
            "inputs": inputs,
        }


class Sites:
    def __init__(self, db: Database):
        self.db = db

    def find(self, slug: str, *, signed_in: bool) -> Site:
        """The published app behind a site; 404 for unknown, unpublished or closed sites."""
        with self.db.read() as session:
            app = session.scalar(select(App).where(App.slug == slug))
            version = (
                session.get(AppVersion, (app.id, app.published_version))
                if app is not None and app.published_version is not None
                else None
            )
        if app is None or version is None or app.site_access == "off":
            raise NotFound(f"no published app page {slug!r}", param="app")
        if app.site_access == "signed_in" and not signed_in:
            raise AuthenticationFailed(
                "this app's page is for signed-in users; sign in to danlu first",
                code="sign_in_required",
            )
        return Site(app, version.spec)

    def check_conversation(self, app: App, conversation_id: str, visitor: str) -> None:
        """A visitor continues only their own conversations."""
        with self.db.read() as session:
            found = session.get(Conversation, conversation_id)
        if found is None or found.app_id != app.id or found.end_user != visitor:
            raise NotFound(
                f"no conversation {conversation_id!r} of yours in this app",
                param="conversation_id",
            )

    def set_access(self, app: App, access: str) -> App:
        if access not in SITE_ACCESS:
            raise InvalidRequest(
                f"site access is one of {', '.join(SITE_ACCESS)}, not {access!r}", param="access"
            )
        with self.db.write() as session:
            stored = session.get(App, app.id)
            assert stored is not None
            stored.site_access = access
            return stored
