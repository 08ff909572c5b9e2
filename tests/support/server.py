"""Run a real `danlu serve` in a subprocess on a loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def danlu_cli(
    *args: str, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the real `danlu` command (as `python -m danlu`)."""
    result = subprocess.run(
        [sys.executable, "-m", "danlu", *args], env=env, capture_output=True, text=True, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"danlu {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
        )
    return result


@dataclass
class RunningServer:
    home: Path
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path
    admin_key: str = ""
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.url}/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cli(
        self, *args: str, check: bool = True, env_extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return danlu_cli(*args, env={**self.env, **(env_extra or {})}, check=check)

    def create_key(self, name: str, *extra: str) -> str:
        out = self.cli("keys", "create", "--name", name, *extra).stdout
        return out.strip().splitlines()[-1]

    def health(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/healthz", timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    home: Path, extra_env: dict[str, str] | None = None, timeout: float = 90
) -> RunningServer:
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DANLU_")}
    env.update(
        {
            "DANLU_HOME": str(home),
            "DANLU_ADMIN_PASSWORD": "admin-password-for-tests",
            "DANLU_LLAMA_CONTEXT": "2048",
            # Two test servers share two cores: llama.cpp's spinning threads collapse when
            # oversubscribed, so each server's model gets one thread.
            "DANLU_LLAMA_THREADS": "1",
            "DANLU_LOG_LEVEL": "warning",
            # Fine-tuning workers only where a test asks for one (they cost memory).
            "DANLU_REFINERY_WORKERS": "0",
        }
    )
    env.update(extra_env or {})
    log_path = home / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "danlu", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(home, port, env, process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"danlu serve exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        server.stop()
        raise AssertionError(f"danlu serve was not ready in {timeout}s:\n{server.log()}")
    server.admin_key = server.create_key("tests-admin", "--admin")
    return server
