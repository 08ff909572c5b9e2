"""Starting and stopping the refinery's worker processes beside ``danlu serve``."""

from __future__ import annotations

import os
import subprocess
import sys

from danlu.core.settings import Settings


def start_workers(settings: Settings) -> list[subprocess.Popen[bytes]]:
    """``DANLU_REFINERY_WORKERS`` workers with the server's settings (its environment)."""
    log_dir = settings.home / "refinery"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DANLU_HOME": str(settings.home)}
    if settings.database_url:
        env["DANLU_DATABASE_URL"] = settings.database_url
    workers = []
    for number in range(settings.refinery_workers):
        log = (log_dir / f"worker-{number}.log").open("ab")
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "danlu.refinery.worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # A Ctrl-C in the terminal reaches the server only; the server stops us.
                start_new_session=True,
            )
        )
        log.close()
    return workers


def stop_workers(workers: list[subprocess.Popen[bytes]], timeout: float = 20) -> None:
    """SIGTERM: a worker in a job checkpoints and hands the job back to the queue."""
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
