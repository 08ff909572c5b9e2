"""Which limits apply to a call: rules per API key, user and workspace, kept in memory.

A rule's subject is an id, or ``*`` for the default of its scope (every key, every user,
every workspace without a rule of its own). Rules are few and read on every request, so
each process holds them all and reloads them when another process changed them (the
gateway's sync loop calls :meth:`LimitRules.refresh`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select

from danlu.core.db import Database
from danlu.core.errors import InvalidRequest, NotFound, PermissionDenied
from danlu.core.keys import Principal
from danlu.core.tables import utcnow
from danlu.gateway.limits import Policy
from danlu.gateway.tables import LimitRule

SCOPES = ("key", "user", "workspace")


@dataclass(frozen=True)
class Rule:
    scope: str
    subject: str
    policy: Policy
    models: tuple[str, ...] | None

    def describe(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "subject": self.subject,
            "rpm": self.policy.rpm,
            "tpm": self.policy.tpm,
            "concurrency": self.policy.concurrency,
            "models": list(self.models) if self.models is not None else None,
        }


class LimitRules:
    def __init__(self, db: Database):
        self.db = db
        self._rules: dict[tuple[str, str], Rule] = {}
        self._version: tuple[int, Any] | None = None
        self.refresh()

    def refresh(self) -> None:
        """Reload the rules if any changed (a cheap aggregate decides)."""
        with self.db.read() as session:
            version = session.execute(
                select(func.count(), func.max(LimitRule.updated_at)).select_from(LimitRule)
            ).one()
            if tuple(version) == self._version:
                return
            rows = list(session.scalars(select(LimitRule)))
        self._rules = {(r.scope, r.subject): _rule(r) for r in rows}
        self._version = (int(version[0]), version[1])

    def rules(self) -> list[Rule]:
        return sorted(self._rules.values(), key=lambda r: (SCOPES.index(r.scope), r.subject))

    def for_call(self, principal: Principal, model: str) -> list[tuple[str, Policy]]:
        """The scopes and policies a call is checked against; refuses a model not allowed."""
        subjects = {
            "key": principal.key_id,
            "user": principal.user_id,
            "workspace": principal.workspace_id,
        }
        scopes: list[tuple[str, Policy]] = []
        for scope, subject in subjects.items():
            rule = self._rules.get((scope, subject)) or self._rules.get((scope, "*"))
            if rule is None:
                continue
            if rule.models is not None and model not in rule.models:
                whose = {"key": "this API key", "user": "your user", "workspace": "this workspace"}
                allowed = ", ".join(rule.models) or "none"
                raise PermissionDenied(
                    f"{whose[scope]} may not use model {model!r}; allowed: {allowed}",
                    param="model",
                )
            if not rule.policy.unlimited:
                scopes.append((f"{scope}:{subject}", rule.policy))
        return scopes

    def put(
        self,
        scope: str,
        subject: str,
        *,
        rpm: int | None,
        tpm: int | None,
        concurrency: int | None,
        models: list[str] | None,
    ) -> Rule:
        if scope not in SCOPES:
            raise InvalidRequest(f"scope is one of {', '.join(SCOPES)}", param="scope")
        for name, value in (("rpm", rpm), ("tpm", tpm), ("concurrency", concurrency)):
            if value is not None and value < 0:
                raise InvalidRequest(f"{name} is a non-negative integer or null", param=name)
        with self.db.write() as session:
            row = session.get(LimitRule, (scope, subject))
            if row is None:
                row = LimitRule(scope=scope, subject=subject)
                session.add(row)
            row.rpm, row.tpm, row.concurrency, row.models = rpm, tpm, concurrency, models
            row.updated_at = utcnow()
            rule = _rule(row)
        self.refresh()
        return rule

    def remove(self, scope: str, subject: str) -> None:
        with self.db.write() as session:
            found = session.execute(
                delete(LimitRule).where(LimitRule.scope == scope, LimitRule.subject == subject)
            )
        if not getattr(found, "rowcount", 0):
            raise NotFound(f"no limits for {scope} {subject!r}", param="subject")
        self._version = None  # a delete may leave count and max(updated_at) looking unchanged
        self.refresh()


def _rule(row: LimitRule) -> Rule:
    return Rule(
        row.scope,
        row.subject,
        Policy(rpm=row.rpm, tpm=row.tpm, concurrency=row.concurrency),
        tuple(row.models) if row.models is not None else None,
    )
