"""Annotations: a good answer kept as a saved reply, or as a training example.

Annotating a run copies its question and answer (the annotator may edit the answer);
``saved_reply`` marks it as the reply to give that question, ``training`` as an
example for the refinery. Training examples are exported to a hub dataset repo as
OpenAI ``messages`` JSON lines, appended to one file (default ``annotations.jsonl``)
in one commit, which ``danlu refine --dataset`` trains from as it is.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from danlu.builder.apps import answer_text
from danlu.builder.runtime import RunEvent
from danlu.builder.tables import App, AppRun, Message
from danlu.core.db import Database
from danlu.core.errors import InvalidRequest, NotFound
from danlu.core.ids import new_id
from danlu.core.keys import Principal
from danlu.core.tables import utcnow
from danlu.hub.commits import Committer
from danlu.hub.errors import EntryNotFound, RepoNotFound
from danlu.hub.repos import Repos
from danlu.hub.tables import RepoType
from danlu.insight.tables import Annotation

MAX_TEXT = 100_000


def normalize(text: str) -> str:
    """How questions are compared for saved replies: NFKC, case-folded, spaces squeezed."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().casefold()


def training_line(annotation: Annotation) -> str:
    """One JSON line in the refinery's OpenAI ``messages`` format."""
    messages = [
        {"role": "user", "content": annotation.question},
        {"role": "assistant", "content": annotation.answer},
    ]
    return json.dumps({"messages": messages}, ensure_ascii=False)


@dataclass(frozen=True)
class ExportResult:
    repo: str
    path: str
    commit: str
    added: int


class Annotations:
    """Create, list, match and export annotations of an app's runs."""

    def __init__(self, db: Database, repos: Repos, committer: Committer):
        self.db = db
        self.repos = repos
        self.committer = committer

    def _question_and_answer(self, app: App, run_id: str) -> tuple[str, str]:
        with self.db.read() as session:
            run = session.get(AppRun, run_id)
            if run is None or run.app_id != app.id:
                raise NotFound(f"no run {run_id!r} in this app", param="run_id")
            messages = {
                m.role: m.content
                for m in session.scalars(select(Message).where(Message.run_id == run.id))
            }
        if run.status != "succeeded":
            raise InvalidRequest("only an answer can be annotated: this run failed", param="run_id")
        question = messages.get("user") or json.dumps(run.inputs, ensure_ascii=False)
        answer = messages.get("assistant") or answer_text(
            [RunEvent("run_finished", {"outputs": run.outputs})]
        )
        return question, answer

    def save(
        self,
        principal: Principal,
        app: App,
        run_id: str,
        *,
        saved_reply: bool,
        training: bool,
        question: str | None = None,
        answer: str | None = None,
    ) -> Annotation:
        """Annotate a run (or change its annotation): one annotation per run."""
        for name, text in (("question", question), ("answer", answer)):
            if text is not None and not 0 < len(text) <= MAX_TEXT:
                raise InvalidRequest(f"{name} has 1 to {MAX_TEXT} characters", param=name)
        asked, answered = self._question_and_answer(app, run_id)
        with self.db.write() as session:
            row = session.scalar(
                select(Annotation).where(Annotation.app_id == app.id, Annotation.run_id == run_id)
            )
            if row is None:
                row = Annotation(
                    id=new_id("ann"),
                    app_id=app.id,
                    run_id=run_id,
                    question=question or asked,
                    answer=answer or answered,
                    created_by=principal.username,
                )
                session.add(row)
            else:
                row.question = question or row.question
                row.answer = answer or row.answer
                row.updated_at = utcnow()
            row.saved_reply, row.training = saved_reply, training
            session.flush()
            return row

    def listing(
        self, app: App, *, saved_reply: bool | None = None, training: bool | None = None
    ) -> list[Annotation]:
        query = select(Annotation).where(Annotation.app_id == app.id)
        if saved_reply is not None:
            query = query.where(Annotation.saved_reply == saved_reply)
        if training is not None:
            query = query.where(Annotation.training == training)
        with self.db.read() as session:
            return list(session.scalars(query.order_by(Annotation.created_at, Annotation.id)))

    def delete(self, app: App, annotation_id: str) -> None:
        with self.db.write() as session:
            row = session.get(Annotation, annotation_id)
            if row is None or row.app_id != app.id:
                raise NotFound(f"no annotation {annotation_id!r} in this app", param="annotation")
            session.delete(row)

    def match(self, app: App, question: str) -> Annotation | None:
        """The saved reply to this question (compared after :func:`normalize`), if any."""
        wanted = normalize(question)
        for row in self.listing(app, saved_reply=True):
            if normalize(row.question) == wanted:
                return row
        return None

    def export(
        self,
        principal: Principal,
        app: App,
        repo_id: str,
        *,
        path: str = "annotations.jsonl",
        include_exported: bool = False,
        create: bool = True,
    ) -> ExportResult:
        """Append the app's training examples to ``path`` in dataset repo ``repo_id``.

        Examples already exported are skipped unless ``include_exported``. The repo is
        created (private) if it does not exist and ``create`` is set.
        """
        if not path.endswith(".jsonl"):
            raise InvalidRequest("the file is JSON lines: its path ends in .jsonl", param="path")
        chosen = [
            a for a in self.listing(app, training=True) if include_exported or a.exported_at is None
        ]
        if not chosen:
            raise InvalidRequest(
                "no training examples to export: annotate answers with training=true first",
                param="training",
            )
        try:
            repo = self.repos.find(principal, RepoType.DATASET, repo_id, write=True)
        except RepoNotFound:
            if not create:
                raise
            repo = self.repos.create(
                principal, RepoType.DATASET, repo_id, private=True, url=f"datasets/{repo_id}"
            )
        head = self.repos.resolve(repo, "main")
        try:
            entry = self.repos.file(repo, head, path, "main")
            existing = self.committer.blobs.read_bytes(entry.sha256)
        except EntryNotFound:
            existing = b""
        if existing and not existing.endswith(b"\n"):
            existing += b"\n"
        added = "".join(training_line(a) + "\n" for a in chosen).encode()
        operation = self.committer.store_regular(path, existing + added)
        commit = self.committer.commit(
            principal,
            repo,
            [operation],
            title=f"Add {len(chosen)} annotated answers from app {app.slug}",
            parent_commit=head,
        )
        now = utcnow()
        with self.db.write() as session:
            for annotation in chosen:
                row = session.get(Annotation, annotation.id)
                if row is not None:
                    row.exported_at, row.exported_to = now, f"{repo.repo_id}/{path}"
        return ExportResult(repo.repo_id, path, commit.id, len(chosen))


def annotation_json(row: Annotation) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "id": row.id,
        "run_id": row.run_id,
        "question": row.question,
        "answer": row.answer,
        "saved_reply": row.saved_reply,
        "training": row.training,
        "exported_to": row.exported_to,
        "exported_at": iso(row.exported_at),
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


__all__ = ["Annotations", "ExportResult", "annotation_json", "normalize", "training_line"]
