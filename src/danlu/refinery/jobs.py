"""Fine-tuning jobs as a resource: create (pinning base and dataset), list, watch, cancel.

A job is a row with a status and an append-only event log. Workers (a process the server
starts, or ``danlu refine`` on the command line) claim queued jobs with one conditional
UPDATE, so two workers never run the same job, and keep a heartbeat; a job whose worker
stopped beating (a crash, a restart) is queued again and resumes from its last checkpoint.
"""

from __future__ import annotations

import os
import re
import socket
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from danlu.community.notifications import notify_job_finished
from danlu.core.accounts import may_see_workspace, my_workspaces
from danlu.core.db import Database
from danlu.core.errors import Conflict, InvalidRequest, NotFound
from danlu.core.ids import new_id
from danlu.core.keys import Principal
from danlu.core.tables import utcnow
from danlu.hub.repos import Repos
from danlu.hub.tables import RepoType
from danlu.refinery.job_tables import FineTune, FineTuneEvent

METHODS = ("lora", "qlora", "full")
ACTIVE = ("queued", "running")
DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
HEARTBEAT_STALE = timedelta(seconds=90)
# Hyperparameters a job may set; the training library holds their defaults and checks ranges.
KNOWN_HYPERPARAMETERS = frozenset(
    {
        "epochs",
        "learning_rate",
        "batch_size",
        "gradient_accumulation",
        "max_length",
        "lora_r",
        "lora_alpha",
        "lora_dropout",
        "warmup_ratio",
        "seed",
        "held_out_fraction",
        "train_on_all_turns",
        "max_steps",
        "checkpoint_every",
        "json_schema",
    }
)


# Files beside the data that are not rows (dataset metadata, schemas).
NOT_DATA = frozenset({"dataset_infos.json", "dataset_info.json", "state.json", "schema.json"})


