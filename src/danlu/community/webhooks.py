"""A webhook per workspace: its community events and finished jobs, POSTed as signed JSON.

Events are written to an outbox (``community_webhook_deliveries``) in the transaction that
caused them; the server's background loop sends them, so a slow or dead receiver never slows
a request. Each delivery is claimed with one conditional UPDATE (several server processes
never send the same one twice at once), sent through the builder's SSRF guard (the receiver
must be a public address unless ``DANLU_BUILDER_HTTP_ALLOW`` lists it), and retried with
backoff — 10 s, 40 s, 160 s, … — up to :data:`MAX_ATTEMPTS` times.

A receiver checks ``X-Danlu-Signature-256: sha256=<hex>``, the HMAC-SHA256 of the raw body
under the webhook's secret (as GitHub does).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from danlu.builder.ssrf import BlockedAddress, Network, check_url, guarded_request
from danlu.community import audit
from danlu.community.tables import Webhook, WebhookDelivery
from danlu.core.db import Database
from danlu.core.errors import DanluError, InvalidRequest, NotFound, PermissionDenied
from danlu.core.ids import new_id
from danlu.core.keys import Principal
from danlu.core.secretbox import SecretBox
from danlu.core.tables import Membership, Role, Workspace, utcnow

log = logging.getLogger(__name__)

EVENTS = ("discussion.created", "discussion.comment", "discussion.status", "job.finished")
MAX_ATTEMPTS = 6
FIRST_RETRY_SECONDS = 10.0
CLAIM_TIMEOUT = timedelta(minutes=2)  # a claimed delivery whose sender died is sent again
SEND_TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 64 * 1024


def enqueue(session: Session, workspace_id: str, event: str, data: dict[str, Any]) -> bool:
    """Queue ``event`` for the workspace's webhook, if it has an active one that wants it."""
    hook = session.get(Webhook, workspace_id)
    if hook is None or not hook.active or (hook.events and event not in hook.events):
        return False
    session.add(
        WebhookDelivery(id=new_id("whd"), workspace_id=workspace_id, event=event, payload=data)
    )
    return True


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WebhookView:
    workspace: str
    url: str
    events: list[str]
    active: bool
    created_by: str
    updated_at: datetime


@dataclass(frozen=True)
class DeliveryView:
    id: str
    event: str
    status: str
    attempts: int
    response_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


