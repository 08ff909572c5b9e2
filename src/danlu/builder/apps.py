"""Apps as a resource: drafts, published versions, restore, keys, runs and conversations.

The draft is edited freely; ``publish`` compiles it and freezes it as the next
version, which is what the app's API, its ``app:{slug}`` model and its public
page run. Every run is recorded with its inputs, outputs, per-node timings,
tokens and errors.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update

from danlu.builder.compiler import Plan, compile_app
from danlu.builder.dsl import AppSpec, parse_app
from danlu.builder.runtime import EngineServices, RunEvent, run_app
from danlu.builder.tables import App, AppRun, AppVersion, Conversation, Message
from danlu.builder.tools import Tool
from danlu.core.db import Database
from danlu.core.errors import InvalidRequest, NotFound, PermissionDenied
from danlu.core.ids import new_id
from danlu.core.keys import ApiKeys, KeyView, Principal, Scope
from danlu.core.tables import ApiKey, Membership, Role, User, Workspace, utcnow


@dataclass(frozen=True)
class RunOptions:
    version: int | None = None  # None: the published version (the draft if asked for)
    draft: bool = False
    conversation_id: str | None = None
    end_user: str | None = None


@dataclass(frozen=True)
class FinishedRun:
    """A run that ended, as handed to :attr:`Apps.observers` (insight records it)."""

    app: App
    version: int | None  # None: the draft
    plan: Plan
    inputs: dict[str, Any]
    events: list[RunEvent]
    times: list[float]  # when each event reached the caller (epoch seconds), one per event
    options: RunOptions
    owner: str
    conversation_id: str | None
    query: str | None


def _slugify(name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48] or "app"
    return f"{base}-{os.urandom(3).hex()}"


class Apps:
    def __init__(self, db: Database, keys: ApiKeys, engine: EngineServices):
        self.db = db
        self.keys = keys
        self.engine = engine
        self._plans: dict[tuple[str, int], Plan] = {}
        engine.app_tool = self.app_tool
        # Told of every recorded run; each must return at once and never raise.
        self.observers: list[Callable[[FinishedRun], None]] = []

    async def app_tool(self, calling_app_id: str | None, slug: str) -> Tool:
        """Another published app of the calling app's workspace, as an agent's tool."""

        def find() -> tuple[App, AppSpec]:
            with self.db.read() as session:
                caller = session.get(App, calling_app_id) if calling_app_id else None
                target = session.scalar(select(App).where(App.slug == slug))
                version = (
                    session.get(AppVersion, (target.id, target.published_version))
                    if target is not None and target.published_version
                    else None
                )
            if (
                target is None
                or version is None
                or caller is None
                or target.workspace_id != caller.workspace_id
                or target.id == caller.id
            ):
                raise NotFound(
                    f"no other published app {slug!r} in this workspace to use as a tool",
                    param="tools",
                )
            return target, parse_app(version.spec)

        target, spec = await asyncio.to_thread(find)
        if target.mode == "workflow":
            start = next(n for n in spec.graph.nodes if n.type == "start")
            fields = start.config.get("inputs", [])
            parameters = {
                "type": "object",
                "properties": {f["name"]: {"type": f.get("type", "string")} for f in fields},
                "required": [f["name"] for f in fields if f.get("required", True)],
            }
        else:
            parameters = {
                "type": "object",
                "properties": {"query": {"type": "string"}},
                "required": ["query"],
            }

        async def call(arguments: dict[str, Any]) -> str:
            chat = target.mode != "workflow"
            inputs = {} if chat else arguments
            query = str(arguments.get("query", "")) if chat else None
            events = [
                event
                async for event in execute(
                    self,
                    target,
                    inputs,
                    RunOptions(),
                    "app-tool",
                    query=query,
                    history=[] if chat else None,
                )
            ]
            if events[-1].event != "run_finished":
                return f"error: {events[-1].data.get('error')}"
            return answer_text(events)

        name = "app_" + "".join(c if c.isalnum() else "_" for c in slug)
        return Tool(name, target.description or target.name, parameters, call)

    # --- access ---------------------------------------------------------------------

    def _role(self, principal: Principal, workspace_id: str) -> Role | None:
        with self.db.read() as session:
            membership = session.get(Membership, (workspace_id, principal.user_id))
        return Role(membership.role) if membership else None

    def get(self, principal: Principal, app_ref: str, *, write: bool = False) -> App:
        """An app by id or slug, if the caller may see it (404 otherwise) and edit it if asked."""
        with self.db.read() as session:
            app = session.scalar(select(App).where((App.id == app_ref) | (App.slug == app_ref)))
        if app is None:
            raise NotFound(f"no app {app_ref!r}", param="app")
        if principal.app_id is not None:
            if principal.app_id != app.id or write:
                raise NotFound(f"no app {app_ref!r}", param="app")
            return app
        role = None if principal.is_admin else self._role(principal, app.workspace_id)
        if role is None and not principal.is_admin:
            raise NotFound(f"no app {app_ref!r}", param="app")
        if write and role is not None and not role.at_least(Role.MEMBER):
            raise PermissionDenied("viewers cannot change apps; ask for the member role")
        return app

    # --- create, edit, publish -------------------------------------------------------------

    def create(self, principal: Principal, spec: AppSpec) -> App:
        principal.require(Scope.INFERENCE)
        compile_app(spec)  # a broken app is refused at the door, with every problem named
        with self.db.write() as session:
            app = App(
                id=new_id("app"),
                slug=_slugify(spec.app.name),
                workspace_id=principal.workspace_id,
                name=spec.app.name,
                mode=spec.app.mode,
                description=spec.app.description,
                draft=spec.to_dict(keep_secrets=True),
                created_by=principal.username,
            )
            session.add(app)
            return app

    def update_draft(self, principal: Principal, app: App, spec: AppSpec) -> App:
        """Keep a draft as it is being edited: it need not compile yet (a canvas is rarely
        whole between two edits); running or publishing it compiles it, with every problem
        named."""
        with self.db.write() as session:
            stored = session.get(App, app.id)
            assert stored is not None
            stored.draft = spec.to_dict(keep_secrets=True)
            stored.name, stored.mode = spec.app.name, spec.app.mode
            stored.description = spec.app.description
            stored.updated_at = utcnow()
            return stored

    def publish(self, principal: Principal, app: App, note: str = "") -> int:
        spec = parse_app(app.draft)
        compile_app(spec)
        with self.db.write() as session:
            latest = session.scalar(
                select(func.max(AppVersion.version)).where(AppVersion.app_id == app.id)
            )
            version = (latest or 0) + 1
            session.add(
                AppVersion(
                    app_id=app.id,
                    version=version,
                    spec=app.draft,
                    note=note,
                    created_by=principal.username,
                )
            )
            stored = session.get(App, app.id)
            assert stored is not None
            stored.published_version = version
            return version

    def versions(self, app: App) -> list[AppVersion]:
        with self.db.read() as session:
            return list(
                session.scalars(
                    select(AppVersion)
                    .where(AppVersion.app_id == app.id)
                    .order_by(AppVersion.version.desc())
                )
            )

    def restore(self, principal: Principal, app: App, version: int) -> App:
        """Make an old version the draft again (publish to make it live)."""
        with self.db.write() as session:
            old = session.get(AppVersion, (app.id, version))
            if old is None:
                raise NotFound(f"app {app.slug} has no version {version}", param="version")
            stored = session.get(App, app.id)
            assert stored is not None
            stored.draft = old.spec
            stored.updated_at = utcnow()
            return stored

    def delete(self, principal: Principal, app: App) -> None:
        """Delete an app with its versions, runs and conversations, and revoke its app keys.

        Its analytics stay: insight keeps the history of deleted apps in their workspace's
        totals."""
        principal.require(Scope.INFERENCE)
        with self.db.write() as session:
            stored = session.get(App, app.id)
            if stored is not None:
                session.delete(stored)
            session.execute(
                update(ApiKey)
                .where(ApiKey.app_id == app.id, ApiKey.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        for cached in [k for k in self._plans if k[0] == app.id]:
            self._plans.pop(cached, None)
        self.keys.forget_app(app.id)

    def listing(self, principal: Principal) -> list[App]:
        with self.db.read() as session:
            query = select(App).order_by(App.updated_at.desc())
            if not principal.is_admin:
                mine = select(Membership.workspace_id).where(
                    Membership.user_id == principal.user_id
                )
                query = query.where(App.workspace_id.in_(mine))
            return list(session.scalars(query))

    def create_key(self, principal: Principal, app: App, name: str) -> tuple[KeyView, str]:
        with self.db.read() as session:
            user = session.get(User, principal.user_id)
            workspace = session.get(Workspace, app.workspace_id)
        assert user is not None and workspace is not None
        return self.keys.create(
            user, name, scopes=[Scope.INFERENCE], workspace=workspace, app_id=app.id
        )

    def published_chat_apps(self) -> list[App]:
        with self.db.read() as session:
            return list(
                session.scalars(
                    select(App).where(
                        App.published_version.is_not(None), App.mode.in_(["chat", "agent"])
                    )
                )
            )

    # --- running --------------------------------------------------------------------------

    def plan_for(self, app: App, options: RunOptions) -> tuple[Plan, int | None]:
        if options.draft:
            return compile_app(parse_app(app.draft)), None
        version = options.version or app.published_version
        cached = self._plans.get((app.id, version or 0))
        if cached is not None:  # published versions never change, so their plans are kept
            return cached, version
        plan, version = self._compile_version(app, options)
        if len(self._plans) > 1000:
            self._plans.clear()
        self._plans[(app.id, version or 0)] = plan
        return plan, version

    def _compile_version(self, app: App, options: RunOptions) -> tuple[Plan, int | None]:
        version = options.version or app.published_version
        if version is None:
            raise InvalidRequest(
                f"app {app.slug} is not published yet; publish it, or run the "
                "draft with draft=true",
                param="app",
            )
        with self.db.read() as session:
            stored = session.get(AppVersion, (app.id, version))
        if stored is None:
            raise NotFound(f"app {app.slug} has no version {version}", param="version")
        return compile_app(parse_app(stored.spec)), version

    def conversation(
        self, app: App, conversation_id: str | None, end_user: str | None
    ) -> tuple[str, list[dict[str, str]], dict[str, Any]]:
        """The conversation (new if None), its history as chat messages, and its variables."""
        with self.db.write() as session:
            if conversation_id is None:
                conversation = Conversation(
                    id="conv_" + os.urandom(12).hex(), app_id=app.id, end_user=end_user
                )
                session.add(conversation)
                return conversation.id, [], {}
            found = session.get(Conversation, conversation_id)
            if found is None or found.app_id != app.id:
                raise NotFound(
                    f"no conversation {conversation_id!r} in this app", param="conversation_id"
                )
            messages = session.scalars(
                select(Message)
                .where(Message.conversation_id == found.id)
                .order_by(Message.position)
            )
            history = [{"role": m.role, "content": m.content} for m in messages]
            return found.id, history, dict(found.variables or {})

    def record(
        self,
        app: App,
        version: int | None,
        inputs: dict[str, Any],
        events: list[RunEvent],
        options: RunOptions,
        conversation_id: str | None,
        query: str | None,
    ) -> None:
        last = events[-1]
        nodes = [e.data for e in events if e.event == "node_finished"]
        with self.db.write() as session:
            session.add(
                AppRun(
                    id=str(last.data.get("run_id")),
                    app_id=app.id,
                    version=version,
                    status="succeeded" if last.event == "run_finished" else "failed",
                    inputs=inputs,
                    outputs=last.data.get("outputs", {}),
                    error=last.data.get("error"),
                    nodes=nodes,
                    usage=last.data.get("usage", {}),
                    elapsed_ms=float(last.data.get("elapsed_ms", 0)),
                    conversation_id=conversation_id,
                    end_user=options.end_user,
                )
            )
            if conversation_id and last.event == "run_finished":
                conversation = session.get(Conversation, conversation_id)
                if conversation is not None:
                    conversation.variables = dict(last.data.get("variables") or {})
            if conversation_id and query is not None and last.event == "run_finished":
                position = (
                    session.scalar(
                        select(func.count())
                        .select_from(Message)
                        .where(Message.conversation_id == conversation_id)
                    )
                    or 0
                )
                answer = answer_text(events)
                session.add(
                    Message(
                        conversation_id=conversation_id,
                        position=position,
                        role="user",
                        content=query,
                        run_id=str(last.data.get("run_id")),
                    )
                )
                session.add(
                    Message(
                        conversation_id=conversation_id,
                        position=position + 1,
                        role="assistant",
                        content=answer,
                        run_id=str(last.data.get("run_id")),
                    )
                )

    def runs(self, app: App, limit: int = 50) -> list[AppRun]:
        with self.db.read() as session:
            return list(
                session.scalars(
                    select(AppRun)
                    .where(AppRun.app_id == app.id)
                    .order_by(AppRun.created_at.desc())
                    .limit(limit)
                )
            )


def answer_text(events: list[RunEvent]) -> str:
    """A chat app's reply: its answer nodes' text, else its outputs joined."""
    answers = [str(e.data.get("text", "")) for e in events if e.event == "answer"]
    if answers:
        return "".join(answers)
    outputs = events[-1].data.get("outputs") or {}
    return "\n".join(str(v) for v in outputs.values())


async def execute(
    apps: Apps,
    app: App,
    inputs: dict[str, Any],
    options: RunOptions,
    owner: str,
    query: str | None = None,
    history: list[dict[str, str]] | None = None,
) -> AsyncGenerator[RunEvent, None]:
    """Run an app (published version by default) and record the run when it ends.

    Chat apps keep their conversation server-side unless ``history`` is given (stateless
    OpenAI-style callers send the whole conversation each time).
    """
    plan, version = await asyncio.to_thread(apps.plan_for, app, options)
    conversation_id: str | None = None
    variables: dict[str, Any] = {}
    if history is None and app.mode in ("chat", "agent"):
        conversation_id, history, variables = await asyncio.to_thread(
            apps.conversation, app, options.conversation_id, options.end_user
        )
    system = {
        "query": query or "",
        "user": options.end_user or "",
        "app_id": app.id,
        "conversation_id": conversation_id or "",
        "history": history,
    }
    events: list[RunEvent] = []
    times: list[float] = []
    stream = run_app(plan, apps.engine, inputs, system=system, owner=owner, variables=variables)
    try:
        async for event in stream:
            if event.event == "run_started" and conversation_id:
                event.data["conversation_id"] = conversation_id
            events.append(event)
            times.append(time.time())
            yield event
    finally:
        await stream.aclose()
        if events and events[-1].event in ("run_finished", "run_failed"):
            await asyncio.to_thread(
                apps.record, app, version, inputs, events, options, conversation_id, query
            )
            finished = FinishedRun(
                app, version, plan, inputs, events, times, options, owner, conversation_id, query
            )
            for observe in apps.observers:
                observe(finished)