def training_files(paths: list[str]) -> list[str]:
    """A dataset's data files: its train files when it names some, else every data file."""
    data = [
        p
        for p in paths
        if p.lower().endswith(DATA_SUFFIXES)
        and p.rsplit("/", 1)[-1].lower() not in NOT_DATA
        and not p.lower().endswith(".schema.json")
        and not p.rsplit("/", 1)[-1].startswith(".")
    ]
    train = [p for p in data if "train" in p.rsplit("/", 1)[-1].lower()]
    return train or data


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class FineTunes:
    def __init__(self, db: Database, repos: Repos):
        self.db = db
        self.repos = repos

    # --- creating and reading -------------------------------------------------------------

    def create(
        self,
        principal: Principal,
        *,
        base_model: str,
        dataset: str,
        dataset_revision: str | None = None,
        dataset_files: list[str] | None = None,
        method: str = "lora",
        hyperparameters: dict[str, Any] | None = None,
        output_repo: str | None = None,
        serve: bool = False,
    ) -> FineTune:
        """Check everything that can be checked now, pin the revisions, queue the job."""
        if method not in METHODS:
            raise InvalidRequest(f"method is one of {', '.join(METHODS)}", param="method")
        unknown = set(hyperparameters or {}) - KNOWN_HYPERPARAMETERS
        if unknown:
            raise InvalidRequest(
                f"unknown hyperparameter {sorted(unknown)[0]!r}; known: "
                f"{', '.join(sorted(KNOWN_HYPERPARAMETERS))}",
                param="hyperparameters",
            )
        base = self.repos.find(principal, RepoType.MODEL, base_model)
        base_commit = self.repos.resolve(base, None)
        data = self.repos.find(principal, RepoType.DATASET, dataset)
        data_commit = self.repos.resolve(data, dataset_revision)
        files = [e.path for e in self.repos.files(data_commit)]
        if dataset_files:
            missing = [f for f in dataset_files if f not in files]
            if missing:
                raise NotFound(f"{dataset} has no file {missing[0]!r}", param="dataset_files")
            chosen = list(dataset_files)
        else:
            chosen = training_files(files)
        if not chosen:
            raise InvalidRequest(
                f"{dataset} has no training data: add JSONL, JSON, CSV or Parquet files "
                "(OpenAI messages, ShareGPT or Alpaca rows)",
                param="dataset",
            )
        job_id = new_id("ft")
        target = output_repo or _default_output(principal, base.name, job_id)
        if "/" not in target or not re.match(r"^[\w.-]+/[\w.-]+$", target):
            raise InvalidRequest("output_repo is 'namespace/name'", param="output_repo")
        with self.db.write() as session:
            job = FineTune(
                id=job_id,
                workspace_id=principal.workspace_id,
                user_id=principal.user_id,
                base_model=base.repo_id,
                base_revision=base_commit,
                dataset=data.repo_id,
                dataset_revision=data_commit,
                dataset_files=chosen,
                method=method,
                hyperparameters=dict(hyperparameters or {}),
                output_repo=target,
                serve=serve,
                status="queued",
                stage="queued",
                progress={},
                split={},
                metrics={},
            )
            session.add(job)
            session.add(FineTuneEvent(job_id=job_id, kind="status", data={"status": "queued"}))
        return job

    def get(self, principal: Principal, job_id: str) -> FineTune:
        with self.db.read() as session:
            job = session.get(FineTune, job_id)
            visible = job is not None and may_see_workspace(session, principal, job.workspace_id)
        if job is None or not visible:
            raise NotFound(f"no fine-tuning job {job_id!r}", param="job")
        return job

    def listing(self, principal: Principal, limit: int = 50) -> list[FineTune]:
        with self.db.read() as session:
            return list(
                session.scalars(
                    select(FineTune)
                    .where(FineTune.workspace_id.in_(my_workspaces(principal)))
                    .order_by(FineTune.created_at.desc())
                    .limit(limit)
                )
            )

    def events(self, job_id: str, after: int = 0, limit: int = 500) -> list[FineTuneEvent]:
        with self.db.read() as session:
            return list(
                session.scalars(
                    select(FineTuneEvent)
                    .where(FineTuneEvent.job_id == job_id, FineTuneEvent.id > after)
                    .order_by(FineTuneEvent.id)
                    .limit(limit)
                )
            )

    def cancel(self, principal: Principal, job_id: str) -> FineTune:
        """A queued job is cancelled at once; a running one at its next step."""
        job = self.get(principal, job_id)
        if job.status not in ACTIVE:
            raise Conflict(f"job {job_id} has already {job.status}", param="job")
        with self.db.write() as session:
            session.execute(
                update(FineTune)
                .where(FineTune.id == job_id, FineTune.status == "queued")
                .values(status="cancelled", stage="cancelled", finished_at=utcnow())
            )
            session.execute(
                update(FineTune).where(FineTune.id == job_id).values(cancel_requested=True)
            )
            session.add(FineTuneEvent(job_id=job_id, kind="log", data={"message": "cancel asked"}))
        return self.get(principal, job_id)

    def to_serve(self) -> list[FineTune]:
        """Succeeded jobs that asked to be served and are not yet."""
        with self.db.read() as session:
            return list(
                session.scalars(
                    select(FineTune).where(
                        FineTune.status == "succeeded",
                        FineTune.serve.is_(True),
                        FineTune.served_model.is_(None),
                    )
                )
            )

    def mark_served(self, job_id: str, name: str | None) -> bool:
        """Claim (or, with None, release) the serving of a job's result; False if taken."""
        with self.db.write() as session:
            query = update(FineTune).where(FineTune.id == job_id)
            if name is not None:
                query = query.where(FineTune.served_model.is_(None))
            done = session.execute(query.values(served_model=name))
            if name is not None and getattr(done, "rowcount", 0) == 1:
                session.add(
                    FineTuneEvent(
                        job_id=job_id,
                        kind="log",
                        data={"message": f"served as {name}", "served_as": name},
                    )
                )
            return getattr(done, "rowcount", 0) == 1

    # --- what workers call ------------------------------------------------------------------

    def claim(self, worker: str, job_id: str | None = None) -> FineTune | None:
        """Take the oldest queued job (or this one); None if there is none."""
        self.requeue_stale()
        with self.db.read() as session:
            query = select(FineTune.id).where(FineTune.status == "queued")
            if job_id is not None:
                query = query.where(FineTune.id == job_id)
            candidates = list(session.scalars(query.order_by(FineTune.created_at).limit(5)))
        for candidate in candidates:
            now = utcnow()
            with self.db.write() as session:
                taken = session.execute(
                    update(FineTune)
                    .where(FineTune.id == candidate, FineTune.status == "queued")
                    .values(
                        status="running",
                        worker=worker,
                        heartbeat_at=now,
                        started_at=now,
                        attempts=FineTune.attempts + 1,
                    )
                )
                if getattr(taken, "rowcount", 0) == 1:
                    session.add(
                        FineTuneEvent(job_id=candidate, kind="status", data={"status": "running"})
                    )
                    job = session.get(FineTune, candidate)
                    assert job is not None
                    return job
        return None

    def requeue_stale(self) -> int:
        """Jobs whose worker stopped beating go back to the queue, to resume."""
        cutoff = utcnow() - HEARTBEAT_STALE
        with self.db.write() as session:
            stale = list(
                session.scalars(
                    select(FineTune.id).where(
                        FineTune.status == "running", FineTune.heartbeat_at < cutoff
                    )
                )
            )
            for job_id in stale:
                session.execute(
                    update(FineTune)
                    .where(FineTune.id == job_id, FineTune.status == "running")
                    .values(status="queued", worker=None)
                )
                session.add(
                    FineTuneEvent(
                        job_id=job_id,
                        kind="log",
                        data={"message": "its worker stopped; queued again to resume"},
                    )
                )
        return len(stale)

    def beat(self, job_id: str, worker: str, **values: Any) -> bool:
        """Heartbeat (and any fields); False if the job was cancelled or taken over."""
        with self.db.write() as session:
            session.execute(
                update(FineTune)
                .where(FineTune.id == job_id, FineTune.worker == worker)
                .values(heartbeat_at=utcnow(), **values)
            )
            job = session.get(FineTune, job_id)
            return job is not None and job.worker == worker and not job.cancel_requested

    def requeue(self, job_id: str, worker: str) -> None:
        """Give a job back to the queue (its worker is stopping); it resumes from a checkpoint."""
        with self.db.write() as session:
            session.execute(
                update(FineTune)
                .where(FineTune.id == job_id, FineTune.worker == worker)
                .values(status="queued", worker=None, stage="queued")
            )
            session.add(
                FineTuneEvent(
                    job_id=job_id,
                    kind="log",
                    data={"message": "its worker stopped; queued again to resume"},
                )
            )

    def record(self, job_id: str, kind: str, data: dict[str, Any]) -> None:
        with self.db.write() as session:
            session.add(FineTuneEvent(job_id=job_id, kind=kind, data=data))
            if kind == "progress":
                session.execute(update(FineTune).where(FineTune.id == job_id).values(progress=data))

    def finish(self, job_id: str, status: str, *, error: str | None = None, **values: Any) -> None:
        with self.db.write() as session:
            session.execute(
                update(FineTune)
                .where(FineTune.id == job_id)
                .values(status=status, stage=status, error=error, finished_at=utcnow(), **values)
            )
            data = {"status": status, **({"error": error} if error else {})}
            session.add(FineTuneEvent(job_id=job_id, kind="status", data=data))
            job = session.get(FineTune, job_id)
            if job is not None:  # tell whoever started it, in the same transaction
                notify_job_finished(session, job, status, error)

    def load(self, job_id: str) -> FineTune:
        with self.db.read() as session:
            job = session.get(FineTune, job_id)
        if job is None:
            raise NotFound(f"no fine-tuning job {job_id!r}", param="job")
        return job


def _default_output(principal: Principal, base_name: str, job_id: str) -> str:
    return f"{principal.workspace_slug}/{base_name}-ft-{job_id[-6:].lower()}"
