"""The refinery's worker: a process of its own that claims queued jobs and runs them.

Training is long and CPU-bound, so it never runs inside the server's event loop; a crash
of the worker (out of memory, killed) cannot take the API down, and the job resumes from
its last checkpoint when a worker next claims it. ``danlu serve`` starts
``DANLU_REFINERY_WORKERS`` of these (``python -m danlu.refinery.worker``); more can run on
other machines against the same database and blob store.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

from danlu.core.bootstrap import Core, open_core
from danlu.core.settings import load_settings
from danlu.refinery.jobs import FineTunes, worker_name

log = logging.getLogger("danlu.refinery.worker")
POLL_SECONDS = 2.0
HEARTBEAT_SECONDS = 15.0


class Heartbeat:
    """Beats for a running job from a thread, and notices cancellation between beats."""

    def __init__(self, jobs: FineTunes, job_id: str, worker: str):
        self.jobs, self.job_id, self.worker = jobs, job_id, worker
        self.cancelled = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._done.wait(HEARTBEAT_SECONDS):
            try:
                if not self.jobs.beat(self.job_id, self.worker):
                    self.cancelled.set()
            except Exception:  # a database hiccup; the next beat tries again
                log.exception("heartbeat of %s failed", self.job_id)


def run_one(
    core: Core,
    jobs: FineTunes,
    worker: str,
    job_id: str | None = None,
    *,
    interrupted: threading.Event | None = None,
) -> str | None:
    """Claim and run one job (or the given one); the job's id, or None if none was queued.

    ``interrupted`` set (the worker is stopping) makes a running job checkpoint and go
    back to the queue, to resume on the next worker.
    """
    from danlu.refinery.pipeline import run_job  # torch and friends load only when needed

    job = jobs.claim(worker, job_id)
    if job is None:
        return None
    with Heartbeat(jobs, job.id, worker) as heartbeat:
        run_job(core, jobs, job, worker, cancelled=heartbeat.cancelled, interrupted=interrupted)
    return job.id


def _stop_when_orphaned(stopping: threading.Event, every: float = 2.0) -> None:
    """Stop (checkpointing a running job) if the server that started us is gone: a server
    killed without its shutdown (kill -9, a crash) must not leave workers training forever."""
    parent = os.getppid()
    while not stopping.wait(every):
        if os.getppid() != parent:
            log.warning("the server that started this worker is gone; stopping")
            stopping.set()


def main() -> None:
    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    core = open_core(settings, announce=lambda _: None)
    from danlu.hub.repos import Repos

    jobs = FineTunes(core.db, Repos(core.db, anonymous_read=settings.hub_anonymous_read))
    worker = worker_name()
    stopping = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=_stop_when_orphaned, args=(stopping,), daemon=True).start()
    log.info("refinery worker %s ready", worker)
    try:
        while not stopping.is_set():
            try:
                ran = run_one(core, jobs, worker, interrupted=stopping)
            except Exception:
                log.exception("the refinery worker hit an error between jobs")
                ran = None
            if ran is None:
                stopping.wait(POLL_SECONDS)
    finally:
        core.close()


if __name__ == "__main__":
    main()
