"""Hub: download throughput against raw disk reads, and server memory during a large upload.

What it measures
    1. ``danlu serve`` memory (resident set size, read from /proc) while the real
       ``huggingface_hub`` client uploads one large file (default 1 GiB) through Git LFS: the
       bytes must stream to disk, so the server should grow by far less than the file.
    2. Download throughput of that file through the hub (``GET /{repo}/resolve/main/{file}``
       read by httpx and discarded) against reading the same bytes straight from the blob file
       on disk, in alternating rounds. Before every read the file's pages are dropped from the
       page cache (``posix_fadvise(DONTNEED)``), so both sides read from the disk; the medians
       are compared. A cached read is also printed, as the ceiling of a memory copy.

The anchors
    hub / raw throughput >= 0.8; RSS growth during the upload < 100 MB.

Run: ``python bench/hub_throughput.py [--size-mb 1024] [--rounds 3] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

CHUNK = 1024 * 1024


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DANLU_")}
    env.update(
        {
            "DANLU_HOME": str(home),
            "DANLU_LOG_LEVEL": "warning",
            "DANLU_ADMIN_PASSWORD": "bench-password",
        }
    )
    home.mkdir(parents=True, exist_ok=True)
    log = (home / "server.log").open("wb")
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
        raise SystemExit("danlu serve did not start")
    key = (
        subprocess.run(
            [sys.executable, "-m", "danlu", "keys", "create", "--name", "bench", "--admin"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    return process, url, key


def make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(CHUNK)
    with path.open("wb") as out:
        for index in range(size // CHUNK):
            chunk = block[index % 251 :] + block[: index % 251]  # distinct blocks, cheap to make
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def upload_with_rss(url: str, key: str, path: Path, pid: int) -> dict[str, float]:
    """Upload in a subprocess (the client's memory is not the server's) while sampling RSS."""
    code = "\n".join(
        [
            "import sys",
            "from huggingface_hub import HfApi",
            "api = HfApi(endpoint=sys.argv[1], token=sys.argv[2])",
            "api.create_repo('admin/bench', exist_ok=True)",
            "api.upload_file(path_or_fileobj=sys.argv[3], path_in_repo='big.bin',"
            " repo_id='admin/bench')",
        ]
    )
    env = dict(os.environ, HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    before = rss_bytes(pid)
    peak = before
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_bytes(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-c", code, url, key, str(path)], env=env, check=True)
    finally:
        stop.set()
        sampler.join()
    return {
        "rss_before_mb": before / 1e6,
        "rss_peak_mb": peak / 1e6,
        "rss_growth_mb": (peak - before) / 1e6,
        "upload_seconds": time.perf_counter() - started,
    }


def evict(path: Path) -> None:
    """Drop the file's pages from the page cache, so the next read comes from the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_raw(path: Path) -> float:
    started = time.perf_counter()
    with path.open("rb", buffering=0) as handle:
        while handle.read(CHUNK):
            pass
    return time.perf_counter() - started


def read_hub_curl(url: str) -> tuple[float, int]:
    """The server's speed, read by a client whose own cost is negligible (curl, in C)."""
    out = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download} %{time_total}",
            f"{url}/admin/bench/resolve/main/big.bin",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(out[1]), int(out[0])


def read_hub(url: str) -> tuple[float, int]:
    """The same through httpx, as Python clients (huggingface_hub) read it."""
    started = time.perf_counter()
    total = 0
    with httpx.stream("GET", f"{url}/admin/bench/resolve/main/big.bin", timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_raw(CHUNK):
            total += len(chunk)
    return time.perf_counter() - started, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="file size in MiB (default 1024)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="download rounds per side (default 3)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    size = args.size_mb * CHUNK
    work = Path(tempfile.mkdtemp(prefix="danlu-hub-bench-"))
    process, url, key = start_server(work / "home")
    try:
        source = work / "big.bin"
        sha256 = make_file(source, size)
        upload = upload_with_rss(url, key, source, process.pid)
        source.unlink()
        blob = work / "home" / "blobs" / "sha256" / sha256[:2] / sha256[2:4] / sha256
        assert blob.stat().st_size == size, "the uploaded blob is missing or the wrong size"
        raw_times, hub_times, httpx_times = [], [], []
        use_curl = shutil.which("curl") is not None
        for _ in range(args.rounds):
            # Both sides read the same bytes from the disk, not from memory: the page cache
            # would turn the raw side into a memory copy no network path can match.
            evict(blob)
            raw_times.append(read_raw(blob))
            if use_curl:
                evict(blob)
                seconds, received = read_hub_curl(url)
                assert received == size, f"hub sent {received} bytes, expected {size}"
                hub_times.append(seconds)
            evict(blob)
            seconds, received = read_hub(url)
            assert received == size, f"hub sent {received} bytes, expected {size}"
            httpx_times.append(seconds)
        raw = size / statistics.median(raw_times) / 1e6
        via_httpx = size / statistics.median(httpx_times) / 1e6
        hub = size / statistics.median(hub_times) / 1e6 if hub_times else via_httpx
        result: dict[str, Any] = {
            "size_mb": args.size_mb,
            "rounds": args.rounds,
            **upload,
            "raw_mb_per_s": raw,
            "hub_mb_per_s": hub,
            "ratio": hub / raw,
            "hub_httpx_mb_per_s": via_httpx,
            "client": "curl" if hub_times else "httpx",
            "machine": {
                "cpu": platform.processor() or platform.machine(),
                "cores": os.cpu_count(),
                "python": platform.python_version(),
                "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            },
        }
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"| metric | value | goal |\n|---|---:|---|\n"
        f"| upload time (s) | {result['upload_seconds']:.1f} | |\n"
        f"| server RSS before upload (MB) | {result['rss_before_mb']:.0f} | |\n"
        f"| server RSS growth during upload (MB) | {result['rss_growth_mb']:.1f} | < 100 |\n"
        f"| raw disk read, page cache dropped (MB/s) | {raw:.0f} | |\n"
        f"| hub download, {result['client']} client (MB/s) | {hub:.0f} | |\n"
        f"| hub download, httpx client (MB/s) | {via_httpx:.0f} | |\n"
        f"| hub ({result['client']}) / raw | {result['ratio']:.3f} | >= 0.8 |"
    )
    print(f"machine: {result['machine']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
