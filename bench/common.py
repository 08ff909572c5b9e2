"""Helpers the benchmark scripts share: the machine they ran on, percentiles."""

from __future__ import annotations

import contextlib
import os
import platform
from datetime import UTC, datetime
from typing import Any

import numpy as np


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="utf-8") as meminfo:
        memory = f"{int(meminfo.readline().split()[1]) / 1024**2:.0f} GiB"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def percentiles(seconds: list[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds."""
    values = np.asarray(seconds) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_danlu(
    home: Any, extra_env: dict[str, str] | None = None, password: str = "bench-password"
) -> tuple[Any, str, str]:
    """`danlu serve` on a free loopback port: (process, base URL, admin key)."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx

    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DANLU_")}
    env.update(
        {"DANLU_HOME": str(home), "DANLU_LOG_LEVEL": "warning", "DANLU_ADMIN_PASSWORD": password}
    )
    env.update(extra_env or {})
    with (home / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "danlu", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.kill()
        raise SystemExit(f"danlu serve did not start; see {home / 'server.log'}")
    created = subprocess.run(
        [sys.executable, "-m", "danlu", "keys", "create", "--name", "bench", "--admin"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return process, url, created.stdout.strip().splitlines()[-1]
