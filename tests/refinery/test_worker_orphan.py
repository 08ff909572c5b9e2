"""A worker whose server died without shutting it down stops on its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# The "server": starts a worker as `danlu serve` does, prints its pid, then waits to be killed.
PARENT = """
import subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-m", "danlu.refinery.worker"], start_new_session=True)
print(worker.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has exited all the same.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def test_a_worker_stops_when_its_server_is_killed(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DANLU_")}
    env["DANLU_HOME"] = str(tmp_path)
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], env=env, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    try:
        time.sleep(3)  # the worker is up and polling for jobs
        assert _alive(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 30
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _alive(worker), "the orphaned worker kept running"
    finally:
        if _alive(worker):
            os.kill(worker, signal.SIGKILL)
        parent.stdout.close()