async def check_target(url: str, allow: Iterable[Network]) -> None:
    """Refuse a webhook URL that is not http(s) or points at a private address."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise InvalidRequest("the webhook URL must be an http(s) URL", param="url")
    try:
        await check_url(url, allow)
    except BlockedAddress as exc:
        raise BlockedAddress(
            exc.message.replace("apps may not reach", "webhooks may not reach")
            + " (the same setting governs apps' HTTP nodes and webhooks)",
            param="url",
            code="ssrf_blocked",
        ) from None


class Webhooks:
    def __init__(self, db: Database, box: SecretBox):
        self.db = db
        self.box = box

    # --- settings (owners and admins of the workspace) --------------------------------

    def _managed(self, session: Session, principal: Principal, slug: str) -> Workspace:
        workspace = session.scalar(select(Workspace).where(Workspace.slug == slug))
        membership = (
            session.get(Membership, (workspace.id, principal.user_id)) if workspace else None
        )
        if workspace is None or (membership is None and not principal.is_admin):
            raise NotFound(f"no workspace named {slug!r}", param="workspace")
        if not principal.is_admin and not Role(membership.role).at_least(Role.ADMIN):  # type: ignore[union-attr]
            raise PermissionDenied("only owners and admins of the workspace manage its webhook")
        return workspace

    def get(self, principal: Principal, slug: str) -> WebhookView | None:
        with self.db.read() as session:
            workspace = self._managed(session, principal, slug)
            hook = session.get(Webhook, workspace.id)
            return self._view(hook, slug) if hook else None

    def set(
        self,
        principal: Principal,
        slug: str,
        *,
        url: str,
        events: list[str] | None,
        active: bool = True,
        rotate_secret: bool = False,
    ) -> tuple[WebhookView, str | None]:
        """Create or change the webhook; the secret is returned when it is new (shown once)."""
        unknown = sorted(set(events or []) - set(EVENTS))
        if unknown:
            raise InvalidRequest(
                f"unknown event {unknown[0]!r}; events are {', '.join(EVENTS)}", param="events"
            )
        with self.db.write() as session:
            workspace = self._managed(session, principal, slug)
            hook = session.get(Webhook, workspace.id)
            secret: str | None = None
            if hook is None or rotate_secret:
                secret = "whsec_" + secrets.token_urlsafe(24)
            sealed = self.box.seal(secret, context=f"webhook:{workspace.id}") if secret else None
            if hook is None:
                assert sealed is not None
                hook = Webhook(
                    workspace_id=workspace.id,
                    url=url,
                    secret=sealed,
                    events=list(events or []),
                    active=active,
                    created_by=principal.username,
                )
                session.add(hook)
            else:
                hook.url, hook.events, hook.active = url, list(events or []), active
                hook.updated_at = utcnow()
                if sealed:
                    hook.secret = sealed
            audit.record(
                session,
                actor=principal.username,
                action="webhook.set",
                workspace_id=workspace.id,
                target=f"workspace {slug}",
                data={"url": url, "events": list(events or []), "active": active},
            )
            session.flush()
            return self._view(hook, slug), secret

    def delete(self, principal: Principal, slug: str) -> None:
        with self.db.write() as session:
            workspace = self._managed(session, principal, slug)
            hook = session.get(Webhook, workspace.id)
            if hook is None:
                raise NotFound(f"workspace {slug!r} has no webhook", param="workspace")
            session.delete(hook)
            audit.record(
                session,
                actor=principal.username,
                action="webhook.delete",
                workspace_id=workspace.id,
                target=f"workspace {slug}",
            )

    def ping(self, principal: Principal, slug: str) -> str:
        """Queue a ``ping`` event, whatever the webhook subscribes to; returns its delivery id."""
        with self.db.write() as session:
            workspace = self._managed(session, principal, slug)
            if session.get(Webhook, workspace.id) is None:
                raise NotFound(f"workspace {slug!r} has no webhook", param="workspace")
            delivery = WebhookDelivery(
                id=new_id("whd"),
                workspace_id=workspace.id,
                event="ping",
                payload={"by": principal.username},
            )
            session.add(delivery)
            return delivery.id

    def deliveries(self, principal: Principal, slug: str, limit: int = 50) -> list[DeliveryView]:
        with self.db.read() as session:
            workspace = self._managed(session, principal, slug)
            rows = session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.workspace_id == workspace.id)
                .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
                .limit(limit)
            )
            return [
                DeliveryView(
                    d.id,
                    d.event,
                    d.status,
                    d.attempts,
                    d.response_status,
                    d.last_error,
                    d.created_at,
                    d.delivered_at,
                )
                for d in rows
            ]

    @staticmethod
    def _view(hook: Webhook, slug: str) -> WebhookView:
        return WebhookView(
            slug, hook.url, list(hook.events or []), hook.active, hook.created_by, hook.updated_at
        )

    # --- delivery (the background loop) -----------------------------------------------

    def claim(self, limit: int = 10) -> list[WebhookDelivery]:
        """Take due deliveries (and ones whose sender stopped); each goes to one sender."""
        now = utcnow()
        due = or_(
            (WebhookDelivery.status == "pending") & (WebhookDelivery.next_attempt_at <= now),
            (WebhookDelivery.status == "sending")
            & (WebhookDelivery.claimed_at < now - CLAIM_TIMEOUT),
        )
        with self.db.read() as session:
            candidates = list(
                session.scalars(
                    select(WebhookDelivery.id)
                    .where(due)
                    .order_by(WebhookDelivery.next_attempt_at)
                    .limit(limit)
                )
            )
        claimed = []
        for delivery_id in candidates:
            with self.db.write() as session:
                taken = session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id == delivery_id, due)
                    .values(status="sending", claimed_at=now, attempts=WebhookDelivery.attempts + 1)
                )
                if getattr(taken, "rowcount", 0) == 1:
                    row = session.get(WebhookDelivery, delivery_id)
                    assert row is not None
                    claimed.append(row)
        return claimed

    def _target(self, delivery: WebhookDelivery) -> tuple[str, str, str] | None:
        """(url, secret, workspace slug) of the delivery's webhook, None if it is gone or off."""
        with self.db.read() as session:
            hook = session.get(Webhook, delivery.workspace_id)
            workspace = session.get(Workspace, delivery.workspace_id)
        if hook is None or workspace is None or not hook.active:
            return None
        secret = self.box.open(hook.secret, context=f"webhook:{delivery.workspace_id}")
        return hook.url, secret, workspace.slug

    def _settle(
        self,
        delivery: WebhookDelivery,
        *,
        ok: bool,
        status: int | None,
        error: str | None,
        permanent: bool = False,
    ) -> None:
        values: dict[str, Any] = {"response_status": status, "last_error": error}
        if ok:
            values.update(status="delivered", delivered_at=utcnow())
        elif permanent or delivery.attempts >= MAX_ATTEMPTS:
            values.update(status="failed")
        else:
            wait = FIRST_RETRY_SECONDS * 4 ** (delivery.attempts - 1)
            values.update(status="pending", next_attempt_at=utcnow() + timedelta(seconds=wait))
        with self.db.write() as session:
            session.execute(
                update(WebhookDelivery).where(WebhookDelivery.id == delivery.id).values(**values)
            )

    async def send(self, delivery: WebhookDelivery, allow: Iterable[Network]) -> bool:
        """POST one delivery; record the outcome. True if the receiver took it (2xx)."""
        target = await asyncio.to_thread(self._target, delivery)
        if target is None:
            await asyncio.to_thread(
                self._settle,
                delivery,
                ok=False,
                status=None,
                error="the webhook was removed or turned off",
                permanent=True,
            )
            return False
        url, secret, slug = target
        body = json.dumps(
            {
                "id": delivery.id,
                "event": delivery.event,
                "workspace": slug,
                "created_at": delivery.created_at.isoformat().replace("+00:00", "Z"),
                "data": delivery.payload,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "danlu-webhooks",
            "X-Danlu-Event": delivery.event,
            "X-Danlu-Delivery": delivery.id,
            "X-Danlu-Signature-256": sign(secret, body),
        }
        try:
            response = await guarded_request(
                "POST",
                url,
                allow=allow,
                headers=headers,
                content=body,
                timeout_seconds=SEND_TIMEOUT_SECONDS,
                max_bytes=MAX_RESPONSE_BYTES,
            )
        except BlockedAddress as exc:
            await asyncio.to_thread(
                self._settle, delivery, ok=False, status=None, error=exc.message, permanent=True
            )
            return False
        except DanluError as exc:
            await asyncio.to_thread(
                self._settle, delivery, ok=False, status=None, error=exc.message
            )
            return False
        ok = 200 <= response.status_code < 300
        error = None if ok else f"the receiver answered {response.status_code}"
        await asyncio.to_thread(
            self._settle, delivery, ok=ok, status=response.status_code, error=error
        )
        return ok

    async def deliver_due(self, allow: Iterable[Network]) -> int:
        """Send what is due now; returns how many were sent successfully."""
        allowed = list(allow)
        claimed = await asyncio.to_thread(self.claim)
        results = await asyncio.gather(*(self.send(d, allowed) for d in claimed))
        return sum(results)
