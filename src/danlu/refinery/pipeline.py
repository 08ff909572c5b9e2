"""One fine-tuning job from start to finish, as a worker runs it.

validating → loading the base → evaluating the base → training → evaluating the result →
publishing (→ serving, which the server does when it sees the job succeed). Each stage is
recorded on the job; progress reports become events. What a restart must not redo is kept:
the split and the base's metrics on the job row, the training state in checkpoints under
``HOME/refinery/{job}/``; a resumed job continues from its last checkpoint.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from danlu.core.bootstrap import Core
from danlu.core.errors import DanluError
from danlu.core.keys import ApiKeys, Principal
from danlu.core.tables import User, Workspace
from danlu.hub.commits import Committer
from danlu.hub.repos import Repos
from danlu.refinery.job_tables import FineTune
from danlu.refinery.jobs import FineTunes

log = logging.getLogger(__name__)
PROGRESS_EVERY_SECONDS = 1.0


def _principal(core: Core, job: FineTune) -> Principal:
    """The job's owner, acting in the job's workspace (as the CLI acts for a user)."""
    with core.db.read() as session:
        user = session.get(User, job.user_id)
        workspace = session.get(Workspace, job.workspace_id)
    if user is None or workspace is None:
        raise DanluError("the job's user or workspace no longer exists")
    return ApiKeys.local_principal(user, workspace)


def _materialise(core: Core, repos: Repos, commit: str, into: Path) -> Path:
    """A repo snapshot as files (hard links to the blobs where possible), made atomically."""
    if into.is_dir():
        return into
    staging = into.with_name(into.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    for entry in repos.files(commit):
        if entry.path.startswith(".") or entry.path.lower().endswith((".md", ".png")):
            continue
        target = staging / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        source = core.blobs.path(entry.sha256)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
    staging.rename(into)
    return into


class Reporter:
    """Progress to the job: every step in the curve, an event at most once a second."""

    def __init__(self, jobs: FineTunes, job_id: str):
        self.jobs, self.job_id = jobs, job_id
        self.curve: list[dict[str, Any]] = []
        self._last = 0.0

    def __call__(self, report: dict[str, Any]) -> None:
        self.curve.append({"step": report.get("step"), "loss": report.get("loss")})
        now = time.monotonic()
        last_step = report.get("step") == report.get("total_steps")
        if now - self._last >= PROGRESS_EVERY_SECONDS or last_step:
            self._last = now
            self.jobs.record(self.job_id, "progress", report)


def run_job(
    core: Core,
    jobs: FineTunes,
    job: FineTune,
    worker: str,
    *,
    cancelled: threading.Event,
    interrupted: threading.Event | None = None,
) -> None:
    """Run ``job`` (claimed by ``worker``) to an end: succeeded, failed, cancelled or requeued."""
    from danlu.refinery.data import Split, load_dataset, make_split
    from danlu.refinery.errors import TrainingCancelled
    from danlu.refinery.evaluate import Evaluation, compare, evaluate
    from danlu.refinery.export import export
    from danlu.refinery.hyperparameters import Hyperparameters
    from danlu.refinery.publish import publish
    from danlu.refinery.template import encode_dataset
    from danlu.refinery.train import train

    work = core.settings.home / "refinery" / job.id
    threads = core.settings.refinery_threads or max(1, (os.cpu_count() or 1) - 1)
    repos = Repos(core.db, anonymous_read=core.settings.hub_anonymous_read)
    stop = interrupted or threading.Event()

    def stage(name: str) -> None:
        jobs.beat(job.id, worker, stage=name)
        jobs.record(job.id, "status", {"stage": name})

    try:
        hp = Hyperparameters.from_dict(job.hyperparameters)
        stage("validating")
        by_path = {e.path: e for e in repos.files(job.dataset_revision)}
        files = [(p, core.blobs.read_bytes(by_path[p].sha256)) for p in job.dataset_files]
        dataset = load_dataset(files)
        if job.split:
            split = Split.from_dict(job.split)
        else:
            split = make_split(len(dataset), fraction=hp.held_out_fraction, seed=hp.seed)
            jobs.beat(job.id, worker, split=split.to_dict())
        jobs.record(
            job.id,
            "log",
            {
                "message": f"{len(dataset)} conversations ({dataset.format}): "
                f"{len(split.train)} to train on, {len(split.held_out)} held out"
            },
        )

        stage("loading base")
        from danlu.refinery.base import load_base

        base_dir = _materialise(core, repos, job.base_revision, work / "base")
        base = load_base(base_dir, method=job.method, name=job.base_model)
        encode = {
            "template": base.template,
            "tokenizer": base.tokenizer,
            "max_length": hp.max_length,
            "train_on_all_turns": hp.train_on_all_turns,
        }
        train_examples = encode_dataset(dataset, split.train, **encode)
        held_examples = encode_dataset(dataset, split.held_out, **encode)
        held_conversations = [dataset.conversations[i] for i in split.held_out]

        # Long enough for the longest held-out answer, so none is cut and scored as wrong.
        answers = [
            c[-1]["content"] for c in held_conversations if c and c[-1]["role"] == "assistant"
        ]
        longest = max((len(base.tokenizer(a)["input_ids"]) for a in answers), default=48)
        max_new_tokens = min(1024, longest + 16)

        def judge(model: Any) -> Evaluation:
            return evaluate(
                model,
                base.tokenizer,
                base.template,
                held_conversations,
                held_examples,
                json_schema=hp.json_schema,
                max_new_tokens=max_new_tokens,
                threads=threads,
            )

        metrics = dict(job.metrics or {})
        if "before" not in metrics:
            stage("evaluating base")
            before = judge(base.model)
            metrics = {"before": before.metrics, "before_samples": before.samples}
            jobs.beat(job.id, worker, metrics=metrics)
        before = Evaluation(metrics["before"], metrics.get("before_samples", []))

        stage("training")
        reporter = Reporter(jobs, job.id)
        training: dict[str, Any] = {
            "method": job.method,
            "checkpoint_dir": work / "checkpoints",
            "progress": reporter,
            "should_stop": lambda: cancelled.is_set() or stop.is_set(),
        }
        if core.settings.refinery_backend == "ray":
            # Only the training moves to the Ray ranks; the result comes back onto `base`,
            # and evaluation, export and publishing stay here.
            from danlu.refinery.distributed import train_on_ray

            ranks = core.settings.refinery_ray_workers
            address = core.settings.refinery_ray_address or None
            jobs.record(
                job.id, "log", {"message": f"training on Ray ({address or 'local'}): {ranks} ranks"}
            )
            result = train_on_ray(
                base,
                train_examples,
                hp,
                workers=ranks,
                address=address,
                threads=core.settings.refinery_threads or None,
                **training,
            )
        else:
            result = train(base, train_examples, hp, threads=threads, **training)

        stage("evaluating")
        after = judge(result.model)
        # The base's samples stay stored, so a job resumed after this point still has them.
        compared = {**compare(before, after), "before_samples": before.samples}
        jobs.beat(job.id, worker, metrics=compared)

        stage("publishing")
        exported = export(
            result.model, base.tokenizer, base.template, work / "export", base_name=job.base_model
        )
        fresh = jobs.load(job.id)  # with the split and metrics recorded above
        commit = publish(
            repos,
            Committer(core.db, core.blobs, repos, max_file_bytes=core.settings.hub_max_file_bytes),
            core.blobs,
            _principal(core, fresh),
            fresh,
            exported.merged,
            exported.adapter,
            compared,
            compared["samples"],
            result.curve or reporter.curve,
        )
        jobs.record(job.id, "log", {"message": f"published {job.output_repo} at {commit[:12]}"})
        jobs.finish(job.id, "succeeded", metrics=compared)
        shutil.rmtree(work, ignore_errors=True)  # the result is in the hub now
    except TrainingCancelled:
        if cancelled.is_set():
            jobs.finish(job.id, "cancelled")
            shutil.rmtree(work, ignore_errors=True)
        else:  # the worker is stopping: hand the job back; the checkpoint stays for a resume
            jobs.requeue(job.id, worker)
    except DanluError as exc:
        jobs.finish(job.id, "failed", error=exc.message)
    except MemoryError:
        jobs.finish(
            job.id,
            "failed",
            error="the machine ran out of memory: lower max_length or batch_size, or use lora",
        )
    except Exception as exc:
        log.exception("fine-tuning job %s failed", job.id)
        jobs.finish(job.id, "failed", error=f"{type(exc).__name__}: {exc}")
